package outlier_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator/internal/outlier"
)

// clock is a fake clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func intp(n int) *int { return &n }

func newDetector(t *testing.T, cfg outlier.Config, targets int, c *clock) *outlier.Detector {
	t.Helper()
	d, err := outlier.New(cfg, targets, c.Now)
	require.NoError(t, err)
	return d
}

func fail(d *outlier.Detector, i, times int) {
	for range times {
		d.Record(i, true)
	}
}

func TestConsecutiveFailuresEject(t *testing.T) {
	t.Run("the fifth failure in a row ejects the target by default, the fourth does not", func(t *testing.T) {
		c := newClock()
		d := newDetector(t, outlier.Config{MaxEjectionPercent: 100}, 3, c)
		fail(d, 1, 4)
		assert.False(t, d.Ejected(1, c.Now()))
		d.Record(1, true)
		assert.True(t, d.Ejected(1, c.Now()))
		assert.False(t, d.Ejected(0, c.Now()), "the other targets stay in")
		assert.Equal(t, uint64(1), d.Ejections(1))
	})
	t.Run("a success resets the count of failures in a row", func(t *testing.T) {
		c := newClock()
		d := newDetector(t, outlier.Config{ConsecutiveFailures: intp(3)}, 2, c)
		fail(d, 0, 2)
		d.Record(0, false)
		fail(d, 0, 2)
		assert.False(t, d.Ejected(0, c.Now()), "2 + success + 2 is not 3 in a row")
		assert.Equal(t, 2, d.State(0, c.Now()).ConsecutiveFailures)
		d.Record(0, true)
		assert.True(t, d.Ejected(0, c.Now()))
	})
	t.Run("0 consecutive_failures turns detection off", func(t *testing.T) {
		c := newClock()
		d := newDetector(t, outlier.Config{ConsecutiveFailures: intp(0)}, 2, c)
		assert.False(t, d.Enabled())
		fail(d, 0, 100)
		assert.False(t, d.Ejected(0, c.Now()))
		assert.Zero(t, d.Ejections(0))
		assert.Equal(t, outlier.TargetState{}, d.State(0, c.Now()))
	})
	t.Run("failures recorded while the target is ejected do not count towards the next ejection", func(t *testing.T) {
		c := newClock()
		d := newDetector(t, outlier.Config{ConsecutiveFailures: intp(2), BaseEjectionTime: time.Second}, 2, c)
		fail(d, 0, 2)
		require.True(t, d.Ejected(0, c.Now()))
		fail(d, 0, 10) // requests sent before the ejection, ending after it
		assert.Equal(t, uint64(1), d.Ejections(0))
		c.Advance(time.Second)
		require.False(t, d.Ejected(0, c.Now()))
		d.Record(0, true)
		assert.False(t, d.Ejected(0, c.Now()), "one failure after the return is not two in a row")
	})
}

func TestEjectionTime(t *testing.T) {
	t.Run("each ejection lasts base × ejections so far, capped at max_ejection_time", func(t *testing.T) {
		// Given base 10s and max 35s
		c := newClock()
		d := newDetector(t, outlier.Config{ConsecutiveFailures: intp(1), BaseEjectionTime: 10 * time.Second, MaxEjectionTime: 35 * time.Second}, 1, c)
		for n, want := range []time.Duration{10 * time.Second, 20 * time.Second, 30 * time.Second, 35 * time.Second, 35 * time.Second} {
			// When the target fails at once after each return
			d.Record(0, true)
			start := c.Now()
			// Then it is out until exactly want has passed
			c.Advance(want - time.Nanosecond)
			assert.True(t, d.Ejected(0, c.Now()), "ejection %d: still out 1ns before %s", n+1, want)
			assert.Equal(t, start.Add(want), d.State(0, c.Now()).Until, "ejection %d", n+1)
			c.Advance(time.Nanosecond)
			assert.False(t, d.Ejected(0, c.Now()), "ejection %d: back after %s", n+1, want)
		}
		assert.Equal(t, uint64(5), d.Ejections(0))
	})
	t.Run("the multiplier decays by one per base_ejection_time spent in service", func(t *testing.T) {
		c := newClock()
		d := newDetector(t, outlier.Config{ConsecutiveFailures: intp(1), BaseEjectionTime: 10 * time.Second}, 1, c)
		for range 3 { // ejected for 10s, 20s, 30s: multiplier 3
			d.Record(0, true)
			c.Advance(time.Hour)
			require.False(t, d.Ejected(0, c.Now()))
		}
		// The target returned 1h ago after the third ejection: fully decayed.
		assert.Equal(t, 0, d.State(0, c.Now()).Multiplier)
		d.Record(0, true)
		assert.Equal(t, c.Now().Add(10*time.Second), d.State(0, c.Now()).Until, "a long-healthy target starts over at base")

		// Given multiplier 1 then 2, and 10s (one period) in service
		c.Advance(10 * time.Second)
		require.False(t, d.Ejected(0, c.Now()))
		d.Record(0, true) // multiplier 2: 20s
		c.Advance(20 * time.Second)
		require.False(t, d.Ejected(0, c.Now()))
		c.Advance(15 * time.Second) // one full period and a half in service
		assert.Equal(t, 1, d.State(0, c.Now()).Multiplier)
		// When it fails again, Then 2 × base: 2 decayed to 1, plus this one
		d.Record(0, true)
		assert.Equal(t, c.Now().Add(20*time.Second), d.State(0, c.Now()).Until)
	})
	t.Run("an ejected target returns at its time even when nobody looks at it until later", func(t *testing.T) {
		c := newClock()
		d := newDetector(t, outlier.Config{ConsecutiveFailures: intp(1), BaseEjectionTime: 10 * time.Second}, 1, c)
		d.Record(0, true)
		c.Advance(time.Minute)
		s := d.State(0, c.Now())
		assert.False(t, s.Ejected)
		assert.Equal(t, 0, s.Multiplier, "decay counts from when it was due back (50s ago: 5 periods), not from when it was seen")
	})
}

