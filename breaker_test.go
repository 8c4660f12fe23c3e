package orchestrator_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

func TestBreakerOpensAfterConsecutiveFailures(t *testing.T) {
	cb := &orchestrator.CircuitBreakerConfig{FailureThreshold: 3, ResetTimeout: polDuration(time.Hour)}

	t.Run("failure_threshold consecutive 5xx responses open it and the next request is refused without reaching the backend", func(t *testing.T) {
		// Given an endpoint whose backend answers 500
		backend := newPolBackend(t, "svc", http.StatusInternalServerError)
		o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL, CircuitBreaker: cb}))

		// When three requests fail, the upstream's answers pass through and
		// the breaker stays closed until the third
		for i := 1; i <= 3; i++ {
			polRequireBreaker(t, o, "svc", orchestrator.BreakerClosed)
			res := polGet(o, "/orchestrator/svc/x")
			polRequireCode(t, res, http.StatusInternalServerError)
			assert.Equal(t, "svc", res.Header.Get("X-Backend"), "answer %d came from: got %q; want the backend", i, res.Header.Get("X-Backend"))
		}
		polRequireHits(t, backend, 3)

		// Then the breaker is open and the endpoint reads unhealthy
		v := polView(t, o, "svc")
		assert.Equal(t, orchestrator.BreakerOpen, v.CircuitBreakerState, "breaker: got %q; want open", v.CircuitBreakerState)
		assert.Equal(t, orchestrator.StatusUnhealthy, v.Status, "status of an endpoint judged by its breaker: got %q; want unhealthy", v.Status)
		assert.EqualValues(t, 3, v.ConsecutiveRequestFailures, "consecutive failures: got %d; want 3", v.ConsecutiveRequestFailures)
		assert.NotNil(t, v.LastFailureTime, "LastFailureTime: got nil; want the last failure")

		// And the next request gets 503 without reaching the backend
		res := polGet(o, "/orchestrator/svc/x")
		polRequireProblem(t, res, http.StatusServiceUnavailable, "circuit-open", "svc")
		retry := polRetryAfter(t, res)
		assert.InDelta(t, 3600, retry, 60, "Retry-After: got %d; want about the hour left of reset_timeout", retry)
		polRequireHits(t, backend, 3)
	})

	t.Run("transport errors count as failures and an open breaker does not dial", func(t *testing.T) {
		// Given an upstream that drops every connection it accepts
		url, accepts := newPolClosingUpstream(t)
		o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: url, CircuitBreaker: cb}))

		// When three requests fail with 502
		for range 3 {
			polRequireProblem(t, polGet(o, "/orchestrator/svc/x"), http.StatusBadGateway, "upstream-unreachable", "svc")
		}

		// Then the breaker is open and the next request dials nothing
		polRequireBreaker(t, o, "svc", orchestrator.BreakerOpen)
		dialled := accepts.Load()
		require.GreaterOrEqual(t, dialled, int64(3), "connections accepted: got %d; want at least 3", dialled)
		res := polGet(o, "/orchestrator/svc/x")
		polRequireProblem(t, res, http.StatusServiceUnavailable, "circuit-open", "svc")
		polRetryAfter(t, res)
		assert.Equal(t, dialled, accepts.Load(), "connections accepted: got %d after the refused request; want still %d", accepts.Load(), dialled)
	})

	t.Run("upstream timeouts count as failures", func(t *testing.T) {
		// Given an upstream that never answers and a 100ms endpoint timeout
		backend := newPolHangingBackend(t)
		o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{
			Name: "svc", URL: backend.URL, Timeout: polDuration(100 * time.Millisecond), CircuitBreaker: cb,
		}))

		// When three requests time out
		for range 3 {
			polRequireProblem(t, polGet(o, "/orchestrator/svc/x"), http.StatusGatewayTimeout, "upstream-timeout", "svc")
		}

		// Then the breaker is open and the next request is refused at once
		// (a forwarded one would time out again: 504, not 503)
		polRequireBreaker(t, o, "svc", orchestrator.BreakerOpen)
		polRequireProblem(t, polGet(o, "/orchestrator/svc/x"), http.StatusServiceUnavailable, "circuit-open", "svc")
		got := backend.hits.Load()
		assert.LessOrEqual(t, got, int64(3), "requests that reached the backend: got %d; want at most the 3 that timed out", got)
	})

	t.Run("failures broken by a success do not open it", func(t *testing.T) {
		backend := newPolBackend(t, "svc", http.StatusInternalServerError)
		o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL, CircuitBreaker: cb}))
		for _, status := range []int{500, 500, 200, 500, 500} {
			backend.status.Store(int64(status))
			polRequireCode(t, polGet(o, "/orchestrator/svc/x"), status)
		}
		polRequireBreaker(t, o, "svc", orchestrator.BreakerClosed)
		v := polView(t, o, "svc")
		assert.EqualValues(t, 2, v.ConsecutiveRequestFailures, "consecutive failures: got %d; want 2", v.ConsecutiveRequestFailures)
	})
}

