package schedule_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator/internal/schedule"
)

const (
	wait = 10 * time.Second
	tick = time.Millisecond
)

// recorder notes when each key ran.
type recorder struct {
	mu   sync.Mutex
	runs map[string][]time.Time
}

func newRecorder() *recorder { return &recorder{runs: make(map[string][]time.Time)} }

func (r *recorder) note(key string) {
	r.mu.Lock()
	r.runs[key] = append(r.runs[key], time.Now())
	r.mu.Unlock()
}

func (r *recorder) times(key string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.runs[key]...)
}

func (r *recorder) count(key string) int { return len(r.times(key)) }

func (r *recorder) waitCount(t *testing.T, key string, atLeast int) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got := r.count(key)
		assert.GreaterOrEqual(c, got, atLeast, "runs of %s: got %d; want at least %d", key, got, atLeast)
	}, wait, tick)
}

func newScheduler[K comparable](t *testing.T, workers int, run schedule.RunFunc[K], onPanic func(K, any)) *schedule.Scheduler[K] {
	t.Helper()
	s := schedule.New(workers, run, onPanic)
	t.Cleanup(s.Close)
	return s
}

func TestSchedulerRunsEachKeyAfterItsDelay(t *testing.T) {
	// Given a key due now and one due in 50ms, neither rescheduled soon
	rec := newRecorder()
	s := newScheduler(t, 4, func(_ context.Context, key string) time.Duration {
		rec.note(key)
		return time.Hour
	}, nil)
	added := time.Now()
	s.Add("later", 50*time.Millisecond)
	s.Add("now", 0)
	require.Equal(t, 2, s.Len(), "Len: got %d; want 2", s.Len())

	// When both have run
	rec.waitCount(t, "now", 1)
	rec.waitCount(t, "later", 1)

	// Then each ran once, the later one not before its delay
	now, later := rec.times("now")[0], rec.times("later")[0]
	assert.True(t, now.Before(later), "the key due now ran at %v; want before the one due later at %v", now, later)
	assert.GreaterOrEqual(t, later.Sub(added), 50*time.Millisecond, "the 50ms key ran after %v; want at least 50ms", later.Sub(added))
	assert.Equal(t, 1, rec.count("now"), "runs of now: got %d; want 1", rec.count("now"))
}

func TestSchedulerReschedulesByTheReturnedDuration(t *testing.T) {
	t.Run("each run is followed by the next after the delay it returned", func(t *testing.T) {
		rec := newRecorder()
		s := newScheduler(t, 2, func(_ context.Context, key string) time.Duration {
			rec.note(key)
			return 20 * time.Millisecond
		}, nil)
		s.Add("k", 0)
		rec.waitCount(t, "k", 4)
		ts := rec.times("k")
		for i := 1; i < len(ts); i++ {
			gap := ts[i].Sub(ts[i-1])
			assert.GreaterOrEqual(t, gap, 20*time.Millisecond, "gap between runs %d and %d: got %v; want at least 20ms", i, i+1, gap)
		}
	})

	t.Run("a long returned delay postpones the next run", func(t *testing.T) {
		// Given a job that asks for 10ms after its first run and an hour after its second
		rec := newRecorder()
		s := newScheduler(t, 2, func(_ context.Context, key string) time.Duration {
			rec.note(key)
			if rec.count(key) == 1 {
				return 10 * time.Millisecond
			}
			return time.Hour
		}, nil)
		s.Add("k", 0)

		// Then it runs twice, 10ms or more apart, and not a third time
		rec.waitCount(t, "k", 2)
		require.Never(t, func() bool { return rec.count("k") > 2 }, 100*time.Millisecond, 5*time.Millisecond,
			"a third run came; want none for an hour")
		ts := rec.times("k")
		assert.GreaterOrEqual(t, ts[1].Sub(ts[0]), 10*time.Millisecond, "gap: got %v; want at least 10ms", ts[1].Sub(ts[0]))
		assert.Equal(t, 1, s.Len(), "Len: got %d; want 1 (the key stays scheduled)", s.Len())
	})
}

// overlapGuard fails when a key's runs overlap.
type overlapGuard struct {
	mu      sync.Mutex
	running map[string]bool
	overlap atomic.Int64
}

func (g *overlapGuard) enter(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running[key] {
		g.overlap.Add(1)
	}
	g.running[key] = true
}

func (g *overlapGuard) leave(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.running[key] = false
}

