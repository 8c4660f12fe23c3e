// Package timeline keeps the last 15 minutes of one endpoint's (or one
// target's) traffic, minute by minute: requests, errors and a latency
// histogram coarse enough to read a p99 from. It is what the status page
// draws its charts from.
//
// A Ring is 15 one-minute buckets of 27 uint32 counters each, 1,620 bytes
// (an allocation of 1,792): the gateway allocates one on an endpoint's
// first request, so an endpoint without traffic costs nothing. Recording is
// a few atomic adds and no allocation; a bucket is reused 15 minutes
// later, when the first request of its new minute resets it.
//
// Latencies fall into 24 buckets whose bounds grow by a factor of about
// 1.65 from 1 ms to 60 s; a p99 is reported as the geometric middle of the
// bucket it falls in, so it is within about 28% of the true value (the
// first bucket reads 1 ms, the last 60 s). A sample recorded while its
// minute's bucket is being reset by another goroutine may be counted in
// the minute before or dropped: the charts are a view of trends, the
// Prometheus series are the exact counts.
package timeline

import (
	"math"
	"runtime"
	"sync/atomic"
	"time"
)

// Minutes is how many one-minute buckets a ring keeps.
const Minutes = 15

// latencyBuckets is the number of latency buckets: one up to 1 ms, 22
// between 1 ms and 60 s, one above.
const latencyBuckets = 24

// resetting marks a bucket whose counters are being zeroed for a new
// minute. Minutes since the epoch stay far below it for millennia.
const resetting = math.MaxUint32

// upperBounds[i] is bucket i's upper bound; the last bucket has none.
var upperBounds = func() [latencyBuckets - 1]time.Duration {
	var b [latencyBuckets - 1]time.Duration
	factor := math.Pow(60_000, 1.0/float64(latencyBuckets-2)) // 1 ms to 60 s
	for i := range b {
		b[i] = time.Duration(float64(time.Millisecond) * math.Pow(factor, float64(i)))
	}
	b[len(b)-1] = time.Minute // exact, whatever rounding did
	return b
}()

type bucket struct {
	minute   atomic.Uint32 // minutes since the Unix epoch; 0 never used
	requests atomic.Uint32
	errors   atomic.Uint32
	latency  [latencyBuckets]atomic.Uint32
}

// Ring is the last Minutes minutes of traffic. The zero value is empty and
// ready; it must not be copied after first use.
type Ring struct {
	buckets [Minutes]bucket
}

// Point is one minute of traffic.
type Point struct {
	// Start is the minute's start.
	Start time.Time
	// Requests and Errors count the requests recorded in the minute and
	// those that failed.
	Requests, Errors uint32
	// P99 is the 99th percentile latency (see the package comment for its
	// precision); 0 when the minute had no requests.
	P99 time.Duration
}

func minuteOf(t time.Time) uint32 { return uint32(t.Unix() / 60) }

// Record counts one request that ended at now, took took and failed or
// not.
func (r *Ring) Record(now time.Time, took time.Duration, failed bool) {
	m := minuteOf(now)
	b := &r.buckets[m%Minutes]
	for spins := 0; ; spins++ {
		cur := b.minute.Load()
		if cur == m {
			break
		}
		if cur == resetting {
			if spins > 100 {
				return // the resetter is descheduled; drop this sample
			}
			runtime.Gosched()
			continue
		}
		if cur > m {
			return // a sample of a minute the bucket has moved past
		}
		if b.minute.CompareAndSwap(cur, resetting) {
			b.requests.Store(0)
			b.errors.Store(0)
			for i := range b.latency {
				b.latency[i].Store(0)
			}
			b.minute.Store(m)
			break
		}
	}
	b.requests.Add(1)
	if failed {
		b.errors.Add(1)
	}
	b.latency[latencyIndex(took)].Add(1)
}

// latencyIndex is the bucket of d: a binary search of the bounds.
func latencyIndex(d time.Duration) int {
	lo, hi := 0, len(upperBounds)
	for lo < hi {
		mid := (lo + hi) / 2
		if d <= upperBounds[mid] {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// Points returns the last Minutes minutes up to now's, oldest first; a
// minute without requests is a Point with zero counts.
func (r *Ring) Points(now time.Time) []Point {
	out := make([]Point, Minutes)
	last := minuteOf(now)
	for i := range out {
		m := last - uint32(Minutes-1-i)
		p := Point{Start: time.Unix(int64(m)*60, 0)}
		b := &r.buckets[m%Minutes]
		if b.minute.Load() == m {
			p.Requests, p.Errors = b.requests.Load(), b.errors.Load()
			var counts [latencyBuckets]uint32
			for j := range counts {
				counts[j] = b.latency[j].Load()
			}
			p.P99 = quantile(counts, 0.99)
		}
		out[i] = p
	}
	return out
}

// quantile reads the q-quantile from bucket counts: the geometric middle
// of the bucket the rank falls in.
func quantile(counts [latencyBuckets]uint32, q float64) time.Duration {
	var n uint64
	for _, c := range counts {
		n += uint64(c)
	}
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	var seen uint64
	for i, c := range counts {
		seen += uint64(c)
		if seen >= rank {
			switch i {
			case 0:
				return upperBounds[0]
			case latencyBuckets - 1:
				return upperBounds[latencyBuckets-2]
			}
			return time.Duration(math.Sqrt(float64(upperBounds[i-1]) * float64(upperBounds[i])))
		}
	}
	return upperBounds[latencyBuckets-2]
}
