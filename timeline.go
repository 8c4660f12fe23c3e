package orchestrator

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/orchestrator-go/orchestrator/internal/timeline"
)

// TimelineMinutes is how many minutes an endpoint's timeline covers.
const TimelineMinutes = timeline.Minutes

// TimelinePoint is one minute of an endpoint's or a target's traffic.
type TimelinePoint struct {
	// Start is the minute's start.
	Start time.Time `json:"start"`
	// Requests counts the requests that ended in the minute: answered
	// requests for an endpoint, attempts for a target.
	Requests uint32 `json:"requests"`
	// Errors counts those that failed: answered with a 5xx for an
	// endpoint (the gateway's own 502, 503 and 504 included); for a
	// target, attempts its breaker counts as failures.
	Errors uint32 `json:"errors"`
	// P99 is the minute's 99th percentile latency, within about 28% (a
	// histogram of 24 buckets from 1 ms to 60 s); 0 without requests.
	P99 Duration `json:"p99"`
}

// EndpointTimeline is the last TimelineMinutes minutes of an endpoint's
// traffic, oldest first, the current minute last (partly elapsed).
type EndpointTimeline struct {
	// Points is the endpoint's; nil when it has served no request since
	// it was registered.
	Points []TimelinePoint `json:"points"`
	// Targets holds, for an endpoint with a targets list, the timeline of
	// each target that has had an attempt, by target id: the latency of an
	// attempt is to its response headers.
	Targets map[string][]TimelinePoint `json:"targets,omitempty"`
}

// Timeline returns the endpoint's recent traffic, minute by minute, as the
// status page charts it. The timelines exist only for endpoints (and
// targets) that have had traffic: each is allocated on its first request,
// 1,620 bytes, and kept across config changes of the endpoint (of the
// target, while it keeps its id and URL). Errors: ErrNotFound.
func (o *Orchestrator) Timeline(id string) (EndpointTimeline, error) {
	rt := o.table.Load().route(id)
	if rt == nil {
		return EndpointTimeline{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	now := time.Now()
	var out EndpointTimeline
	if r := rt.timeline.peek(); r != nil {
		out.Points = timelinePoints(r, now)
	}
	if rt.set == nil {
		return out, nil
	}
	for _, u := range rt.targets {
		if s := u.stats(); s != nil {
			if r := s.timeline.peek(); r != nil {
				if out.Targets == nil {
					out.Targets = make(map[string][]TimelinePoint, len(rt.targets))
				}
				out.Targets[u.id] = timelinePoints(r, now)
			}
		}
	}
	return out, nil
}

func timelinePoints(r *timeline.Ring, now time.Time) []TimelinePoint {
	pts := r.Points(now)
	out := make([]TimelinePoint, len(pts))
	for i, p := range pts {
		out[i] = TimelinePoint{Start: p.Start, Requests: p.Requests, Errors: p.Errors, P99: Duration(p.P99)}
	}
	return out
}

// lazyTimeline is a ring allocated on first use, so that an endpoint or a
// target without traffic costs one nil pointer.
type lazyTimeline struct {
	p atomic.Pointer[timeline.Ring]
}

func (l *lazyTimeline) peek() *timeline.Ring { return l.p.Load() }

func (l *lazyTimeline) record(now time.Time, took time.Duration, failed bool) {
	r := l.p.Load()
	if r == nil {
		l.p.CompareAndSwap(nil, new(timeline.Ring))
		r = l.p.Load()
	}
	r.Record(now, took, failed)
}

// carry gives l the ring of from, when it has one: a config change that
// starts the endpoint's counters afresh keeps its recent history.
func (l *lazyTimeline) carry(from *lazyTimeline) {
	if r := from.peek(); r != nil {
		l.p.Store(r)
	}
}