func TestSchedulerNeverRunsOneKeyTwiceAtOnce(t *testing.T) {
	t.Run("a key that is due again while it runs waits for the run to end", func(t *testing.T) {
		// Given a job that asks to run again at once but takes a moment,
		// with plenty of idle workers
		g := &overlapGuard{running: make(map[string]bool)}
		var runs atomic.Int64
		s := newScheduler(t, 8, func(ctx context.Context, key string) time.Duration {
			g.enter(key)
			defer g.leave(key)
			runs.Add(1)
			select {
			case <-time.After(2 * time.Millisecond): // the job's work
			case <-ctx.Done():
			}
			return 0
		}, nil)
		s.Add("k", 0)

		// When it is triggered over and over while it runs
		deadline := time.Now().Add(wait)
		for runs.Load() < 20 {
			require.True(t, time.Now().Before(deadline), "runs: got %d within %v; want 20", runs.Load(), wait)
			s.Trigger("k")
			select {
			case <-time.After(100 * time.Microsecond):
			case <-t.Context().Done():
			}
		}

		// Then no two runs of it overlapped
		assert.Zero(t, g.overlap.Load(), "overlapping runs: got %d; want 0", g.overlap.Load())
	})

	t.Run("a key added again while it runs starts its new schedule after the run ends", func(t *testing.T) {
		// Given a run of k that blocks until released
		started := make(chan string, 10)
		release := make(chan struct{})
		g := &overlapGuard{running: make(map[string]bool)}
		s := newScheduler(t, 4, func(ctx context.Context, key string) time.Duration {
			g.enter(key)
			defer g.leave(key)
			started <- key
			select {
			case <-release:
			case <-ctx.Done():
			}
			return time.Hour
		}, nil)
		s.Add("k", 0)
		select {
		case <-started:
		case <-time.After(wait):
			t.Fatal("k never ran")
		}

		// When k is added again (as a config change does) while that run is under way
		s.Add("k", 0)

		// Then the new schedule does not start a second run beside the first
		require.Never(t, func() bool { return len(started) > 0 }, 100*time.Millisecond, 2*time.Millisecond,
			"a second run of k started while the first was running; want it to wait")
		assert.Zero(t, g.overlap.Load(), "overlapping runs: got %d; want 0", g.overlap.Load())

		// And once the first run ends, the new schedule runs it
		close(release)
		select {
		case <-started:
		case <-time.After(wait):
			t.Fatal("k was not run again after being re-added; want it run once the first run ended")
		}
		assert.Zero(t, g.overlap.Load(), "overlapping runs: got %d; want 0", g.overlap.Load())
	})

	t.Run("a key removed and added again while it runs waits for the run to end", func(t *testing.T) {
		started := make(chan string, 10)
		release := make(chan struct{})
		g := &overlapGuard{running: make(map[string]bool)}
		s := newScheduler(t, 4, func(ctx context.Context, key string) time.Duration {
			g.enter(key)
			defer g.leave(key)
			started <- key
			select {
			case <-release:
			case <-ctx.Done():
			}
			return time.Hour
		}, nil)
		s.Add("k", 0)
		select {
		case <-started:
		case <-time.After(wait):
			t.Fatal("k never ran")
		}

		s.Remove("k")
		s.Add("k", 0)

		require.Never(t, func() bool { return len(started) > 0 }, 100*time.Millisecond, 2*time.Millisecond,
			"a second run of k started while the first was running; want it to wait")
		close(release)
		select {
		case <-started:
		case <-time.After(wait):
			t.Fatal("k was not run again after being re-added")
		}
		assert.Zero(t, g.overlap.Load(), "overlapping runs: got %d; want 0", g.overlap.Load())
	})
}

func TestSchedulerRemove(t *testing.T) {
	t.Run("a removed key is not run again", func(t *testing.T) {
		// Given a key that runs every millisecond and whose third run blocks
		var runs atomic.Int64
		third := make(chan struct{})
		release := make(chan struct{})
		s := newScheduler(t, 2, func(ctx context.Context, key string) time.Duration {
			if runs.Add(1) == 3 {
				close(third)
				select {
				case <-release:
				case <-ctx.Done():
				}
			}
			return time.Millisecond
		}, nil)
		s.Add("k", 0)
		select {
		case <-third:
		case <-time.After(wait):
			t.Fatal("k did not run three times")
		}

		// When it is removed during a run
		s.Remove("k")
		close(release)

		// Then that run's result does not reschedule it
		require.Never(t, func() bool { return runs.Load() > 3 }, 100*time.Millisecond, 2*time.Millisecond,
			"k ran after Remove; want no more runs")
		assert.Equal(t, 0, s.Len(), "Len: got %d; want 0", s.Len())
	})

	t.Run("a removed key that was waiting never runs, and others still do", func(t *testing.T) {
		rec := newRecorder()
		s := newScheduler(t, 2, func(_ context.Context, key string) time.Duration {
			rec.note(key)
			return time.Hour
		}, nil)
		s.Add("gone", 30*time.Millisecond)
		s.Add("stays", 30*time.Millisecond)
		s.Remove("gone")
		s.Remove("unknown") // harmless
		rec.waitCount(t, "stays", 1)
		require.Never(t, func() bool { return rec.count("gone") > 0 }, 60*time.Millisecond, 2*time.Millisecond,
			"a removed key ran; want it never run")
	})
}

