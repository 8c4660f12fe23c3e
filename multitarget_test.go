package orchestrator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

// mtBackends starts n backends named b0..bn-1, answering status.
func mtBackends(t *testing.T, n, status int) []*polBackend {
	bs := make([]*polBackend, n)
	for i := range bs {
		bs[i] = newPolBackend(t, fmt.Sprintf("b%d", i), status)
	}
	return bs
}

// mtTargets lists the backends as targets with ids b0.. and base path /bN.
func mtTargets(bs []*polBackend, weights ...int) []orchestrator.Target {
	ts := make([]orchestrator.Target, len(bs))
	for i, b := range bs {
		ts[i] = orchestrator.Target{ID: b.name, URL: b.URL + "/" + b.name}
		if i < len(weights) {
			ts[i].Weight = intp(weights[i])
		}
	}
	return ts
}

// mtSpread sends n GETs and counts the answers by backend.
func mtSpread(t *testing.T, o http.Handler, n int, path string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		res := polGet(o, path)
		got[res.Header.Get("X-Backend")]++
	}
	return got
}

func mtTarget(t *testing.T, o *orchestrator.Orchestrator, id, target string) orchestrator.TargetReport {
	t.Helper()
	for _, tr := range polView(t, o, id).Targets {
		if tr.ID == target {
			return tr
		}
	}
	t.Fatalf("endpoint %s has no target %s in its view", id, target)
	return orchestrator.TargetReport{}
}

func TestRoundRobinFollowsWeightsAndEachTargetsBasePath(t *testing.T) {
	bs := mtBackends(t, 3, http.StatusOK)
	o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", Targets: mtTargets(bs, 1, 2, 3)}))
	assert.Equal(t, map[string]int{"b0": 10, "b1": 20, "b2": 30}, mtSpread(t, o, 60, "/orchestrator/svc/x?q=1"))
	res := polGet(o, "/orchestrator/svc/x?q=1")
	backend := res.Header.Get("X-Backend")
	assert.Equal(t, "/"+backend+"/x?q=1", res.Body, "each target's own base path and the query")
}

func TestOutlierDetectionEjectsTheFailingTarget(t *testing.T) {
	bs := mtBackends(t, 3, http.StatusOK)
	bs[1].status.Store(http.StatusBadGateway)
	o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", Targets: mtTargets(bs),
		CircuitBreaker:   &orchestrator.CircuitBreakerConfig{FailureThreshold: 100},
		OutlierDetection: &orchestrator.OutlierDetectionConfig{ConsecutiveFailures: intp(2), BaseEjectionTime: polDuration(time.Hour)}}))

	// Round robin sends every third request to b1: two failures eject it.
	mtSpread(t, o, 6, "/orchestrator/svc/x")
	polRequireHits(t, bs[1], 2)
	tr := mtTarget(t, o, "svc", "b1")
	assert.True(t, tr.Ejected)
	assert.Equal(t, uint64(1), tr.Ejections)
	assert.False(t, tr.Eligible)
	require.NotNil(t, tr.EjectedUntil)

	got := mtSpread(t, o, 30, "/orchestrator/svc/x")
	assert.Equal(t, map[string]int{"b0": 15, "b2": 15}, got, "no request reaches the ejected target")
	assert.Equal(t, orchestrator.StatusHealthy, polView(t, o, "svc").Status)
}

func TestEndpointIsUnhealthyOnlyWhenNoTargetIsEligible(t *testing.T) {
	endpoint := func(panic bool) orchestrator.Endpoint {
		return orchestrator.Endpoint{Name: "svc", Targets: nil,
			CircuitBreaker:   &orchestrator.CircuitBreakerConfig{FailureThreshold: 1, ResetTimeout: polDuration(time.Hour)},
			OutlierDetection: &orchestrator.OutlierDetectionConfig{ConsecutiveFailures: intp(0)},
			LoadBalancing:    &orchestrator.LoadBalancingConfig{PanicMode: panic},
			Fallback:         &orchestrator.FallbackConfig{Strategy: orchestrator.FallbackStaticResponse, Status: 200, Body: "fallback"}}
	}
	t.Run("the fallback answers", func(t *testing.T) {
		bs := mtBackends(t, 2, http.StatusInternalServerError)
		ep := endpoint(false)
		ep.Targets = mtTargets(bs)
		o := polNew(t, orchestrator.WithEndpoints(ep))
		polGet(o, "/orchestrator/svc/x") // opens b0's breaker
		assert.Equal(t, orchestrator.StatusHealthy, polView(t, o, "svc").Status, "b1 is still eligible")
		polGet(o, "/orchestrator/svc/x") // opens b1's
		assert.Equal(t, orchestrator.StatusUnhealthy, polView(t, o, "svc").Status)
		res := polGet(o, "/orchestrator/svc/x")
		assert.Equal(t, "fallback", res.Body)
		polRequireHits(t, bs[0], 1)
		polRequireHits(t, bs[1], 1)
	})
	t.Run("panic mode balances across all targets instead", func(t *testing.T) {
		bs := mtBackends(t, 2, http.StatusInternalServerError)
		ep := endpoint(true)
		ep.Targets = mtTargets(bs)
		o := polNew(t, orchestrator.WithEndpoints(ep))
		polGet(o, "/orchestrator/svc/x")
		polGet(o, "/orchestrator/svc/x")
		// Both breakers are open: panic mode picks a target anyway, whose
		// open breaker then refuses: 503 circuit-open, not the fallback's
		// "no target".
		res := polGet(o, "/orchestrator/svc/x")
		assert.Equal(t, "fallback", res.Body)
		assert.Equal(t, orchestrator.StatusUnhealthy, polView(t, o, "svc").Status)
	})
}