func TestMaxEjectionPercent(t *testing.T) {
	t.Run("no more than the share of targets is ejected at once; the refused one is ejected once another returns", func(t *testing.T) {
		// Given 4 targets and 50%: 2 may be out
		c := newClock()
		d := newDetector(t, outlier.Config{ConsecutiveFailures: intp(2), BaseEjectionTime: 10 * time.Second, MaxEjectionPercent: 50}, 4, c)
		require.Equal(t, 2, d.MaxEjected())
		fail(d, 0, 2)
		c.Advance(time.Second)
		fail(d, 1, 2)
		// When a third target fails
		fail(d, 2, 2)
		// Then it stays in, and the refusal is counted
		assert.True(t, d.Ejected(0, c.Now()))
		assert.True(t, d.Ejected(1, c.Now()))
		assert.False(t, d.Ejected(2, c.Now()))
		assert.Equal(t, uint64(1), d.Overflows())
		assert.Equal(t, 2, d.State(2, c.Now()).ConsecutiveFailures, "held at the threshold")
		fail(d, 2, 5)
		assert.Equal(t, 2, d.State(2, c.Now()).ConsecutiveFailures, "held, not growing")
		// When target 0's time is up (nobody has looked) and 2 fails again
		c.Advance(9 * time.Second)
		d.Record(2, true)
		// Then 0 is back and 2 is out
		assert.False(t, d.Ejected(0, c.Now()))
		assert.True(t, d.Ejected(2, c.Now()))
		assert.True(t, d.Ejected(1, c.Now()))
	})
	t.Run("a single target can be ejected", func(t *testing.T) {
		c := newClock()
		d := newDetector(t, outlier.Config{ConsecutiveFailures: intp(1), MaxEjectionPercent: 50}, 1, c)
		d.Record(0, true)
		assert.True(t, d.Ejected(0, c.Now()))
		assert.Zero(t, d.Overflows())
	})
}

func TestMaxEjectedRounding(t *testing.T) {
	for _, tc := range []struct{ targets, percent, want int }{
		{1, 50, 1}, {1, 1, 1}, {2, 50, 1}, {3, 10, 1}, {3, 50, 1}, {3, 67, 2},
		{4, 50, 2}, {10, 10, 1}, {10, 25, 2}, {3, 100, 3}, {0, 50, 0},
	} {
		assert.Equal(t, tc.want, outlier.MaxEjected(tc.targets, tc.percent), "%d%% of %d targets", tc.percent, tc.targets)
	}
}

