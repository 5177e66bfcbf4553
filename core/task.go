package core

import (
	"container/heap"
	"time"
)

type taskState uint8

const (
	stateIdle     taskState = iota // no job (about to be retired or begun)
	stateRunnable                  // due a step this round or the next
	stateStepping                  // being stepped now
	stateParked                    // waiting for Resolve or its deadline
	stateGone                      // retired; stale references skip it
)

// task is one client's work (or one spawned job): the running job's stack of
// coroutines and the jobs queued behind it.
type task struct {
	client string  // the client it serves, for client tasks
	spawn  SpawnID // nonzero for spawned tasks

	job     Job         // the running job; nil when idle
	started bool        // job.Start has been called
	stack   []Coroutine // the running job's coroutines, root first
	in      Input       // what the top coroutine resumes with next
	queue   []Job       // jobs waiting behind job, oldest at qhead
	qhead   int

	state   taskState
	listed  bool      // present in Scheduler.next
	wait    WaitKey   // the key it is parked on, if any
	until   time.Time // its deadline while in the timer heap
	heapIdx int       // index in the timer heap, -1 when not in it
}

func (t *task) queued() int { return len(t.queue) - t.qhead }

func (t *task) dequeue() Job {
	if t.qhead == len(t.queue) {
		return nil
	}
	job := t.queue[t.qhead]
	t.queue[t.qhead] = nil
	t.qhead++
	if t.qhead == len(t.queue) {
		t.queue, t.qhead = t.queue[:0], 0
	}
	return job
}

// timerHeap orders parked tasks by deadline (container/heap, min first).
type timerHeap []*task

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].until.Before(h[j].until) }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*task)
	t.heapIdx = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.heapIdx = -1
	return t
}

func (h *timerHeap) push(t *task) { heap.Push(h, t) }
func (h *timerHeap) pop() *task   { return heap.Pop(h).(*task) }
func (h *timerHeap) remove(t *task) {
	if t.heapIdx >= 0 {
		heap.Remove(h, t.heapIdx)
	}
}