func TestBreakerFailureStatuses(t *testing.T) {
	t.Run("4xx responses do not count as failures", func(t *testing.T) {
		backend := newPolBackend(t, "svc", http.StatusNotFound)
		o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{
			Name: "svc", URL: backend.URL, CircuitBreaker: &orchestrator.CircuitBreakerConfig{FailureThreshold: 2},
		}))
		for range 10 {
			polRequireCode(t, polGet(o, "/orchestrator/svc/missing"), http.StatusNotFound)
		}
		polRequireBreaker(t, o, "svc", orchestrator.BreakerClosed)
		polRequireHits(t, backend, 10)
	})

	t.Run("with failure_statuses [502] a 500 does not count but a 502 does", func(t *testing.T) {
		// Given an endpoint whose breaker counts only 502
		backend := newPolBackend(t, "svc", http.StatusInternalServerError)
		o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{
			Name: "svc", URL: backend.URL,
			CircuitBreaker: &orchestrator.CircuitBreakerConfig{FailureThreshold: 2, FailureStatuses: []int{502}},
		}))

		// When the backend answers 500 many times, the breaker stays closed
		for range 5 {
			polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusInternalServerError)
		}
		polRequireBreaker(t, o, "svc", orchestrator.BreakerClosed)

		// When it answers 502 twice, the breaker opens
		backend.status.Store(http.StatusBadGateway)
		for range 2 {
			res := polGet(o, "/orchestrator/svc/x")
			polRequireCode(t, res, http.StatusBadGateway)
			assert.Equal(t, "svc", res.Header.Get("X-Backend"), "the 502 came from: got %q; want the backend", res.Header.Get("X-Backend"))
		}
		polRequireBreaker(t, o, "svc", orchestrator.BreakerOpen)
		polRequireProblem(t, polGet(o, "/orchestrator/svc/x"), http.StatusServiceUnavailable, "circuit-open", "svc")
		polRequireHits(t, backend, 7)
	})
}

