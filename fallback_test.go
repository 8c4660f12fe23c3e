package orchestrator_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

// fallbackSituation is a way for the primary endpoint to be unable to serve.
type fallbackSituation struct {
	name string
	// setup returns the primary endpoint (named "primary", version "v1") and
	// puts it into the situation once the gateway o exists.
	primary func(t *testing.T) (orchestrator.Endpoint, func(t *testing.T, o *orchestrator.Orchestrator))
	// status and kind of the error response in this situation.
	status int
	kind   string
	// refused is true when the primary's upstream is never contacted.
	refused bool
}

// fallbackProber fails the probes of endpoints with a health check path
// (only the primary has one) and passes the others': a custom prober is
// called for every endpoint, and the backups must stay up.
var fallbackProber = orchestrator.ProberFunc(func(ctx context.Context, target orchestrator.ProbeTarget) error {
	if target.URL == "" {
		return nil
	}
	return errors.New("fallback test: primary is down")
})

func fallbackSituations() []fallbackSituation {
	return []fallbackSituation{
		{
			name: "when the circuit breaker is open",
			primary: func(t *testing.T) (orchestrator.Endpoint, func(*testing.T, *orchestrator.Orchestrator)) {
				b := newPolBackend(t, "primary", http.StatusOK)
				t.Cleanup(func() { polRequireHits(t, b, 0) })
				return orchestrator.Endpoint{Name: "primary", Version: "v1", URL: b.URL},
					func(t *testing.T, o *orchestrator.Orchestrator) {
						require.NoError(t, o.TripBreaker("primary_v1"))
					}
			},
			status: http.StatusServiceUnavailable, kind: "circuit-open", refused: true,
		},
		{
			name: "when the endpoint is unhealthy",
			primary: func(t *testing.T) (orchestrator.Endpoint, func(*testing.T, *orchestrator.Orchestrator)) {
				b := newPolBackend(t, "primary", http.StatusOK)
				t.Cleanup(func() { polRequireHits(t, b, 0) })
				return orchestrator.Endpoint{
						Name: "primary", Version: "v1", URL: b.URL, HealthCheckPath: "/health",
						HealthCheck: &orchestrator.HealthCheckConfig{Interval: polDuration(time.Hour), UnhealthyThreshold: 1},
					}, func(t *testing.T, o *orchestrator.Orchestrator) {
						polWaitStatus(t, o, "primary_v1", orchestrator.StatusUnhealthy)
					}
			},
			status: http.StatusServiceUnavailable, kind: "endpoint-unhealthy", refused: true,
		},
		{
			name: "when the upstream drops the connection (502)",
			primary: func(t *testing.T) (orchestrator.Endpoint, func(*testing.T, *orchestrator.Orchestrator)) {
				url, _ := newPolClosingUpstream(t)
				return orchestrator.Endpoint{Name: "primary", Version: "v1", URL: url}, func(*testing.T, *orchestrator.Orchestrator) {}
			},
			status: http.StatusBadGateway, kind: "upstream-unreachable",
		},
		{
			name: "when the upstream times out (504)",
			primary: func(t *testing.T) (orchestrator.Endpoint, func(*testing.T, *orchestrator.Orchestrator)) {
				b := newPolHangingBackend(t)
				return orchestrator.Endpoint{Name: "primary", Version: "v1", URL: b.URL, Timeout: polDuration(50 * time.Millisecond)},
					func(*testing.T, *orchestrator.Orchestrator) {}
			},
			status: http.StatusGatewayTimeout, kind: "upstream-timeout",
		},
	}
}

const fallbackTarget = "/orchestrator/primary/v1/items/42?q=a%20b&x=1"

func TestFallbackErrorResponse(t *testing.T) {
	for _, sit := range fallbackSituations() {
		t.Run("answers with a problem document "+sit.name, func(t *testing.T) {
			// Given a primary endpoint with the default strategy
			ep, breakIt := sit.primary(t)
			o := polNew(t, orchestrator.WithProber(fallbackProber), orchestrator.WithEndpoints(ep))
			breakIt(t, o)

			// When a request arrives
			res := polGet(o, fallbackTarget)

			// Then it gets the problem document of the situation
			p := polRequireProblem(t, res, sit.status, sit.kind, "primary_v1")
			assert.Equal(t, "/orchestrator/primary/v1/items/42", p.Instance, "problem instance: got %q; want the request path", p.Instance)
			if sit.refused {
				polRetryAfter(t, res)
			}
		})
	}

	t.Run("is what an explicit error_response strategy gives too", func(t *testing.T) {
		b := newPolBackend(t, "primary", http.StatusOK)
		o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{
			Name: "primary", Version: "v1", URL: b.URL,
			Fallback: &orchestrator.FallbackConfig{Strategy: orchestrator.FallbackErrorResponse, Status: 200, Body: "unused"},
		}))
		require.NoError(t, o.TripBreaker("primary_v1"))
		polRequireProblem(t, polGet(o, fallbackTarget), http.StatusServiceUnavailable, "circuit-open", "primary_v1")
	})
}

