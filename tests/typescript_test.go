package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// tsOrders is a TypeScript handlers file: the types above the throw must
// not move the line its stack names.
const tsOrders = `import { type Client } from 'moebius';

interface Order {
  item: string;
  qty: number;
}

export const rules = [
  {
    command: 'order',
    handler(client: Client, data: Order) {
      if (data.qty < 1) throw new RangeError('qty must be positive');
      client.send({ ordered: data.qty + ' x ' + data.item });
    },
  },
];
`

// The real binary serves handlers.ts to a real ZeroMQ client, and a
// handler's error names handlers.ts's own line and column in the log.
func TestServeTypeScriptHandlersNamesTheTsLineInErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "handlers.ts")
	if err := os.WriteFile(path, []byte(tsOrders), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, path)
	c := dial(t, s.addr, "c", false)
	if got := c.roundTrip(`{"command":"order","item":"tea","qty":2}`); got != `{"ordered":"2 x tea"}` {
		t.Fatalf("reply %q", got)
	}
	if got := c.roundTrip(`{"command":"order","item":"tea","qty":0}`); !strings.Contains(got, "handler_error") {
		t.Fatalf("reply %q", got)
	}
	s.logs.waitFor(t, regexp.MustCompile(regexp.QuoteMeta(path)+`:12:31`), 5*time.Second)
}

func TestCheckNamesTheTsLineOfASyntaxError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "handlers.ts")
	bad := strings.Replace(tsOrders, "qty: number;", "qty: number;\n  oops(: void;", 1)
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runCLI(t, "check", path)
	if code != 1 || !regexp.MustCompile(regexp.QuoteMeta(path)+`:6:\d+: SyntaxError`).MatchString(errOut) {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}
