package waitfor

import (
	"sync"
	"testing"
	"time"
)

func TestCondReturnsWhenDoneHoldsAndFalseAtTheDeadline(t *testing.T) {
	var mu sync.Mutex
	c := sync.NewCond(&mu)
	n := 0
	go func() {
		for i := 0; i < 3; i++ {
			mu.Lock()
			n++
			mu.Unlock()
			c.Broadcast()
		}
	}()
	mu.Lock()
	if !Cond(&mu, c, 5*time.Second, func() bool { return n == 3 }) {
		t.Fatal("gave up although done came to hold")
	}
	start := time.Now()
	if Cond(&mu, c, 50*time.Millisecond, func() bool { return n == 4 }) {
		t.Fatal("reported done for a condition that never held")
	}
	mu.Unlock()
	if el := time.Since(start); el < 50*time.Millisecond {
		t.Fatalf("gave up after %v, before the deadline", el)
	}
}