func TestConfig(t *testing.T) {
	t.Run("the zero config is Envoy's defaults", func(t *testing.T) {
		c := outlier.Config{}.WithDefaults()
		assert.Equal(t, 5, *c.ConsecutiveFailures)
		assert.Equal(t, 30*time.Second, c.BaseEjectionTime)
		assert.Equal(t, 5*time.Minute, c.MaxEjectionTime)
		assert.Equal(t, 10, c.MaxEjectionPercent)
		assert.True(t, outlier.Config{}.Enabled())
	})
	t.Run("an unset max_ejection_time follows a base_ejection_time longer than its default", func(t *testing.T) {
		c := outlier.Config{BaseEjectionTime: 10 * time.Minute}
		require.NoError(t, c.Validate())
		assert.Equal(t, 10*time.Minute, c.WithDefaults().MaxEjectionTime)
	})
	t.Run("every bad field is reported at once, by name", func(t *testing.T) {
		err := outlier.Config{
			ConsecutiveFailures: intp(-1),
			BaseEjectionTime:    -time.Second,
			MaxEjectionTime:     -time.Second,
			MaxEjectionPercent:  101,
		}.Validate()
		require.Error(t, err)
		var fields []string
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var fe *outlier.FieldError
			require.True(t, errors.As(e, &fe), "%v is a *FieldError", e)
			fields = append(fields, fe.Field)
		}
		assert.Equal(t, []string{
			"outlier_detection.consecutive_failures", "outlier_detection.base_ejection_time",
			"outlier_detection.max_ejection_time", "outlier_detection.max_ejection_percent",
		}, fields)
	})
	for _, tc := range []struct {
		name string
		cfg  outlier.Config
		want string
	}{
		{"max shorter than base", outlier.Config{BaseEjectionTime: time.Minute, MaxEjectionTime: time.Second},
			"outlier_detection.max_ejection_time: 1s must not be shorter than base_ejection_time (1m0s)"},
		{"max shorter than the default base", outlier.Config{MaxEjectionTime: time.Second},
			"outlier_detection.max_ejection_time: 1s must not be shorter than base_ejection_time (30s)"},
		{"negative percent", outlier.Config{MaxEjectionPercent: -5},
			"outlier_detection.max_ejection_percent: -5 must be between 1 and 100 (0 takes the default, 10)"},
		{"negative failures", outlier.Config{ConsecutiveFailures: intp(-2)},
			"outlier_detection.consecutive_failures: -2 must be >= 0 (0 turns ejection off)"},
	} {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			assert.EqualError(t, tc.cfg.Validate(), tc.want)
			_, err := outlier.New(tc.cfg, 3, nil)
			assert.EqualError(t, err, tc.want, "New refuses it too")
		})
	}
}

func TestConcurrentFailuresEjectOnce(t *testing.T) {
	// Given 8 goroutines failing one target at once
	c := newClock()
	d := newDetector(t, outlier.Config{ConsecutiveFailures: intp(5), MaxEjectionPercent: 100}, 2, c)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				d.Record(0, true)
				d.Ejected(0, c.Now())
				d.Record(1, false)
			}
		})
	}
	wg.Wait()
	// Then it was ejected once (the base time has not passed) and the other not at all
	assert.Equal(t, uint64(1), d.Ejections(0))
	assert.True(t, d.Ejected(0, c.Now()))
	assert.Zero(t, d.Ejections(1))
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	c := newClock()
	d := newDetector(t, outlier.Config{ConsecutiveFailures: intp(3), MaxEjectionPercent: 100}, 3, c)
	now := c.Now()
	allocs := testing.AllocsPerRun(1000, func() {
		d.Record(0, false)
		d.Record(1, true) // ejects, returns, ejects: the slow path too
		d.Ejected(1, now)
		c.Advance(time.Hour)
		now = c.Now()
	})
	assert.Zero(t, allocs)
	assert.Positive(t, d.Ejections(1))
}

// TestInheritKeepsUnchangedTargetsState: after a config change, a target
// that stays keeps its ejection (to the same instant) and its run of
// failures; a new target starts fresh.
func TestInheritKeepsUnchangedTargetsState(t *testing.T) {
	c := newClock()
	old := newDetector(t, outlier.Config{ConsecutiveFailures: intp(2), MaxEjectionPercent: 100}, 3, c)
	fail(old, 0, 2) // ejected
	fail(old, 2, 1) // one failure
	until := old.State(0, c.Now()).Until
	require.True(t, old.Ejected(0, c.Now()))

	c.Advance(time.Second)
	d := newDetector(t, outlier.Config{ConsecutiveFailures: intp(2), MaxEjectionPercent: 100}, 3, c)
	// New order: old target 2 first, then a new one, then old target 0.
	d.Inherit(old, []int{2, -1, 0})
	assert.False(t, d.Ejected(0, c.Now()))
	assert.False(t, d.Ejected(1, c.Now()))
	require.True(t, d.Ejected(2, c.Now()))
	assert.Equal(t, until, d.State(2, c.Now()).Until)
	assert.Equal(t, uint64(1), d.Ejections(2))
	fail(d, 0, 1) // its second in a row
	assert.True(t, d.Ejected(0, c.Now()))
	c.Advance(outlier.DefaultBaseEjectionTime)
	assert.False(t, d.Ejected(2, c.Now()), "the inherited ejection ends when it would have")
}
