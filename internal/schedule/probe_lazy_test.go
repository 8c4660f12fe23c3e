package schedule_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator/internal/schedule"
)

// schedulerGoroutines counts the goroutines running a Scheduler's code (its
// loop or a worker), judged by their frames, not by the "created by" line.
func schedulerGoroutines() int {
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	n := 0
	for _, g := range strings.Split(stacks, "\n\n") {
		for _, line := range strings.Split(g, "\n") {
			if !strings.HasPrefix(line, "created by ") && strings.Contains(line, "orchestrator/internal/schedule.") {
				n++
				break
			}
		}
	}
	return n
}

// waitGoroutinesAtMost polls until at most want scheduler goroutines are
// left or the wait is over, and returns the last count. It polls on the
// test's goroutine: require.Eventually would add one of its own.
func waitGoroutinesAtMost(want int) int {
	deadline := time.Now().Add(wait)
	for {
		n := schedulerGoroutines()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		<-time.After(tick)
	}
}

func TestSchedulerStartsGoroutinesWhenWorkArrives(t *testing.T) {
	// Given a scheduler of 4 workers whose jobs block until released
	before := schedulerGoroutines()
	running := make(chan string, 10)
	release := make(chan struct{})
	s := schedule.New(4, func(ctx context.Context, key string) time.Duration {
		running <- key
		select {
		case <-release:
		case <-ctx.Done():
		}
		return time.Hour
	}, nil)
	t.Cleanup(s.Close)

	// Then New starts no goroutine
	got := schedulerGoroutines()
	require.Equal(t, before, got, "goroutines after New: got %d more; want none", got-before)

	// When a key due in an hour is added, only the loop that waits for it starts
	s.Add("later", time.Hour)
	got = schedulerGoroutines()
	require.Equal(t, before+1, got, "goroutines with one key due in an hour: got %d more; want 1 (the loop)", got-before)

	// When one key is due now, one worker runs it
	s.Add("k0", 0)
	<-running
	got = schedulerGoroutines()
	require.Equal(t, before+2, got, "goroutines running one job: got %d more; want 2 (loop and one worker)", got-before)

	// When more keys are due than there are workers, the workers reach
	// their bound and no more start
	for i := 1; i < 8; i++ {
		s.Add(fmt.Sprintf("k%d", i), 0)
	}
	for range 3 {
		select {
		case <-running:
		case <-time.After(wait):
			t.Fatal("fewer than 4 jobs ran at once; want 4")
		}
	}
	got = schedulerGoroutines()
	require.Equal(t, before+5, got, "goroutines running 4 jobs: got %d more; want 5 (loop and 4 workers)", got-before)
	assert.Empty(t, running, "jobs running beside the 4 workers: got %d more; want none", len(running))

	// When it is closed, every goroutine it started ends
	s.Close()
	got = waitGoroutinesAtMost(before)
	require.Equal(t, before, got, "goroutines after Close: got %d more; want none", got-before)

	// And a key added after Close starts none
	s.Add("late", 0)
	got = schedulerGoroutines()
	assert.Equal(t, before, got, "goroutines after an Add on a closed scheduler: got %d more; want none", got-before)
}