func TestFallbackStaticResponse(t *testing.T) {
	static := &orchestrator.FallbackConfig{
		Strategy: orchestrator.FallbackStaticResponse,
		Status:   http.StatusOK,
		Headers:  map[string]string{"Content-Type": "application/json", "Cache-Control": "max-age=5", "X-Fallback": "static"},
		Body:     `{"items":[],"stale":true}`,
	}
	for _, sit := range fallbackSituations() {
		t.Run("answers with the configured status, headers and body "+sit.name, func(t *testing.T) {
			// Given a primary endpoint with a static fallback
			ep, breakIt := sit.primary(t)
			ep.Fallback = static
			o := polNew(t, orchestrator.WithProber(fallbackProber), orchestrator.WithEndpoints(ep))
			breakIt(t, o)

			// When a request arrives
			res := polGet(o, fallbackTarget)

			// Then it gets exactly the configured answer
			polRequireCode(t, res, http.StatusOK)
			assert.Equal(t, `{"items":[],"stale":true}`, res.Body, "body: got %q; want the configured body", res.Body)
			for k, want := range static.Headers {
				assert.Equal(t, []string{want}, res.Header.Values(k), "header %s: got %q; want %q", k, res.Header.Values(k), want)
			}
			assert.NotEmpty(t, res.Header.Get("X-Request-Id"), "X-Request-Id: got none; want one")
		})
	}

	t.Run("echoes the client's request id and defaults the status to 503", func(t *testing.T) {
		b := newPolBackend(t, "primary", http.StatusOK)
		o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{
			Name: "primary", Version: "v1", URL: b.URL,
			Fallback: &orchestrator.FallbackConfig{Strategy: orchestrator.FallbackStaticResponse, Body: "down for maintenance"},
		}))
		require.NoError(t, o.TripBreaker("primary_v1"))
		req := httptest.NewRequest(http.MethodGet, fallbackTarget, nil)
		req.Header.Set("X-Request-Id", "req-1234")

		res := polServe(o, req)

		polRequireCode(t, res, http.StatusServiceUnavailable)
		assert.Equal(t, "down for maintenance", res.Body, "body: got %q; want the configured body", res.Body)
		assert.Equal(t, "req-1234", res.Header.Get("X-Request-Id"), "X-Request-Id: got %q; want the client's req-1234", res.Header.Get("X-Request-Id"))
		assert.NotEqual(t, "application/problem+json", res.Header.Get("Content-Type"), "Content-Type: got a problem document; want the static answer")
	})
}

