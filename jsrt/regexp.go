package jsrt

import (
	"log/slog"
	"sync"
	"time"

	"github.com/dlclark/regexp2/v2"
)

// Regular expressions and the step budget.
//
// goja runs a regular expression with Go's regexp (linear time) when it
// can, and with regexp2, a backtracking engine, when the pattern needs it
// (a lookahead, a lookbehind, a backreference), or for any pattern matched
// from a lastIndex other than 0 (sticky and global regexps). A backtracking
// match on client data can take exponential time, /(a+)+(?=b)/ on 25 "a"s
// and a "!" seconds, and it is a native call: the watchdog's Interrupt is
// only seen between JavaScript instructions, after the match returns.
//
// regexp2 can give up a match after (about) a time, Regexp.MatchTimeout,
// which it sets at compile time from the package variable
// DefaultMatchTimeout. goja compiles with regexp2.Compile and keeps the
// *regexp2.Regexp unexported, so there is no way to set the field per
// regexp, and when a match times out goja takes the error as "no match".
// So the limit works with the watchdog rather than instead of it:
//
//   - Every regexp2 match may run for regexpMatchLimit(budget), twice the
//     step budget. The watchdog interrupts the step at the budget; when
//     the match gives up, the interrupt is already pending and the next
//     JavaScript instruction ends the step with it (an InterruptedError,
//     which no catch sees): the request gets runaway_handler like any
//     runaway step, and the "no match" is never acted on. A step that
//     starts a match just before its budget runs out lasts at most about
//     three budgets, plus regexp2's clock granularity (100ms).
//   - The limit must be longer than the budget, with room for the
//     watchdog's tick: a match that gave up before the watchdog fired
//     would read as a silent "no match". That is what happens while
//     handlers.js is evaluated (load's limit is five budgets, not the
//     watchdog's one): there a match gives up at two budgets as "no match".
//
// Deliberate exception to "no package-level state": DefaultMatchTimeout is
// regexp2's only knob that goja's compiles see, so limitRegexpMatch sets it,
// once per process, from the step budget of the first Host (a server has
// one). Setting it once, before any runtime exists, is what keeps it free
// of data races: goja reads it on every compile, on every worker. A later
// Host with a longer budget cannot raise it; it is warned about in the log.
var regexpLimit struct {
	once   sync.Once
	budget time.Duration // the step budget the limit was set from
}

// regexpMatchLimit is how long one regexp2 match may run under a step
// budget.
func regexpMatchLimit(budget time.Duration) time.Duration { return 2 * budget }

// limitRegexpMatch limits every regexp2 match in the process to
// regexpMatchLimit(budget) the first time it is called, before any runtime
// is created; later calls only check that their budget fits under that
// limit. New calls it before it loads any runtime. Any goroutine.
func limitRegexpMatch(budget time.Duration, log *slog.Logger) {
	regexpLimit.once.Do(func() {
		regexpLimit.budget = budget
		regexp2.DefaultMatchTimeout = regexpMatchLimit(budget)
	})
	if budget > regexpLimit.budget {
		log.Warn("step budget longer than the one the regular expression match limit was set from: a match that overruns it may read as no match instead of being interrupted",
			"step_budget", budget, "match_limit", regexpMatchLimit(regexpLimit.budget))
	}
}