func TestBreakerHalfOpen(t *testing.T) {
	t.Run("after reset_timeout trial requests go through and half_open_requests successes close it", func(t *testing.T) {
		// Given an open breaker that needs two good trials, 100ms after opening
		logs := &polLogs{}
		backend := newPolBackend(t, "svc", http.StatusInternalServerError)
		o := polNew(t,
			orchestrator.WithLogger(logs.logger()),
			orchestrator.WithEndpoints(orchestrator.Endpoint{
				Name: "svc", URL: backend.URL,
				CircuitBreaker: &orchestrator.CircuitBreakerConfig{FailureThreshold: 1, ResetTimeout: polDuration(100 * time.Millisecond), HalfOpenRequests: 2},
			}),
		)
		polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusInternalServerError)
		assert.Equal(t, []string{"closed->open"}, logs.transitions("svc"), "transitions: got %v; want [closed->open]", logs.transitions("svc"))

		// When reset_timeout has passed
		polWaitBreaker(t, o, "svc", orchestrator.BreakerHalfOpen)
		backend.status.Store(http.StatusOK)

		// Then a first trial reaches the backend and one more is still needed
		polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusOK)
		polRequireHits(t, backend, 2)
		polRequireBreaker(t, o, "svc", orchestrator.BreakerHalfOpen)

		// And a second good trial closes it
		polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusOK)
		polRequireBreaker(t, o, "svc", orchestrator.BreakerClosed)
		want := []string{"closed->open", "open->half_open", "half_open->closed"}
		assert.Equal(t, want, logs.transitions("svc"), "transitions: got %v; want %v", logs.transitions("svc"), want)
	})

	t.Run("a failed trial opens it again", func(t *testing.T) {
		// Given an open breaker
		logs := &polLogs{}
		backend := newPolBackend(t, "svc", http.StatusInternalServerError)
		o := polNew(t,
			orchestrator.WithLogger(logs.logger()),
			orchestrator.WithEndpoints(orchestrator.Endpoint{
				Name: "svc", URL: backend.URL,
				CircuitBreaker: &orchestrator.CircuitBreakerConfig{FailureThreshold: 1, ResetTimeout: polDuration(100 * time.Millisecond)},
			}),
		)
		polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusInternalServerError)
		polWaitBreaker(t, o, "svc", orchestrator.BreakerHalfOpen)

		// When the trial fails
		res := polGet(o, "/orchestrator/svc/x")

		// Then the trial's answer is the backend's and the breaker is open again
		polRequireCode(t, res, http.StatusInternalServerError)
		polRequireHits(t, backend, 2)
		want := []string{"closed->open", "open->half_open", "half_open->open"}
		require.Equal(t, want, logs.transitions("svc"), "transitions: got %v; want %v", logs.transitions("svc"), want)

		// And after another reset_timeout a good trial closes it
		polWaitBreaker(t, o, "svc", orchestrator.BreakerHalfOpen)
		backend.status.Store(http.StatusOK)
		polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusOK)
		polRequireBreaker(t, o, "svc", orchestrator.BreakerClosed)
	})

	t.Run("no more than half_open_requests trials run at once", func(t *testing.T) {
		// Given a half-open breaker admitting two trials and a backend that
		// holds requests until released
		backend := newPolHangingBackend(t)
		o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{
			Name: "svc", URL: backend.URL,
			CircuitBreaker: &orchestrator.CircuitBreakerConfig{FailureThreshold: 1, ResetTimeout: polDuration(100 * time.Millisecond), HalfOpenRequests: 2},
		}))
		orchestrator.OpenBreakerForTest(o, "svc")
		polWaitBreaker(t, o, "svc", orchestrator.BreakerHalfOpen)

		// When two trials are under way
		codes := make(chan int, 2)
		for range 2 {
			go func() { codes <- polGet(o, "/orchestrator/svc/x").Code }()
		}
		backend.waitEntered(t)
		backend.waitEntered(t)

		// Then a third request is refused without reaching the backend
		res := polGet(o, "/orchestrator/svc/x")
		polRequireProblem(t, res, http.StatusServiceUnavailable, "circuit-open", "svc")
		assert.EqualValues(t, 2, backend.hits.Load(), "requests that reached the backend: got %d; want 2", backend.hits.Load())

		// And when both trials succeed the breaker closes
		close(backend.release)
		for range 2 {
			select {
			case code := <-codes:
				assert.Equal(t, http.StatusOK, code, "trial status: got %d; want 200", code)
			case <-time.After(polWait):
				t.Fatal("a trial request did not finish")
			}
		}
		polRequireBreaker(t, o, "svc", orchestrator.BreakerClosed)
	})
}

