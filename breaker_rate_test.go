package orchestrator_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

// polAlternate sends n requests to path, the backend answering 500 to
// every second one (the 2nd, 4th, ...) and 200 to the others.
func polAlternate(t *testing.T, o *orchestrator.Orchestrator, backend *polBackend, path string, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		want := http.StatusOK
		if i%2 == 0 {
			want = http.StatusInternalServerError
		}
		backend.status.Store(int64(want))
		polRequireCode(t, polGet(o, path), want)
	}
}

func TestBreakerFailureRate(t *testing.T) {
	t.Run("half the requests failing never opens a consecutive-failures breaker", func(t *testing.T) {
		backend := newPolBackend(t, "svc", http.StatusOK)
		o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{
			Name: "svc", URL: backend.URL,
			CircuitBreaker: &orchestrator.CircuitBreakerConfig{FailureThreshold: 2, ResetTimeout: polDuration(time.Hour)},
		}))
		polAlternate(t, o, backend, "/orchestrator/svc/x", 20)
		polRequireBreaker(t, o, "svc", orchestrator.BreakerClosed)
	})

	t.Run("a failure rate opens once the period has seen failure_execution_threshold requests", func(t *testing.T) {
		// Given 50% of at least 6 requests in a minute
		backend := newPolBackend(t, "svc", http.StatusOK)
		o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{
			Name: "svc", URL: backend.URL,
			CircuitBreaker: &orchestrator.CircuitBreakerConfig{
				FailureRateThreshold:      50,
				FailureExecutionThreshold: 6,
				FailureThresholdingPeriod: polDuration(time.Minute),
				ResetTimeout:              polDuration(time.Hour),
			},
		}))

		// When five requests alternate (2 of 5 failed): too few to judge
		polAlternate(t, o, backend, "/orchestrator/svc/x", 5)
		polRequireBreaker(t, o, "svc", orchestrator.BreakerClosed)

		// Then the sixth, a failure, makes 3 of 6: 50%, and the breaker opens
		backend.status.Store(http.StatusInternalServerError)
		polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusInternalServerError)
		polRequireBreaker(t, o, "svc", orchestrator.BreakerOpen)
		polRequireProblem(t, polGet(o, "/orchestrator/svc/x"), http.StatusServiceUnavailable, "circuit-open", "svc")
		polRequireHits(t, backend, 6)
	})

	t.Run("a rate under the threshold keeps it closed however many requests fail in all", func(t *testing.T) {
		backend := newPolBackend(t, "svc", http.StatusOK)
		o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{
			Name: "svc", URL: backend.URL,
			CircuitBreaker: &orchestrator.CircuitBreakerConfig{FailureRateThreshold: 60, FailureExecutionThreshold: 4},
		}))
		polAlternate(t, o, backend, "/orchestrator/svc/x", 30)
		polRequireBreaker(t, o, "svc", orchestrator.BreakerClosed)
	})

	t.Run("an endpoint's rate replaces a global failure_threshold, and takes the global window", func(t *testing.T) {
		// Given a global section in count mode that also sets the rate's
		// minimum for the endpoints that choose a rate
		rate := newPolBackend(t, "rate", http.StatusOK)
		count := newPolBackend(t, "count", http.StatusOK)
		o := polNew(t,
			orchestrator.WithCircuitBreaker(orchestrator.CircuitBreakerConfig{
				FailureThreshold: 2, FailureExecutionThreshold: 4, ResetTimeout: polDuration(time.Hour),
			}),
			orchestrator.WithEndpoints(
				orchestrator.Endpoint{Name: "rate", URL: rate.URL, CircuitBreaker: &orchestrator.CircuitBreakerConfig{FailureRateThreshold: 50}},
				orchestrator.Endpoint{Name: "count", URL: count.URL},
			),
		)

		// When each sees two failures in a row
		for _, name := range []string{"rate", "count"} {
			b := map[string]*polBackend{"rate": rate, "count": count}[name]
			b.status.Store(http.StatusInternalServerError)
			for range 2 {
				polRequireCode(t, polGet(o, "/orchestrator/"+name+"/x"), http.StatusInternalServerError)
			}
		}

		// Then the global count opens "count", while "rate", below the
		// global minimum of 4 requests, is not judged yet
		polRequireBreaker(t, o, "count", orchestrator.BreakerOpen)
		polRequireBreaker(t, o, "rate", orchestrator.BreakerClosed)

		// And two more (4 of 4 failed) open it
		for range 2 {
			polRequireCode(t, polGet(o, "/orchestrator/rate/x"), http.StatusInternalServerError)
		}
		polRequireBreaker(t, o, "rate", orchestrator.BreakerOpen)
	})
}

func TestBreakerFailureRateValidation(t *testing.T) {
	ep := func(cb orchestrator.CircuitBreakerConfig) orchestrator.Endpoint {
		return orchestrator.Endpoint{Name: "svc", URL: "http://127.0.0.1:9", CircuitBreaker: &cb}
	}
	cases := []struct {
		name  string
		cb    orchestrator.CircuitBreakerConfig
		field string
		says  string
	}{
		{"both modes in one section", orchestrator.CircuitBreakerConfig{FailureThreshold: 5, FailureRateThreshold: 50},
			"endpoints[0].circuit_breaker.failure_rate_threshold", "not both"},
		{"a rate over 100%", orchestrator.CircuitBreakerConfig{FailureRateThreshold: 101},
			"endpoints[0].circuit_breaker.failure_rate_threshold", "1 to 100"},
		{"a negative rate", orchestrator.CircuitBreakerConfig{FailureRateThreshold: -1},
			"endpoints[0].circuit_breaker.failure_rate_threshold", "1 to 100"},
		{"a negative minimum", orchestrator.CircuitBreakerConfig{FailureRateThreshold: 50, FailureExecutionThreshold: -3},
			"endpoints[0].circuit_breaker.failure_execution_threshold", "> 0"},
		{"a window under a second", orchestrator.CircuitBreakerConfig{FailureRateThreshold: 50, FailureThresholdingPeriod: polDuration(time.Millisecond)},
			"endpoints[0].circuit_breaker.failure_thresholding_period", "at least 1s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := orchestrator.New(orchestrator.WithEndpoints(ep(c.cb)))
			require.Error(t, err)
			var verr *orchestrator.ValidationError
			require.True(t, errors.As(err, &verr), "error %v: want a *ValidationError", err)
			assert.Contains(t, err.Error(), c.field)
			assert.Contains(t, err.Error(), c.says)
		})
	}

	t.Run("the global section is checked the same way", func(t *testing.T) {
		_, err := orchestrator.New(orchestrator.WithCircuitBreaker(orchestrator.CircuitBreakerConfig{FailureThreshold: 3, FailureRateThreshold: 20}))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "circuit_breaker.failure_rate_threshold")
	})
}
