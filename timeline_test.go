package orchestrator_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

func lastPoint(t *testing.T, pts []orchestrator.TimelinePoint) orchestrator.TimelinePoint {
	t.Helper()
	require.Len(t, pts, orchestrator.TimelineMinutes)
	return pts[len(pts)-1]
}

func TestTimeline(t *testing.T) {
	t.Run("an endpoint without traffic has none; its requests and 5xx answers land in the current minute", func(t *testing.T) {
		backend := newPolBackend(t, "svc", http.StatusOK)
		o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL}))
		tl, err := o.Timeline("svc")
		require.NoError(t, err)
		assert.Nil(t, tl.Points, "no ring before the first request")

		for range 3 {
			polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusOK)
		}
		backend.status.Store(http.StatusBadGateway)
		polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusBadGateway)

		tl, err = o.Timeline("svc")
		require.NoError(t, err)
		// The minute may have turned between the requests and now.
		var requests, errs uint32
		for _, p := range tl.Points[len(tl.Points)-2:] {
			requests += p.Requests
			errs += p.Errors
		}
		assert.Equal(t, uint32(4), requests)
		assert.Equal(t, uint32(1), errs)
		assert.Zero(t, lastPoint(t, tl.Points).Start.Unix()%60, "points start on the minute")
		assert.Nil(t, tl.Targets, "the url shorthand has no per-target timelines")
	})

	t.Run("several targets: one timeline per target with attempts", func(t *testing.T) {
		a := newPolBackend(t, "a", http.StatusOK)
		b := newPolBackend(t, "b", http.StatusOK)
		o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", Targets: []orchestrator.Target{
			{ID: "a", URL: a.URL}, {ID: "b", URL: b.URL}, {ID: "idle", URL: "http://127.0.0.1:9"},
		}, LoadBalancing: &orchestrator.LoadBalancingConfig{Policy: "first"}}))
		polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusOK)
		require.NoError(t, o.DrainTarget("svc", "a"))
		polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusOK)

		tl, err := o.Timeline("svc")
		require.NoError(t, err)
		require.Len(t, tl.Targets, 2, "a and b have had attempts; idle has none")
		sum := func(pts []orchestrator.TimelinePoint) (n uint32) {
			for _, p := range pts {
				n += p.Requests
			}
			return n
		}
		assert.Equal(t, uint32(1), sum(tl.Targets["a"]))
		assert.Equal(t, uint32(1), sum(tl.Targets["b"]))
		assert.Equal(t, uint32(2), sum(tl.Points))
	})

	t.Run("a config change keeps the endpoint's timeline, even one that starts its counters afresh", func(t *testing.T) {
		backend := newPolBackend(t, "svc", http.StatusOK)
		other := newPolBackend(t, "other", http.StatusOK)
		ep := orchestrator.Endpoint{Name: "svc", URL: backend.URL}
		o := polNew(t, orchestrator.WithEndpoints(ep))
		polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusOK)

		ep.URL = other.URL // a new upstream: the traffic counters restart
		require.NoError(t, o.Apply(context.Background(), orchestrator.Desired{Endpoints: []orchestrator.Endpoint{ep}}))
		polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusOK)
		v := polView(t, o, "svc")
		assert.Equal(t, uint64(1), v.Traffic.Requests, "the counters restarted")
		tl, err := o.Timeline("svc")
		require.NoError(t, err)
		var n uint32
		for _, p := range tl.Points {
			n += p.Requests
		}
		assert.Equal(t, uint32(2), n, "the timeline kept the first request")
	})

	t.Run("an unknown id", func(t *testing.T) {
		_, err := polNew(t).Timeline("nope")
		assert.ErrorIs(t, err, orchestrator.ErrNotFound)
	})
}