func TestPanicModeSendsToUnhealthyTargets(t *testing.T) {
	bs := mtBackends(t, 2, http.StatusOK)
	prober := orchestrator.ProberFunc(func(ctx context.Context, tg orchestrator.ProbeTarget) error {
		return fmt.Errorf("down")
	})
	for _, panicMode := range []bool{false, true} {
		t.Run(fmt.Sprint("panic_mode=", panicMode), func(t *testing.T) {
			o := polNew(t, orchestrator.WithProber(prober), orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", Targets: mtTargets(bs),
				HealthCheck:   &orchestrator.HealthCheckConfig{UnhealthyThreshold: 1, Interval: polDuration(time.Hour)},
				LoadBalancing: &orchestrator.LoadBalancingConfig{PanicMode: panicMode}}))
			polWaitStatus(t, o, "svc", orchestrator.StatusUnhealthy)
			res := polGet(o, "/orchestrator/svc/x")
			if panicMode {
				polRequireCode(t, res, http.StatusOK)
			} else {
				polRequireProblem(t, res, http.StatusServiceUnavailable, "endpoint-unhealthy", "svc")
			}
		})
	}
}

func TestActiveHealthIsPerTarget(t *testing.T) {
	bs := mtBackends(t, 3, http.StatusOK)
	prober := orchestrator.ProberFunc(func(ctx context.Context, tg orchestrator.ProbeTarget) error {
		if tg.TargetID == "b2" {
			return fmt.Errorf("b2 is down")
		}
		return nil
	})
	o := polNew(t, orchestrator.WithProber(prober), orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", Targets: mtTargets(bs),
		HealthCheck: &orchestrator.HealthCheckConfig{UnhealthyThreshold: 1, Interval: polDuration(time.Hour)}}))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		v, err := o.Endpoint("svc")
		require.NoError(c, err)
		require.Len(c, v.Targets, 3)
		assert.Equal(c, orchestrator.StatusHealthy, v.Targets[0].Status)
		assert.Equal(c, orchestrator.StatusHealthy, v.Targets[1].Status)
		assert.Equal(c, orchestrator.StatusUnhealthy, v.Targets[2].Status)
	}, polWait, polTick)
	v := polView(t, o, "svc")
	assert.Equal(t, orchestrator.StatusHealthy, v.Status)
	assert.Equal(t, "b2 is down", v.Targets[2].Health.LastError)
	assert.Nil(t, v.ErrorMessage, "not every target fails its probes")
	assert.Equal(t, map[string]int{"b0": 10, "b1": 10}, mtSpread(t, o, 20, "/orchestrator/svc/x"))
}