func TestBreakerManualControl(t *testing.T) {
	backend := newPolBackend(t, "svc", http.StatusOK)
	o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL}))

	t.Run("TripBreaker opens it: requests get 503 and the backend sees none", func(t *testing.T) {
		require.NoError(t, o.TripBreaker("svc"))
		polRequireBreaker(t, o, "svc", orchestrator.BreakerOpen)
		res := polGet(o, "/orchestrator/svc/x")
		polRequireProblem(t, res, http.StatusServiceUnavailable, "circuit-open", "svc")
		polRetryAfter(t, res)
		polRequireHits(t, backend, 0)
	})

	t.Run("ResetBreaker closes it and clears the failure count", func(t *testing.T) {
		require.NoError(t, o.ResetBreaker("svc"))
		polRequireBreaker(t, o, "svc", orchestrator.BreakerClosed)
		polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusOK)
		polRequireHits(t, backend, 1)

		backend.status.Store(http.StatusInternalServerError)
		polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusInternalServerError)
		require.EqualValues(t, 1, polView(t, o, "svc").ConsecutiveRequestFailures)
		require.NoError(t, o.ResetBreaker("svc"))
		got := polView(t, o, "svc").ConsecutiveRequestFailures
		assert.Zero(t, got, "consecutive failures after ResetBreaker: got %d; want 0", got)
	})

	t.Run("unknown ids are ErrNotFound", func(t *testing.T) {
		err := o.TripBreaker("nope")
		assert.ErrorIs(t, err, orchestrator.ErrNotFound, "TripBreaker(nope): got %v; want ErrNotFound", err)
		err = o.ResetBreaker("nope")
		assert.ErrorIs(t, err, orchestrator.ErrNotFound, "ResetBreaker(nope): got %v; want ErrNotFound", err)
		_, err = o.Endpoint("nope")
		assert.ErrorIs(t, err, orchestrator.ErrNotFound, "Endpoint(nope): got %v; want ErrNotFound", err)
	})

	t.Run("a disabled breaker reads disabled and never refuses a request", func(t *testing.T) {
		failing := newPolBackend(t, "failing", http.StatusInternalServerError)
		o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{
			Name: "nobreaker", URL: failing.URL,
			CircuitBreaker: &orchestrator.CircuitBreakerConfig{Disabled: polPtr(true), FailureThreshold: 1},
		}))
		for range 5 {
			polRequireCode(t, polGet(o, "/orchestrator/nobreaker/x"), http.StatusInternalServerError)
		}
		polRequireBreaker(t, o, "nobreaker", orchestrator.BreakerDisabled)
		polRequireHits(t, failing, 5)
	})
}

func TestBreakerIsRebuiltWhenTheConfigChanges(t *testing.T) {
	t.Run("Update gives an API endpoint a closed breaker with the new settings", func(t *testing.T) {
		// Given an API endpoint whose breaker failures opened
		backend := newPolBackend(t, "svc", http.StatusInternalServerError)
		o := polNew(t)
		ep := orchestrator.Endpoint{Name: "svc", URL: backend.URL, CircuitBreaker: &orchestrator.CircuitBreakerConfig{FailureThreshold: 1, ResetTimeout: polDuration(time.Hour)}}
		_, err := o.Register(context.Background(), ep)
		require.NoError(t, err)
		polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusInternalServerError)
		polRequireBreaker(t, o, "svc", orchestrator.BreakerOpen)

		// When its config changes
		ep.CircuitBreaker = &orchestrator.CircuitBreakerConfig{FailureThreshold: 2}
		v, err := o.Update(context.Background(), ep)
		require.NoError(t, err)

		// Then its breaker is a new, closed one
		assert.Equal(t, orchestrator.BreakerClosed, v.CircuitBreakerState, "breaker after Update: got %q; want closed", v.CircuitBreakerState)
		polRequireBreaker(t, o, "svc", orchestrator.BreakerClosed)

		// And it follows the new settings: one failure leaves it closed, two open it
		polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusInternalServerError)
		polRequireBreaker(t, o, "svc", orchestrator.BreakerClosed)
		polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusInternalServerError)
		polRequireBreaker(t, o, "svc", orchestrator.BreakerOpen)
	})

	t.Run("an operator's trip outlives a config change", func(t *testing.T) {
		// Given an API endpoint an operator tripped
		backend := newPolBackend(t, "svc", http.StatusOK)
		o := polNew(t)
		ep := orchestrator.Endpoint{Name: "svc", URL: backend.URL}
		_, err := o.Register(context.Background(), ep)
		require.NoError(t, err)
		require.NoError(t, o.TripBreaker("svc"))

		// When its config changes
		ep.Timeout = polDuration(5 * time.Second)
		v, err := o.Update(context.Background(), ep)
		require.NoError(t, err)

		// Then the rebuilt breaker is held open: the trip is desired state
		assert.Equal(t, orchestrator.BreakerOpen, v.CircuitBreakerState)
		polRequireProblem(t, polGet(o, "/orchestrator/svc/x"), http.StatusServiceUnavailable, "circuit-open", "svc")
		polRequireHits(t, backend, 0)

		// And a reset ends it
		require.NoError(t, o.ResetBreaker("svc"))
		polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusOK)
	})

	t.Run("Sync rebuilds a config endpoint's breaker only when its target or breaker settings changed", func(t *testing.T) {
		backend := newPolBackend(t, "svc", http.StatusInternalServerError)
		ep := orchestrator.Endpoint{Name: "svc", URL: backend.URL, CircuitBreaker: &orchestrator.CircuitBreakerConfig{FailureThreshold: 1, ResetTimeout: polDuration(time.Hour)}}
		o := polNew(t, orchestrator.WithEndpoints(ep))
		polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusInternalServerError)
		polRequireBreaker(t, o, "svc", orchestrator.BreakerOpen)

		// When the same config is applied again (a reload that changed nothing)
		require.NoError(t, o.Sync(context.Background(), orchestrator.SourceConfig, []orchestrator.Endpoint{ep}))

		// Then the breaker stays open
		polRequireBreaker(t, o, "svc", orchestrator.BreakerOpen)

		// When a setting that shapes neither the target nor its breaker
		// changes, the target keeps its state
		ep.Timeout = polDuration(5 * time.Second)
		require.NoError(t, o.Sync(context.Background(), orchestrator.SourceConfig, []orchestrator.Endpoint{ep}))
		polRequireBreaker(t, o, "svc", orchestrator.BreakerOpen)

		// When the breaker's settings change
		ep.CircuitBreaker = &orchestrator.CircuitBreakerConfig{FailureThreshold: 2, ResetTimeout: polDuration(time.Hour)}
		require.NoError(t, o.Sync(context.Background(), orchestrator.SourceConfig, []orchestrator.Endpoint{ep}))

		// Then the breaker is a new, closed one
		polRequireBreaker(t, o, "svc", orchestrator.BreakerClosed)
		backend.status.Store(http.StatusOK)
		polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusOK)
	})
}