func TestFallbackEndpoint(t *testing.T) {
	for _, sit := range fallbackSituations() {
		t.Run("serves the request from the fallback endpoint with the same rest and query "+sit.name, func(t *testing.T) {
			// Given a primary endpoint that falls back to a healthy backup
			backup := newPolBackend(t, "backup", http.StatusOK)
			ep, breakIt := sit.primary(t)
			ep.Fallback = &orchestrator.FallbackConfig{Strategy: orchestrator.FallbackEndpoint, Endpoint: "backup"}
			o := polNew(t,
				orchestrator.WithProber(fallbackProber),
				orchestrator.WithEndpoints(ep, orchestrator.Endpoint{Name: "backup", URL: backup.URL + "/base"}),
			)
			breakIt(t, o)

			// When a request arrives
			res := polGet(o, fallbackTarget)

			// Then the backup serves it, with the same rest of the path and query
			polRequireCode(t, res, http.StatusOK)
			assert.Equal(t, "backup", res.Header.Get("X-Backend"), "served by: got %q; want backup", res.Header.Get("X-Backend"))
			assert.Equal(t, "/base/items/42?q=a%20b&x=1", res.Body, "backup saw: got %q; want /base/items/42?q=a%%20b&x=1", res.Body)
			assert.NotEmpty(t, res.Header.Get("X-Request-Id"), "X-Request-Id: got none; want one")
			polRequireHits(t, backup, 1)
		})
	}

	t.Run("does not chain: when the fallback endpoint cannot serve either, the client gets an error response", func(t *testing.T) {
		// Given primary -> backup -> last, with primary and backup both refusing
		primary := newPolBackend(t, "primary", http.StatusOK)
		backup := newPolBackend(t, "backup", http.StatusOK)
		last := newPolBackend(t, "last", http.StatusOK)
		o := polNew(t, orchestrator.WithEndpoints(
			orchestrator.Endpoint{Name: "primary", Version: "v1", URL: primary.URL,
				Fallback: &orchestrator.FallbackConfig{Strategy: orchestrator.FallbackEndpoint, Endpoint: "backup"}},
			orchestrator.Endpoint{Name: "backup", URL: backup.URL,
				Fallback: &orchestrator.FallbackConfig{Strategy: orchestrator.FallbackEndpoint, Endpoint: "last"}},
			orchestrator.Endpoint{Name: "last", URL: last.URL},
		))
		require.NoError(t, o.TripBreaker("primary_v1"))
		require.NoError(t, o.TripBreaker("backup"))

		// When a request arrives
		res := polGet(o, fallbackTarget)

		// Then it is a 503 problem and the third endpoint never sees it
		polRequireProblem(t, res, http.StatusServiceUnavailable, "circuit-open", "backup")
		polRequireHits(t, primary, 0)
		polRequireHits(t, backup, 0)
		polRequireHits(t, last, 0)
	})

	t.Run("does not chain when both upstreams fail", func(t *testing.T) {
		primaryURL, _ := newPolClosingUpstream(t)
		backupURL, _ := newPolClosingUpstream(t)
		last := newPolBackend(t, "last", http.StatusOK)
		o := polNew(t, orchestrator.WithEndpoints(
			orchestrator.Endpoint{Name: "primary", Version: "v1", URL: primaryURL,
				Fallback: &orchestrator.FallbackConfig{Strategy: orchestrator.FallbackEndpoint, Endpoint: "backup"}},
			orchestrator.Endpoint{Name: "backup", URL: backupURL,
				Fallback: &orchestrator.FallbackConfig{Strategy: orchestrator.FallbackEndpoint, Endpoint: "last"}},
			orchestrator.Endpoint{Name: "last", URL: last.URL},
		))

		polRequireProblem(t, polGet(o, fallbackTarget), http.StatusBadGateway, "upstream-unreachable", "backup")
		polRequireHits(t, last, 0)
	})

	t.Run("a missing fallback endpoint gives the error response", func(t *testing.T) {
		primary := newPolBackend(t, "primary", http.StatusOK)
		o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{
			Name: "primary", Version: "v1", URL: primary.URL,
			Fallback: &orchestrator.FallbackConfig{Strategy: orchestrator.FallbackEndpoint, Endpoint: "nowhere"},
		}))
		require.NoError(t, o.TripBreaker("primary_v1"))
		polRequireProblem(t, polGet(o, fallbackTarget), http.StatusServiceUnavailable, "circuit-open", "primary_v1")
	})
}

func TestFallbackGlobalStrategy(t *testing.T) {
	t.Run("circuit_breaker.fallback_strategy applies to an endpoint that names none", func(t *testing.T) {
		// Given a global static_response strategy, one endpoint relying on it
		// and one choosing error_response for itself
		inherits := newPolBackend(t, "inherits", http.StatusOK)
		own := newPolBackend(t, "own", http.StatusOK)
		o := polNew(t,
			orchestrator.WithCircuitBreaker(orchestrator.CircuitBreakerConfig{FallbackStrategy: orchestrator.FallbackStaticResponse}),
			orchestrator.WithEndpoints(
				orchestrator.Endpoint{Name: "inherits", URL: inherits.URL,
					Fallback: &orchestrator.FallbackConfig{Status: http.StatusOK, Body: "cached answer"}},
				orchestrator.Endpoint{Name: "own", URL: own.URL,
					Fallback: &orchestrator.FallbackConfig{Strategy: orchestrator.FallbackErrorResponse}},
			),
		)
		require.NoError(t, o.TripBreaker("inherits"))
		require.NoError(t, o.TripBreaker("own"))

		// Then the first answers statically and the second with a problem
		res := polGet(o, "/orchestrator/inherits/x")
		polRequireCode(t, res, http.StatusOK)
		assert.Equal(t, "cached answer", res.Body, "body: got %q; want the static body", res.Body)
		polRequireProblem(t, polGet(o, "/orchestrator/own/x"), http.StatusServiceUnavailable, "circuit-open", "own")
	})

	t.Run("a global fallback_endpoint strategy uses the endpoint's fallback endpoint", func(t *testing.T) {
		primary := newPolBackend(t, "primary", http.StatusOK)
		backup := newPolBackend(t, "backup", http.StatusOK)
		o := polNew(t,
			orchestrator.WithCircuitBreaker(orchestrator.CircuitBreakerConfig{FallbackStrategy: orchestrator.FallbackEndpoint}),
			orchestrator.WithEndpoints(
				orchestrator.Endpoint{Name: "primary", Version: "v1", URL: primary.URL,
					Fallback: &orchestrator.FallbackConfig{Endpoint: "backup"}},
				orchestrator.Endpoint{Name: "backup", URL: backup.URL},
			),
		)
		require.NoError(t, o.TripBreaker("primary_v1"))

		res := polGet(o, fallbackTarget)
		polRequireCode(t, res, http.StatusOK)
		assert.Equal(t, "backup", res.Header.Get("X-Backend"), "served by: got %q; want backup", res.Header.Get("X-Backend"))
		polRequireHits(t, primary, 0)
	})
}