func TestDrainAndRestoreATarget(t *testing.T) {
	bs := mtBackends(t, 2, http.StatusOK)
	ep := orchestrator.Endpoint{Name: "svc", Targets: mtTargets(bs)}
	o := polNew(t, orchestrator.WithEndpoints(ep))
	require.NoError(t, o.DrainTarget("svc", "b0"))
	assert.True(t, mtTarget(t, o, "svc", "b0").Drained)
	assert.Equal(t, map[string]int{"b1": 10}, mtSpread(t, o, 10, "/orchestrator/svc/x"))

	// A reload of the config keeps the drain: it is an override.
	require.NoError(t, o.Sync(context.Background(), orchestrator.SourceConfig, []orchestrator.Endpoint{ep}))
	assert.Equal(t, map[string]int{"b1": 10}, mtSpread(t, o, 10, "/orchestrator/svc/x"))
	ovs := o.Overrides()
	require.Len(t, ovs, 1)
	assert.Equal(t, orchestrator.OverrideTargetDrained, ovs[0].Kind)
	assert.Equal(t, "b0", ovs[0].Target)

	require.NoError(t, o.RestoreTarget("svc", "b0"))
	assert.Equal(t, map[string]int{"b0": 5, "b1": 5}, mtSpread(t, o, 10, "/orchestrator/svc/x"))
	assert.ErrorIs(t, o.DrainTarget("svc", "nope"), orchestrator.ErrNotFound)
	assert.ErrorIs(t, o.DrainTarget("nope", "b0"), orchestrator.ErrNotFound)

	// Draining every target leaves nothing eligible.
	require.NoError(t, o.DrainTarget("svc", "b0"))
	require.NoError(t, o.DrainTarget("svc", "b1"))
	polRequireProblem(t, polGet(o, "/orchestrator/svc/x"), http.StatusServiceUnavailable, "endpoint-unhealthy", "svc")
}

func TestAReloadKeepsUnchangedTargetsState(t *testing.T) {
	bs := mtBackends(t, 4, http.StatusOK)
	bs[1].status.Store(http.StatusBadGateway)
	probed := make(chan string, 100)
	passNew := make(chan struct{})
	prober := orchestrator.ProberFunc(func(ctx context.Context, tg orchestrator.ProbeTarget) error {
		if tg.TargetID == "b3" {
			select {
			case <-passNew:
			default:
				probed <- tg.TargetID
				return fmt.Errorf("not ready")
			}
		}
		return nil
	})
	ep := orchestrator.Endpoint{Name: "svc", Targets: mtTargets(bs[:3]),
		HealthCheck:      &orchestrator.HealthCheckConfig{UnhealthyThreshold: 5, Interval: polDuration(time.Hour)},
		OutlierDetection: &orchestrator.OutlierDetectionConfig{ConsecutiveFailures: intp(1), BaseEjectionTime: polDuration(time.Hour)}}
	o := polNew(t, orchestrator.WithProber(prober), orchestrator.WithEndpoints(ep))
	mtSpread(t, o, 3, "/orchestrator/svc/x")
	require.True(t, mtTarget(t, o, "svc", "b1").Ejected)

	// A reload that adds b3 and changes the timeout keeps b1's ejection,
	// and b3 is not preferred before its first probe passes.
	ep.Targets = mtTargets(bs)
	ep.Timeout = polDuration(7 * time.Second)
	require.NoError(t, o.Sync(context.Background(), orchestrator.SourceConfig, []orchestrator.Endpoint{ep}))
	assert.True(t, mtTarget(t, o, "svc", "b1").Ejected, "an unchanged target keeps its ejection")
	select {
	case <-probed:
	case <-time.After(polWait):
		t.Fatal("b3 was not probed after the reload")
	}
	assert.True(t, mtTarget(t, o, "svc", "b3").AwaitingProbe)
	assert.Equal(t, map[string]int{"b0": 6, "b2": 6}, mtSpread(t, o, 12, "/orchestrator/svc/x"))

	close(passNew)
	_, err := o.CheckHealth(context.Background(), "svc")
	require.NoError(t, err)
	assert.False(t, mtTarget(t, o, "svc", "b3").AwaitingProbe)
	assert.Equal(t, map[string]int{"b0": 4, "b2": 4, "b3": 4}, mtSpread(t, o, 12, "/orchestrator/svc/x"))
}

// TestHashMovesOnlyTheRemovedTargetsKeys, end to end: a key keeps its
// target across a reload that removes another target.
func TestHashMovesOnlyTheRemovedTargetsKeys(t *testing.T) {
	bs := mtBackends(t, 4, http.StatusOK)
	ep := orchestrator.Endpoint{Name: "svc", Targets: mtTargets(bs),
		LoadBalancing: &orchestrator.LoadBalancingConfig{Policy: orchestrator.PolicyHash, HashKey: "header:X-User"}}
	o := polNew(t, orchestrator.WithEndpoints(ep))
	owners := func() map[string]string {
		m := map[string]string{}
		for i := range 200 {
			req := httptest.NewRequest(http.MethodGet, "/orchestrator/svc/x", nil)
			req.Header.Set("X-User", fmt.Sprint("user-", i))
			m[fmt.Sprint(i)] = polServe(o, req).Header.Get("X-Backend")
		}
		return m
	}
	before := owners()
	ep.Targets = append(mtTargets(bs[:2]), mtTargets(bs[3:])...)
	ep.Targets[2].ID = "b3"
	require.NoError(t, o.Sync(context.Background(), orchestrator.SourceConfig, []orchestrator.Endpoint{ep}))
	after := owners()
	moved := 0
	for k, was := range before {
		if was == "b2" {
			assert.NotEqual(t, "b2", after[k])
			moved++
			continue
		}
		assert.Equal(t, was, after[k], "key %s moved from %s though its target stayed", k, was)
	}
	assert.Positive(t, moved)
}

