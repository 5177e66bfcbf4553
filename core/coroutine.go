package core

import (
	"errors"
	"time"
)

// Input is what a coroutine resumes with: a value, or an error thrown at the
// coroutine's yield when Err is not nil.
type Input struct {
	Value any
	Err   error
}

// Kind says what a step asks the scheduler to do next.
type Kind uint8

const (
	// Yield: run the coroutine again next round, resuming it with Step.In.
	Yield Kind = iota
	// Park: leave the coroutine until Resolve is called with Step.Wait (it
	// resumes with Resolve's input) or until Step.Until (it resumes with
	// Step.In). A zero Wait means only the deadline wakes it; a zero Until
	// means only Resolve does.
	Park
	// Call: push Step.Child on the stack and step it at once; when it is
	// done, the coroutine resumes with the child's result.
	Call
	// Done: the coroutine has finished. Its parent resumes with Step.In (a
	// return value, or an error thrown into the parent); a root coroutine ends
	// its job with Step.In.
	Done
	// Abort: the coroutine is dead and must never be stepped or cancelled again
	// (for example, its runtime was interrupted mid-step). The rest of the
	// task's stack is cancelled and the job ends with Step.In.
	Abort
)

// Step is a coroutine's answer to being resumed.
type Step struct {
	Kind  Kind
	In    Input     // Yield, Park (at the deadline), Done, Abort: see Kind
	Child Coroutine // Call
	Until time.Time // Park
	Wait  WaitKey   // Park
}

// Coroutine is one level of a task's stack: a running generator, or anything
// that behaves like one. The scheduler calls a coroutine's methods only on the
// scheduler goroutine and never concurrently.
type Coroutine interface {
	// Resume runs the coroutine from where it stopped until it next yields or
	// ends. The first call starts it (with a zero Input).
	Resume(in Input) Step
	// Cancel ends a coroutine that is suspended, before its work is done, so
	// that its cleanup (a generator's finally blocks) runs.
	Cancel()
}

// Job is one request: the work a client asked for, not yet started or
// running. The scheduler calls its methods on the scheduler goroutine.
type Job interface {
	// Start begins the job and returns its root coroutine, or a nil coroutine when
	// the job completed at once (then err is its failure, or nil).
	Start() (Coroutine, error)
	// Finish reports how the job ended: Input.Value is the root coroutine's
	// result, Input.Err its failure, or ErrCancelled / ErrReplaced when it
	// was stopped. Finish is called exactly once for every job that Submit
	// or Spawn accepted, including jobs that never started.
	Finish(result Input)
}

// WaitKey names one pending wait (a remote reply, say) that Resolve ends.
// Keys come from [Scheduler.NewWaitKey]; zero is never a valid key.
type WaitKey uint64

// Strategy decides what a new request does when its client's task is busy.
type Strategy uint8

const (
	// Queue runs the request after the work already accepted (default).
	Queue Strategy = iota
	// Replace cancels the running work and every queued request, then
	// starts the new one.
	Replace
	// Ignore drops the new request.
	Ignore
)

// ParseStrategy maps a strategy's name ("queue", "replace", "ignore"; ""
// means queue) to its value. Any goroutine.
func ParseStrategy(name string) (Strategy, error) {
	switch name {
	case "", "queue":
		return Queue, nil
	case "replace":
		return Replace, nil
	case "ignore":
		return Ignore, nil
	}
	return Queue, errors.New(`unknown strategy "` + name + `" (want queue, replace or ignore)`)
}

// String returns the strategy's name. Any goroutine.
func (s Strategy) String() string {
	switch s {
	case Replace:
		return "replace"
	case Ignore:
		return "ignore"
	}
	return "queue"
}

// Outcome says what Submit did with a request.
type Outcome uint8

const (
	// Started: the task was idle; the job runs in the next turn.
	Started Outcome = iota
	// Queued: the job waits behind the task's current work.
	Queued
	// Replaced: the task's previous work was cancelled for this job.
	Replaced
	// Ignored: the task was busy and the strategy was Ignore; the job was
	// dropped and Finish will not be called.
	Ignored
	// Refused: the client's queue was full; the job was dropped and Finish
	// will not be called.
	Refused
)

// Errors a job can end with, besides its coroutines' own.
var (
	// ErrCancelled ends a job whose client went away, that was cancelled,
	// or that was still running when the scheduler stopped.
	ErrCancelled = errors.New("cancelled")
	// ErrReplaced ends a job cancelled by a newer request with the Replace
	// strategy.
	ErrReplaced = errors.New("replaced by a newer request")
	// ErrStackOverflow is thrown into a coroutine whose Call would make its
	// task's stack deeper than Config.MaxStackDepth.
	ErrStackOverflow = errors.New("too many nested generators")
)
