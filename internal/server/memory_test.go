package server

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestMemoryReleaserDebounces: a release is scheduled, moved by the next
// request for one, and cancelled by close.
func TestMemoryReleaserDebounces(t *testing.T) {
	t.Run("releases once requests stop", func(t *testing.T) {
		released := make(chan struct{}, 8)
		r := &memoryReleaser{free: func() { released <- struct{}{} }}
		defer r.close()
		r.releaseAfter(time.Hour)
		r.releaseAfter(time.Millisecond) // moves the scheduled one
		select {
		case <-released:
		case <-time.After(10 * time.Second):
			t.Fatal("no release within 10s of one scheduled 1ms ahead")
		}
	})
	t.Run("close cancels a scheduled release", func(t *testing.T) {
		var calls atomic.Int32
		r := &memoryReleaser{free: func() { calls.Add(1) }}
		r.releaseAfter(time.Hour)
		r.close()
		r.releaseAfter(time.Millisecond) // after close: ignored
		if r.timer.Stop() {
			t.Error("a release is still scheduled after close")
		}
		if n := calls.Load(); n != 0 {
			t.Errorf("got %d releases; want none", n)
		}
	})
	t.Run("close waits for a release under way", func(t *testing.T) {
		started, finish := make(chan struct{}), make(chan struct{})
		var done atomic.Bool
		r := &memoryReleaser{free: func() {
			close(started)
			<-finish
			done.Store(true)
		}}
		r.releaseAfter(0)
		<-started
		finished := make(chan bool)
		go func() {
			r.close()
			finished <- done.Load()
		}()
		close(finish)
		if !<-finished {
			t.Error("close returned before the release under way finished")
		}
	})
}
