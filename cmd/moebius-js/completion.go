package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// shells are the shells completion writes scripts for.
var shells = []string{"bash", "zsh", "fish"}

const completionAbout = `Prints a script that completes moebius-js's commands, their flags and the values of
flags that take one of a few words. Made from the commands' own flag definitions.
  bash:  source <(moebius-js completion bash)   or save it as /etc/bash_completion.d/moebius-js
  zsh:   source <(moebius-js completion zsh)    after compinit, or save it as _moebius-js in a folder of $fpath
  fish:  moebius-js completion fish | source    or save it as ~/.config/fish/completions/moebius-js.fish`

// completion prints the completion script for a shell.
func completion(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("completion", pflag.ContinueOnError)
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() != 1 || !slices.Contains(shells, fs.Arg(0)) {
		return usageError(stderr, "completion", "give one shell: %s", strings.Join(shells, ", "))
	}
	model := completionModel()
	switch fs.Arg(0) {
	case "bash":
		writeBash(stdout, model)
	case "zsh":
		writeZsh(stdout, model)
	case "fish":
		writeFish(stdout, model)
	}
	return 0
}

// complFlag is a flag as completion sees it.
type complFlag struct {
	long, short string
	value       bool     // takes a value
	files       bool     // its value may be a file's name (a string)
	repeat      bool     // may be given more than once
	choices     []string // the values it takes (nil: any; file names are offered)
	help        string
}

// complCommand is a command as completion sees it. The one named "" is
// moebius-js without a command: serve's flags, and --version.
type complCommand struct {
	name, summary string
	flags         []complFlag
	words         []string // what its arguments can be (nil: file names)
}

var (
	helpFlag    = complFlag{long: "help", short: "h", help: "print the help"}
	versionFlag = complFlag{long: "version", short: "v", help: "print the version"}
)

// completionModel reads every command's flags from its flag set.
func completionModel() []complCommand {
	var model []complCommand
	for i := range commands {
		c := &commands[i]
		cc := complCommand{name: c.name, summary: c.summary, flags: complFlags(c.flagSet())}
		if c.words != nil {
			cc.words = c.words()
		}
		model = append(model, cc)
		if c.name == "serve" {
			top := cc
			top.name = ""
			top.flags = append(slices.Clone(cc.flags), versionFlag)
			model = append(model, top)
		}
	}
	return model
}

func complFlags(fs *pflag.FlagSet) []complFlag {
	var flags []complFlag
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		t := f.Value.Type()
		flags = append(flags, complFlag{
			long: f.Name, short: f.Shorthand,
			value:   f.NoOptDefVal == "",
			files:   t == "string" || t == "stringArray",
			repeat:  strings.HasSuffix(t, "Array") || strings.HasSuffix(t, "Slice"),
			choices: f.Annotations[choicesAnnotation],
			help:    f.Usage,
		})
	})
	return append(flags, helpFlag)
}

// names is the flag's spellings: --long, and -s when it has a shorthand.
func (f complFlag) names() []string {
	n := []string{"--" + f.long}
	if f.short != "" {
		n = append(n, "-"+f.short)
	}
	return n
}

// shortHelp is the first clause of a flag's help, for the shells that
// show one beside it.
func shortHelp(s string) string {
	s, _, _ = strings.Cut(s, "; ")
	if strings.Count(s, "(") > strings.Count(s, ")") { // cut inside a parenthesis
		s = strings.TrimSpace(s[:strings.LastIndex(s, "(")])
	}
	if len(s) > 80 {
		s = s[:strings.LastIndex(s[:78], " ")] + " …"
	}
	return s
}

func commandWords(model []complCommand) string {
	var names []string
	for _, c := range model {
		if c.name != "" {
			names = append(names, c.name)
		}
	}
	return strings.Join(names, " ")
}

func writeBash(w io.Writer, model []complCommand) {
	names := commandWords(model)
	fmt.Fprintf(w, `# bash completion for moebius-js, made by `+"`moebius-js completion bash`"+`.
# Load it with: source <(moebius-js completion bash)
_moebius_js() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} flag
    COMPREPLY=()
    # bash splits --flag=value at the "=" (COMP_WORDBREAKS).
    if [[ $cur == "=" ]]; then
        flag=$prev cur=""
    elif [[ $prev == "=" && $COMP_CWORD -ge 2 ]]; then
        flag=${COMP_WORDS[COMP_CWORD-2]}
    else
        flag=$prev
    fi
    local cmd="" flags="" valued="" words=""
    case ${COMP_WORDS[1]} in
    %s) [[ $COMP_CWORD -ge 2 ]] && cmd=${COMP_WORDS[1]} ;;
    esac
    case $cmd in
`, strings.ReplaceAll(names, " ", "|"))
	for _, c := range model {
		var flags, valued []string
		for _, f := range c.flags {
			flags = append(flags, f.names()...)
			if f.value {
				valued = append(valued, f.names()...)
			}
		}
		fmt.Fprintf(w, "    %q)\n", c.name)
		fmt.Fprintf(w, "        flags='%s'\n", strings.Join(flags, " "))
		fmt.Fprintf(w, "        valued=' %s '\n", strings.Join(valued, " "))
		if c.words != nil {
			fmt.Fprintf(w, "        words='%s'\n", strings.Join(c.words, " "))
		}
		for _, f := range c.flags {
			if f.choices != nil {
				fmt.Fprintf(w, "        case $flag in %s) COMPREPLY=($(compgen -W '%s' -- \"$cur\")); return 0 ;; esac\n",
					strings.Join(f.names(), "|"), strings.Join(f.choices, " "))
			}
		}
		fmt.Fprintln(w, "        ;;")
	}
	fmt.Fprintf(w, `    esac
    if [[ $valued == *" $flag "* ]]; then
        return 0 # a flag's value: file names (complete -o default)
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    elif [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=($(compgen -W '%s' -- "$cur")) # none: a handlers file to serve
    elif [[ -n $words ]]; then
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
    fi
    return 0
}
complete -o default -F _moebius_js moebius-js
`, names)
}