func TestSchedulerTrigger(t *testing.T) {
	rec := newRecorder()
	s := newScheduler(t, 2, func(_ context.Context, key string) time.Duration {
		rec.note(key)
		return time.Hour
	}, nil)

	t.Run("it runs a key due in an hour now", func(t *testing.T) {
		s.Add("k", time.Hour)
		assert.True(t, s.Trigger("k"), "Trigger(k): got false; want true")
		rec.waitCount(t, "k", 1)
	})

	t.Run("it reports false for an unknown key", func(t *testing.T) {
		assert.False(t, s.Trigger("nope"), "Trigger(nope): got true; want false")
	})
}

func TestSchedulerBoundsItsWorkers(t *testing.T) {
	// Given 3 workers, 10 keys due now and jobs that block until released
	var cur, peak atomic.Int64
	release := make(chan struct{})
	rec := newRecorder()
	s := newScheduler(t, 3, func(ctx context.Context, key string) time.Duration {
		n := cur.Add(1)
		defer cur.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		rec.note(key)
		return time.Hour
	}, nil)
	for i := range 10 {
		s.Add(fmt.Sprintf("k%d", i), 0)
	}

	// Then three run at once and no more
	require.Eventually(t, func() bool { return cur.Load() == 3 }, wait, tick, "jobs running: got %d; want 3", cur.Load())
	require.Never(t, func() bool { return cur.Load() > 3 }, 50*time.Millisecond, time.Millisecond,
		"more than 3 jobs ran at once; want at most 3")

	// When they are released, every key runs
	close(release)
	for i := range 10 {
		rec.waitCount(t, fmt.Sprintf("k%d", i), 1)
	}
	assert.Equal(t, int64(3), peak.Load(), "most jobs at once: got %d; want 3", peak.Load())
}

func TestSchedulerRecoversFromPanics(t *testing.T) {
	// Given a job that panics on its first run of "bad"
	type report struct {
		key string
		v   any
	}
	reports := make(chan report, 10)
	rec := newRecorder()
	s := newScheduler(t, 1, func(_ context.Context, key string) time.Duration {
		rec.note(key)
		if key == "bad" && rec.count(key) == 1 {
			panic("boom")
		}
		return time.Hour
	}, func(key string, v any) { reports <- report{key, v} })
	s.Add("bad", 0)

	// Then the panic is reported with its key and value
	select {
	case r := <-reports:
		assert.Equal(t, "bad", r.key, "panicking key: got %q; want bad", r.key)
		assert.Equal(t, "boom", fmt.Sprint(r.v), "panic value: got %v; want boom", r.v)
	case <-time.After(wait):
		t.Fatal("no panic report; want one")
	}

	// And the only worker survives to run other keys
	s.Add("good", 0)
	rec.waitCount(t, "good", 1)

	// And the panicking key stays scheduled and runs again
	assert.Equal(t, 2, s.Len(), "Len: got %d; want 2", s.Len())
	rec.waitCount(t, "bad", 2)
}

func TestSchedulerClose(t *testing.T) {
	t.Run("Close cancels running jobs and waits for them to return", func(t *testing.T) {
		// Given a job that, once cancelled, still needs to be let go
		started := make(chan struct{})
		cancelled := make(chan struct{})
		finish := make(chan struct{})
		var returned atomic.Bool
		s := schedule.New(2, func(ctx context.Context, key string) time.Duration {
			close(started)
			<-ctx.Done()
			close(cancelled)
			<-finish
			returned.Store(true)
			return time.Hour
		}, nil)
		s.Add("k", 0)
		select {
		case <-started:
		case <-time.After(wait):
			t.Fatal("the job never started")
		}

		// When the scheduler is closed
		closed := make(chan struct{})
		go func() {
			s.Close()
			close(closed)
		}()

		// Then the job's context is cancelled
		select {
		case <-cancelled:
		case <-time.After(wait):
			t.Fatal("the running job's context was not cancelled by Close")
		}

		// And Close does not return while the job runs
		require.Never(t, func() bool {
			select {
			case <-closed:
				return true
			default:
				return false
			}
		}, 50*time.Millisecond, time.Millisecond, "Close returned while a job was still running; want it to wait")

		// And returns once it has
		close(finish)
		select {
		case <-closed:
		case <-time.After(wait):
			t.Fatal("Close did not return after the job did")
		}
		assert.True(t, returned.Load(), "the job had not returned when Close did")
	})

	t.Run("Close returns at once when nothing runs, and nothing runs after it", func(t *testing.T) {
		var runs atomic.Int64
		s := schedule.New(2, func(context.Context, string) time.Duration {
			runs.Add(1)
			return time.Millisecond
		}, nil)
		s.Add("soon", 20*time.Millisecond)
		closed := make(chan struct{})
		go func() {
			s.Close()
			close(closed)
		}()
		select {
		case <-closed:
		case <-time.After(wait):
			t.Fatal("Close of an idle scheduler did not return")
		}
		n := runs.Load()
		require.Never(t, func() bool { return runs.Load() != n }, 60*time.Millisecond, 2*time.Millisecond,
			"a job ran after Close; want none")
	})
}