func TestBreakersArePerEndpoint(t *testing.T) {
	t.Run("one endpoint's open breaker does not affect another", func(t *testing.T) {
		a := newPolBackend(t, "a", http.StatusOK)
		b := newPolBackend(t, "b", http.StatusOK)
		o := polNew(t, orchestrator.WithEndpoints(
			orchestrator.Endpoint{Name: "a", URL: a.URL},
			orchestrator.Endpoint{Name: "b", URL: b.URL},
		))
		require.NoError(t, o.TripBreaker("a"))

		polRequireProblem(t, polGet(o, "/orchestrator/a/x"), http.StatusServiceUnavailable, "circuit-open", "a")
		polRequireCode(t, polGet(o, "/orchestrator/b/x"), http.StatusOK)
		polRequireBreaker(t, o, "b", orchestrator.BreakerClosed)
		polRequireHits(t, a, 0)
		polRequireHits(t, b, 1)
	})

	t.Run("two gateways sharing one registry keep separate breakers", func(t *testing.T) {
		// Given two gateways on one registry, the second learning the
		// endpoint from the registry alone
		backend := newPolBackend(t, "svc", http.StatusInternalServerError)
		reg := orchestrator.NewMemoryRegistry()
		cb := &orchestrator.CircuitBreakerConfig{FailureThreshold: 2, ResetTimeout: polDuration(time.Hour)}
		first := polNew(t, orchestrator.WithRegistry(reg), orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL, CircuitBreaker: cb}))
		second := polNew(t, orchestrator.WithRegistry(reg))
		polRequireBreaker(t, second, "svc", orchestrator.BreakerClosed)

		// When failures through the first open its breaker
		for range 2 {
			polRequireCode(t, polGet(first, "/orchestrator/svc/x"), http.StatusInternalServerError)
		}
		polRequireBreaker(t, first, "svc", orchestrator.BreakerOpen)

		// Then the second gateway's breaker is still closed and serves
		polRequireBreaker(t, second, "svc", orchestrator.BreakerClosed)
		backend.status.Store(http.StatusOK)
		polRequireCode(t, polGet(second, "/orchestrator/svc/x"), http.StatusOK)

		// And an operator's trip, desired state stored in the registry,
		// holds both open; a reset through either releases both
		require.NoError(t, first.ResetBreaker("svc"))
		require.NoError(t, second.TripBreaker("svc"))
		polWaitBreaker(t, first, "svc", orchestrator.BreakerOpen)
		polRequireProblem(t, polGet(first, "/orchestrator/svc/x"), http.StatusServiceUnavailable, "circuit-open", "svc")
		require.NoError(t, first.ResetBreaker("svc"))
		polWaitBreaker(t, second, "svc", orchestrator.BreakerClosed)
		polRequireCode(t, polGet(second, "/orchestrator/svc/x"), http.StatusOK)
	})
}