func TestTheURLShorthandViewHasNoTargets(t *testing.T) {
	b := newPolBackend(t, "b", http.StatusOK)
	o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: b.URL}))
	raw, err := json.Marshal(polView(t, o, "svc"))
	require.NoError(t, err)
	assert.NotContains(t, string(raw), `"targets"`)
	assert.Contains(t, string(raw), `"url":"`+b.URL+`"`)
}

// TestLeastRequestsAvoidsTheBusyTarget: with one target holding requests,
// new ones go to the other.
func TestLeastRequestsAvoidsTheBusyTarget(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", "slow")
		entered <- struct{}{}
		<-release
	}))
	t.Cleanup(slow.Close)
	fast := newPolBackend(t, "fast", http.StatusOK)
	o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc",
		Targets:       []orchestrator.Target{{ID: "slow", URL: slow.URL}, {ID: "fast", URL: fast.URL}},
		LoadBalancing: &orchestrator.LoadBalancingConfig{Policy: orchestrator.PolicyLeastRequests}}))
	var wg sync.WaitGroup
	t.Cleanup(func() { close(release); wg.Wait() })
	// Send one request at a time until one is held by the slow target:
	// each either comes back (it went to fast) or enters slow.
	for held := false; !held; {
		answered := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(answered)
			polGet(o, "/orchestrator/svc/x")
		}()
		select {
		case <-entered:
			held = true
		case <-answered:
		}
	}
	require.Equal(t, int64(1), mtTarget(t, o, "svc", "slow").InFlight)
	got := mtSpread(t, o, 20, "/orchestrator/svc/x")
	assert.Equal(t, 20, got["fast"], "least_requests prefers the idle target: %v", got)
}

func TestDrainThroughTheViewsJSON(t *testing.T) {
	bs := mtBackends(t, 2, http.StatusOK)
	o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", Targets: mtTargets(bs, 3)}))
	raw, err := json.Marshal(polView(t, o, "svc"))
	require.NoError(t, err)
	for _, field := range []string{`"targets":[{"id":"b0"`, `"weight":3`, `"in_flight":0`, `"ejections":0`, `"circuit_breaker_state":"closed"`} {
		assert.True(t, strings.Contains(string(raw), field), "view lacks %s: %s", field, raw)
	}
}

// TestStickySessionsPinAClient: the gateway sets a cookie naming the target
// that answered, and a request carrying it goes back there, until that
// target cannot serve.
func TestStickySessionsPinAClient(t *testing.T) {
	bs := mtBackends(t, 3, http.StatusOK)
	o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", Targets: mtTargets(bs),
		LoadBalancing: &orchestrator.LoadBalancingConfig{Sticky: &orchestrator.StickyConfig{Cookie: "lb", HTTPOnly: true}}}))
	first := polGet(o, "/orchestrator/svc/x")
	set := first.Header.Get("Set-Cookie")
	require.NotEmpty(t, set, "the first answer pins the client")
	assert.Contains(t, set, "Path=/orchestrator/svc")
	assert.Contains(t, set, "HttpOnly")
	cookie, _, _ := strings.Cut(set, ";")
	pinned := first.Header.Get("X-Backend")
	for range 10 {
		req := httptest.NewRequest(http.MethodGet, "/orchestrator/svc/x", nil)
		req.Header.Set("Cookie", cookie)
		res := polServe(o, req)
		assert.Equal(t, pinned, res.Header.Get("X-Backend"))
		assert.Empty(t, res.Header.Get("Set-Cookie"), "the cookie already names the target")
	}
	require.NoError(t, o.DrainTarget("svc", pinned))
	req := httptest.NewRequest(http.MethodGet, "/orchestrator/svc/x", nil)
	req.Header.Set("Cookie", cookie)
	res := polServe(o, req)
	assert.NotEqual(t, pinned, res.Header.Get("X-Backend"), "a drained target gets no new sticky requests")
	assert.NotEmpty(t, res.Header.Get("Set-Cookie"), "the client is pinned anew")
}
