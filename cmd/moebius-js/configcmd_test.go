package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// configIn runs `moebius-js config args...` inside dir with env as the
// whole environment.
func configIn(t *testing.T, dir string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	t.Chdir(dir)
	var out, errOut strings.Builder
	code = runConfig(args, &out, &errOut, func() []string { return env })
	return out.String(), errOut.String(), code
}

func TestConfigCommandPrintsEachKeyWithItsValueAndSource(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "moebius.yaml", "step_budget: 1m30s\nworkers: 2\nbind: [\"tcp://127.0.0.1:7001\", \"ipc:///tmp/m.sock\"]\n")
	out, errOut, code := configIn(t, dir, []string{"MOEBIUS_WORKERS=3", "MOEBIUS_LOG_FORMAT=json"}, "--queue-limit", "9", "app.js")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(configKeys) {
		t.Errorf("%d lines for %d keys:\n%s", len(lines), len(configKeys), out)
	}
	for i, c := range configKeys {
		if i < len(lines) && !strings.HasPrefix(lines[i], c.key+" ") {
			t.Errorf("line %d is %q, want key %s", i, lines[i], c.key)
		}
	}
	for _, want := range []string{
		`bind +tcp://127.0.0.1:7001,ipc:///tmp/m.sock +file moebius.yaml`,
		`handlers +app.js +argument`,
		`workers +3 +env MOEBIUS_WORKERS`,
		`log_format +json +env MOEBIUS_LOG_FORMAT`,
		`queue_limit +9 +flag --queue-limit`,
		`step_budget +1m30s +file moebius.yaml`,
		`read_timeout +30s +default`,
		`watch +true +default`,
		`admin +"" +default`,
		`curve_bind +"" +default`,
	} {
		if !regexp.MustCompile(`(?m)^` + want + `$`).MatchString(out) {
			t.Errorf("no line matching %q in:\n%s", want, out)
		}
	}
}

func TestConfigCommandJSONIsAnObjectOfValuesAndSources(t *testing.T) {
	dir := t.TempDir()
	cfgFile := writeFile(t, dir, "other.yaml", "handshake_timeout: 2s\n")
	out, errOut, code := configIn(t, t.TempDir(), []string{"MOEBIUS_CURVE_ALLOW_KEYS=a,b"}, "--json", "--config", cfgFile, "--bind", "tcp://127.0.0.1:7001", "--watch", "false")
	if code != 2 || !strings.Contains(errOut, "curve_allow_keys") { // keys a and b are refused, and shown
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var got map[string]struct {
		Value  any    `json:"value"`
		Source string `json:"source"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(got) != len(configKeys) {
		t.Errorf("%d keys, want %d", len(got), len(configKeys))
	}
	for key, want := range map[string]struct {
		value  any
		source string
	}{
		"handshake_timeout": {"2s", "file " + cfgFile},
		"bind":              {[]any{"tcp://127.0.0.1:7001"}, "flag --bind"},
		"watch":             {false, "flag --watch"},
		"workers":           {float64(1), "default"},
		"curve_allow_keys":  {[]any{"a", "b"}, "env MOEBIUS_CURVE_ALLOW_KEYS"},
		"curve_bind":        {[]any{}, "default"},
		"admin":             {"", "default"},
	} {
		e := got[key]
		if e.Source != want.source || !jsonEqual(e.Value, want.value) {
			t.Errorf("%s: %v from %q, want %v from %q", key, e.Value, e.Source, want.value, want.source)
		}
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// curve_key is shown when it names a file, "(set)" when it is a key:
// config never prints a secret key, wherever it came from.
func TestConfigCommandNeverPrintsACurveSecretKey(t *testing.T) {
	const secret = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
	for _, tc := range []struct {
		name string
		yaml string
		env  []string
		args []string
		want string // the curve_key line
	}{
		{"flag", "", nil, []string{"--curve-key", secret}, `curve_key +\(set\) +flag --curve-key`},
		{"env", "", []string{"MOEBIUS_CURVE_KEY=" + secret}, nil, `curve_key +\(set\) +env MOEBIUS_CURVE_KEY`},
		{"file", "curve_key: \"" + secret + "\"\n", nil, nil, `curve_key +\(set\) +file moebius.yaml`},
		{"json", "", nil, []string{"--json", "--curve-key", secret}, `"curve_key": \{"value":"\(set\)","source":"flag --curve-key"\}`},
		{"a path", "", nil, []string{"--curve-key", "/etc/moebius/server.key_secret"}, `curve_key +/etc/moebius/server.key_secret +flag --curve-key`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.yaml != "" {
				writeFile(t, dir, "moebius.yaml", tc.yaml)
			}
			out, errOut, _ := configIn(t, dir, tc.env, tc.args...)
			if strings.Contains(out, secret) || strings.Contains(errOut, secret) {
				t.Fatalf("the secret key was printed:\n%s\n%s", out, errOut)
			}
			if !regexp.MustCompile(`(?m)^ *` + tc.want + `,?$`).MatchString(out) {
				t.Fatalf("no line matching %q in:\n%s", tc.want, out)
			}
		})
	}
}

// A configuration serve would refuse is still shown (where the bad value
// came from is what one wants to know), with the reasons on stderr;
// one that cannot be read is not.
func TestConfigCommandShowsARefusedConfigurationAndExits2(t *testing.T) {
	for _, tc := range []struct {
		name   string
		yaml   string
		env    []string
		args   []string
		stdout string // a line of it ("" for nothing at all)
		stderr string
	}{
		{"a value serve refuses", "", []string{"MOEBIUS_WORKERS=0"}, nil, `workers +0 +env MOEBIUS_WORKERS`, "workers: must be greater than zero"},
		{"a duration without a unit", "read_timeout: 30\n", nil, nil, "", `"30s"`},
		{"an unknown key", "step_budgett: 1s\n", nil, nil, "", `unknown key "step_budgett"`},
		{"an unknown variable", "", []string{"MOEBIUS_WORKER=2"}, nil, "", "MOEBIUS_WORKERS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.yaml != "" {
				writeFile(t, dir, "moebius.yaml", tc.yaml)
			}
			out, errOut, code := configIn(t, dir, tc.env, tc.args...)
			if code != 2 || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if tc.stdout == "" && out != "" {
				t.Fatalf("printed a configuration it could not read:\n%s", out)
			}
			if tc.stdout != "" && !regexp.MustCompile(`(?m)^`+tc.stdout+`$`).MatchString(out) {
				t.Fatalf("no line matching %q in:\n%s", tc.stdout, out)
			}
		})
	}
}