func TestATripHoldsTheBreakerOpenUntilReset(t *testing.T) {
	// Given an endpoint whose reset_timeout would let a trial through
	// 10ms after an automatic opening
	backend := newPolBackend(t, "svc", http.StatusOK)
	o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{
		Name: "svc", URL: backend.URL, CircuitBreaker: &orchestrator.CircuitBreakerConfig{ResetTimeout: polDuration(10 * time.Millisecond)},
	}))

	// When an operator trips it
	require.NoError(t, o.TripBreaker("svc"))

	// Then it is stored as an override and holds past many reset timeouts:
	// no trial reaches the backend
	ovs := o.Overrides()
	require.Len(t, ovs, 1)
	assert.Equal(t, orchestrator.OverrideBreakerOpen, ovs[0].Kind)
	assert.Equal(t, "svc", ovs[0].EndpointID)
	deadline := time.Now().Add(100 * time.Millisecond)
	for time.Now().Before(deadline) {
		polRequireProblem(t, polGet(o, "/orchestrator/svc/x"), http.StatusServiceUnavailable, "circuit-open", "svc")
		polRequireBreaker(t, o, "svc", orchestrator.BreakerOpen)
	}
	polRequireHits(t, backend, 0)

	// And ResetBreaker removes the override and closes it
	require.NoError(t, o.ResetBreaker("svc"))
	assert.Empty(t, o.Overrides())
	polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusOK)
	polRequireBreaker(t, o, "svc", orchestrator.BreakerClosed)
}

func TestTripOnADisabledBreakerIsAConflict(t *testing.T) {
	backend := newPolBackend(t, "svc", http.StatusOK)
	o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{
		Name: "svc", URL: backend.URL, CircuitBreaker: &orchestrator.CircuitBreakerConfig{Disabled: polPtr(true)},
	}))
	err := o.TripBreaker("svc")
	assert.ErrorIs(t, err, orchestrator.ErrConflict)
	assert.Empty(t, o.Overrides())
	polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusOK)
}

func TestBreakerGlobalDefaults(t *testing.T) {
	// Given global defaults (2 failures, 1h, only 503 counts) and an endpoint
	// that overrides the threshold alone
	inherits := newPolBackend(t, "inherits", http.StatusServiceUnavailable)
	overrides := newPolBackend(t, "overrides", http.StatusInternalServerError)
	o := polNew(t,
		orchestrator.WithCircuitBreaker(orchestrator.CircuitBreakerConfig{
			FailureThreshold: 2, ResetTimeout: polDuration(time.Hour), FailureStatuses: []int{503},
		}),
		orchestrator.WithEndpoints(
			orchestrator.Endpoint{Name: "inherits", URL: inherits.URL},
			orchestrator.Endpoint{Name: "overrides", URL: overrides.URL, CircuitBreaker: &orchestrator.CircuitBreakerConfig{FailureThreshold: 3}},
		),
	)

	t.Run("an endpoint without its own section takes every global value", func(t *testing.T) {
		for range 2 {
			polRequireCode(t, polGet(o, "/orchestrator/inherits/x"), http.StatusServiceUnavailable)
		}
		polRequireBreaker(t, o, "inherits", orchestrator.BreakerOpen)
		retry := polRetryAfter(t, polGet(o, "/orchestrator/inherits/x"))
		assert.Greater(t, retry, 60, "Retry-After: got %d; want the global 1h reset_timeout, not the 60s default", retry)
	})

	t.Run("an override replaces only the fields it sets", func(t *testing.T) {
		// The global failure_statuses still apply: 500 does not count
		for range 4 {
			polRequireCode(t, polGet(o, "/orchestrator/overrides/x"), http.StatusInternalServerError)
		}
		polRequireBreaker(t, o, "overrides", orchestrator.BreakerClosed)

		// Its own threshold applies: two 503s are not enough, three are
		overrides.status.Store(http.StatusServiceUnavailable)
		for range 2 {
			polRequireCode(t, polGet(o, "/orchestrator/overrides/x"), http.StatusServiceUnavailable)
		}
		polRequireBreaker(t, o, "overrides", orchestrator.BreakerClosed)
		polRequireCode(t, polGet(o, "/orchestrator/overrides/x"), http.StatusServiceUnavailable)
		polRequireBreaker(t, o, "overrides", orchestrator.BreakerOpen)

		// And the global reset_timeout applies
		res := polGet(o, "/orchestrator/overrides/x")
		polRequireProblem(t, res, http.StatusServiceUnavailable, "circuit-open", "overrides")
		retry := polRetryAfter(t, res)
		assert.Greater(t, retry, 60, "Retry-After: got %d; want the global 1h reset_timeout, not the 60s default", retry)
	})
}