func writeZsh(w io.Writer, model []complCommand) {
	names := commandWords(model)
	fmt.Fprintln(w, "#compdef moebius-js")
	fmt.Fprintln(w, "# zsh completion for moebius-js, made by `moebius-js completion zsh`.")
	fmt.Fprintln(w, "# Load it with: source <(moebius-js completion zsh) (after compinit), or save it as _moebius-js in a folder of $fpath.")
	fmt.Fprintln(w, "_moebius_js() {")
	fmt.Fprintln(w, "  local -a commands")
	fmt.Fprintln(w, "  commands=(")
	for _, c := range model {
		if c.name != "" {
			fmt.Fprintf(w, "    %s\n", shQuote(c.name+":"+c.summary))
		}
	}
	fmt.Fprintln(w, "  )")
	fmt.Fprintln(w, `  local cmd=""`)
	fmt.Fprintln(w, "  case $words[2] in")
	fmt.Fprintf(w, "  (%s)\n", strings.ReplaceAll(names, " ", "|"))
	fmt.Fprintln(w, "    if (( CURRENT > 2 )); then cmd=$words[2]; shift words; (( CURRENT-- )); fi ;;")
	fmt.Fprintln(w, "  esac")
	fmt.Fprintln(w, `  if [[ -z $cmd && CURRENT -eq 2 && $words[CURRENT] != -* ]]; then`)
	fmt.Fprintln(w, "    _describe -t commands 'moebius-js command' commands")
	fmt.Fprintln(w, "    _files")
	fmt.Fprintln(w, "    return")
	fmt.Fprintln(w, "  fi")
	fmt.Fprintln(w, "  case $cmd in")
	for _, c := range model {
		fmt.Fprintf(w, "  (%s)\n    _arguments -s -S", shQuote(c.name))
		for _, f := range c.flags {
			for _, spec := range zshSpecs(f) {
				fmt.Fprintf(w, " \\\n      %s", shQuote(spec))
			}
		}
		switch {
		case c.words != nil:
			fmt.Fprintf(w, " \\\n      %s", shQuote("1:"+c.name+":("+strings.Join(c.words, " ")+")"))
		default:
			fmt.Fprintf(w, " \\\n      %s", shQuote("*:file:_files"))
		}
		fmt.Fprintln(w, " ;;")
	}
	fmt.Fprintln(w, "  esac")
	fmt.Fprintln(w, "}")
	fmt.Fprintln(w, `if [[ $funcstack[1] == _moebius-js ]]; then _moebius_js "$@"; else compdef _moebius_js moebius-js; fi`)
}

// zshSpecs are _arguments's specs for a flag: one per spelling.
func zshSpecs(f complFlag) []string {
	help := strings.NewReplacer(`\`, `\\`, "[", `\[`, "]", `\]`, ":", `\:`).Replace(shortHelp(f.help))
	arg := ""
	if f.value {
		action := " " // nothing to offer: a number, a duration
		switch {
		case f.choices != nil:
			action = "(" + strings.Join(f.choices, " ") + ")"
		case f.files:
			action = "_files"
		}
		arg = ":" + f.long + ":" + action
	}
	repeat := ""
	if f.repeat {
		repeat = "*"
	}
	var specs []string
	for _, n := range f.names() {
		sep := ""
		if f.value {
			sep = "=" // --flag=value or --flag value
			if len(n) == 2 {
				sep = "+" // -fvalue or -f value
			}
		}
		specs = append(specs, repeat+n+sep+"["+help+"]"+arg)
	}
	return specs
}

// shQuote quotes s for sh and zsh.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func writeFish(w io.Writer, model []complCommand) {
	names := commandWords(model)
	quote := func(s string) string {
		return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'"
	}
	fmt.Fprintln(w, "# fish completion for moebius-js, made by `moebius-js completion fish`.")
	fmt.Fprintln(w, "# Load it with: moebius-js completion fish | source")
	fmt.Fprintln(w, "complete -c moebius-js -e")
	noCommand := "not __fish_seen_subcommand_from " + names
	for _, c := range model {
		if c.name != "" {
			fmt.Fprintf(w, "complete -c moebius-js -n %s -a %s -d %s\n", quote(noCommand), c.name, quote(c.summary))
		}
	}
	for _, c := range model {
		cond := "__fish_seen_subcommand_from " + c.name
		if c.name == "" {
			cond = noCommand
		}
		for _, f := range c.flags {
			line := fmt.Sprintf("complete -c moebius-js -n %s -l %s", quote(cond), f.long)
			if f.short != "" {
				line += " -s " + f.short
			}
			switch {
			case f.choices != nil:
				line += " -x -a " + quote(strings.Join(f.choices, " "))
			case f.files:
				line += " -r"
			case f.value:
				line += " -x" // a number or a duration: no file names
			}
			fmt.Fprintf(w, "%s -d %s\n", line, quote(shortHelp(f.help)))
		}
		if c.words != nil {
			fmt.Fprintf(w, "complete -c moebius-js -n %s -f -a %s\n", quote(cond), quote(strings.Join(c.words, " ")))
		}
	}
}
