package server

import (
	"sync"
	"testing"
)

// TestMemoryReleaserRunsOneAtATime: releases asked for together run one
// after another, none is lost while one runs, and wait sees them all end.
func TestMemoryReleaserRunsOneAtATime(t *testing.T) {
	var r memoryReleaser
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.release()
		}()
	}
	wg.Wait()
	r.wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running || r.again {
		t.Fatalf("after wait: running %v, again %v; want neither", r.running, r.again)
	}
}