func TestBreakerIgnoresCancelledClients(t *testing.T) {
	// Given a breaker that opens on a single failure and a backend that
	// holds the request
	backend := newPolHangingBackend(t)
	o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{
		Name: "svc", URL: backend.URL, CircuitBreaker: &orchestrator.CircuitBreakerConfig{FailureThreshold: 1},
	}))

	// When the client gives up while the upstream is working
	polCancelWhileUpstreamWorks(t, o, backend)

	// Then the breaker did not count it
	v := polView(t, o, "svc")
	assert.Equal(t, orchestrator.BreakerClosed, v.CircuitBreakerState, "breaker after a cancelled request: got %q; want closed", v.CircuitBreakerState)
	assert.Zero(t, v.ConsecutiveRequestFailures, "consecutive failures: got %d; want 0", v.ConsecutiveRequestFailures)
	assert.Nil(t, v.LastFailureTime, "LastFailureTime: got %v; want nil", v.LastFailureTime)

	// And the next request still reaches the backend
	close(backend.release)
	polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusOK)
}

func TestBreakerCancelledTrialNeitherClosesNorLeaksThePermit(t *testing.T) {
	// Given a half-open breaker admitting one trial and a backend that holds
	// requests until released
	backend := newPolHangingBackend(t)
	o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{
		Name: "svc", URL: backend.URL,
		CircuitBreaker: &orchestrator.CircuitBreakerConfig{FailureThreshold: 1, ResetTimeout: polDuration(100 * time.Millisecond)},
	}))
	orchestrator.OpenBreakerForTest(o, "svc")
	polWaitBreaker(t, o, "svc", orchestrator.BreakerHalfOpen)

	// When the client of the only trial gives up before the upstream answers
	polCancelWhileUpstreamWorks(t, o, backend)

	// Then the breaker is not closed by a trial that proved nothing
	polRequireBreaker(t, o, "svc", orchestrator.BreakerHalfOpen)

	// And the trial permit came back: the next request is let through and,
	// succeeding, closes the breaker
	close(backend.release)
	polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusOK)
	polRequireBreaker(t, o, "svc", orchestrator.BreakerClosed)
}

// polCancelWhileUpstreamWorks sends a request to svc, waits until the
// hanging backend holds it, cancels the client and waits for the gateway
// to finish with it.
func polCancelWhileUpstreamWorks(t *testing.T, o *orchestrator.Orchestrator, backend *polHangingBackend) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := httptest.NewRequest(http.MethodGet, "/orchestrator/svc/slow", nil).WithContext(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		polServe(o, req)
	}()
	backend.waitEntered(t)
	cancel()
	select {
	case <-done:
	case <-time.After(polWait):
		t.Fatal("the cancelled request was still being served")
	}
}

func TestDeregisterTakesTheEndpointsTripWithIt(t *testing.T) {
	backend := newPolBackend(t, "svc", http.StatusOK)
	o := polNew(t)
	ep := orchestrator.Endpoint{Name: "svc", URL: backend.URL}
	_, err := o.Register(context.Background(), ep)
	require.NoError(t, err)
	require.NoError(t, o.TripBreaker("svc"))
	require.Len(t, o.Overrides(), 1)

	require.NoError(t, o.Deregister(context.Background(), "svc"))
	assert.Empty(t, o.Overrides(), "overrides after Deregister")

	// Registered again, the id starts afresh: closed and serving
	_, err = o.Register(context.Background(), ep)
	require.NoError(t, err)
	polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusOK)
}
