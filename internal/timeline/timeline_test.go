package timeline

import (
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// t0 is the start of a minute.
var t0 = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

func TestRingCostsAtMost2KB(t *testing.T) {
	size := unsafe.Sizeof(Ring{})
	assert.Equal(t, uintptr(1620), size)
	assert.LessOrEqual(t, size, uintptr(2048))
}

func TestRecordAllocatesNothing(t *testing.T) {
	var r Ring
	now := t0
	allocs := testing.AllocsPerRun(1000, func() {
		r.Record(now, 3*time.Millisecond, false)
		now = now.Add(time.Second) // crosses minutes: resets allocate nothing either
	})
	assert.Zero(t, allocs)
}

func TestPointsAreTheLast15Minutes(t *testing.T) {
	var r Ring
	r.Record(t0, time.Millisecond, false)
	r.Record(t0.Add(10*time.Second), time.Millisecond, true)
	r.Record(t0.Add(time.Minute), time.Millisecond, false)

	pts := r.Points(t0.Add(time.Minute + 30*time.Second))
	require.Len(t, pts, Minutes)
	last, prev := pts[Minutes-1], pts[Minutes-2]
	assert.Equal(t, t0.Add(time.Minute), last.Start.UTC())
	assert.Equal(t, uint32(1), last.Requests)
	assert.Equal(t, t0, prev.Start.UTC())
	assert.Equal(t, uint32(2), prev.Requests)
	assert.Equal(t, uint32(1), prev.Errors)
	assert.Equal(t, t0.Add(-13*time.Minute), pts[0].Start.UTC(), "oldest first")
	assert.Zero(t, pts[0].Requests)

	t.Run("a bucket is reset when its minute comes round again", func(t *testing.T) {
		later := t0.Add(Minutes * time.Minute) // same bucket as t0
		r.Record(later, time.Millisecond, false)
		pts := r.Points(later)
		assert.Equal(t, uint32(1), pts[Minutes-1].Requests, "t0's two requests are gone")
		assert.Equal(t, uint32(1), pts[0].Requests, "t0+1m is still in the window")
		assert.Equal(t, t0.Add(time.Minute), pts[0].Start.UTC())
	})
	t.Run("minutes past the window read empty", func(t *testing.T) {
		for _, p := range r.Points(t0.Add(time.Hour)) {
			assert.Zero(t, p.Requests)
		}
	})
	t.Run("a late sample of a minute the bucket moved past is dropped", func(t *testing.T) {
		var r Ring
		r.Record(t0.Add(Minutes*time.Minute), time.Millisecond, false)
		r.Record(t0, time.Millisecond, false)
		pts := r.Points(t0.Add(Minutes * time.Minute))
		assert.Equal(t, uint32(1), pts[Minutes-1].Requests)
	})
}

func TestP99(t *testing.T) {
	within := func(t *testing.T, got, want time.Duration) {
		t.Helper()
		ratio := float64(got) / float64(want)
		assert.True(t, ratio > 1/1.29 && ratio < 1.29, "p99 %v; want within 28%% of %v", got, want)
	}
	t.Run("the 99th of 1000", func(t *testing.T) {
		var r Ring
		for range 990 {
			r.Record(t0, 10*time.Millisecond, false)
		}
		for range 10 {
			r.Record(t0, 500*time.Millisecond, false)
		}
		within(t, r.Points(t0)[Minutes-1].P99, 10*time.Millisecond)
		r.Record(t0, 500*time.Millisecond, false) // now 11 of 1001 are slow
		within(t, r.Points(t0)[Minutes-1].P99, 500*time.Millisecond)
	})
	t.Run("a spread", func(t *testing.T) {
		var r Ring
		for ms := 1; ms <= 1000; ms++ {
			r.Record(t0, time.Duration(ms)*time.Millisecond, false)
		}
		within(t, r.Points(t0)[Minutes-1].P99, 990*time.Millisecond)
	})
	t.Run("the ends", func(t *testing.T) {
		var r Ring
		r.Record(t0, 100*time.Microsecond, false)
		assert.Equal(t, time.Millisecond, r.Points(t0)[Minutes-1].P99)
		r = Ring{}
		r.Record(t0, 2*time.Minute, false)
		assert.Equal(t, time.Minute, r.Points(t0)[Minutes-1].P99)
		assert.Zero(t, new(Ring).Points(t0)[0].P99)
	})
}

func TestLatencyBuckets(t *testing.T) {
	assert.Equal(t, 0, latencyIndex(time.Millisecond))
	assert.Equal(t, 1, latencyIndex(time.Millisecond+1))
	assert.Equal(t, latencyBuckets-2, latencyIndex(time.Minute))
	assert.Equal(t, latencyBuckets-1, latencyIndex(time.Minute+1))
	for i := 1; i < len(upperBounds); i++ {
		ratio := float64(upperBounds[i]) / float64(upperBounds[i-1])
		assert.InDelta(t, 1.65, ratio, 0.01, "bound %d", i)
	}
}

func TestConcurrentRecordsAreCounted(t *testing.T) {
	var r Ring
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				r.Record(t0.Add(time.Duration(g)*time.Second), time.Duration(i)*time.Microsecond, i%10 == 0)
			}
		}()
	}
	wg.Wait()
	p := r.Points(t0)[Minutes-1]
	assert.Equal(t, uint32(8000), p.Requests)
	assert.Equal(t, uint32(800), p.Errors)
}

func BenchmarkRecord(b *testing.B) {
	var r Ring
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		r.Record(now, 3*time.Millisecond, false)
	}
}
