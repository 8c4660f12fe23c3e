package admin_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

func TestHealth(t *testing.T) {
	tests := []struct {
		name     string
		draining bool
		want     int
		status   string
	}{
		{"answers ok while serving", false, http.StatusOK, "ok"},
		{"answers 503 draining while shutting down", true, http.StatusServiceUnavailable, "draining"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.draining.Store(tt.draining)
			got := decode[map[string]string](t, call(f.h, http.MethodGet, "/health", ""), tt.want)
			assert.Equal(t, map[string]string{"status": tt.status}, got)
		})
	}
}

// TestHealthLive: the liveness route stays 200 through a drain, when
// /health already answers 503, so a Kubernetes liveness probe never kills
// a gateway that is finishing its requests.
func TestHealthLive(t *testing.T) {
	f := newFixture(t)
	got := decode[map[string]string](t, call(f.h, http.MethodGet, "/health/live", ""), http.StatusOK)
	assert.Equal(t, map[string]string{"status": "ok"}, got)
	f.draining.Store(true)
	got = decode[map[string]string](t, call(f.h, http.MethodGet, "/health/live", ""), http.StatusOK)
	assert.Equal(t, map[string]string{"status": "draining"}, got)
	decode[map[string]string](t, call(f.h, http.MethodGet, "/health", ""), http.StatusServiceUnavailable)
}

func TestHealthStatus(t *testing.T) {
	type status struct {
		Status        string  `json:"status"`
		Version       string  `json:"version"`
		Uptime        float64 `json:"uptime"`
		UptimeSeconds int64   `json:"uptime_seconds"`
		Prefix        string  `json:"prefix"`
		Endpoints     struct {
			Total     int `json:"total"`
			Unhealthy int `json:"unhealthy"`
		} `json:"endpoints"`
		CircuitBreakersOpen int `json:"circuit_breakers_open"`
	}
	t.Run("reports version, prefix, uptime and counts", func(t *testing.T) {
		f := newFixture(t)
		got := decode[status](t, call(f.h, http.MethodGet, "/health/status", ""), http.StatusOK)
		assert.Equal(t, "ok", got.Status)
		assert.Equal(t, "1.2.3-test", got.Version)
		assert.Equal(t, "/orchestrator", got.Prefix)
		assert.GreaterOrEqual(t, got.Uptime, 0.0, "uptime: got %v; want seconds", got.Uptime)
		assert.Equal(t, 3, got.Endpoints.Total)
	})
	t.Run("is degraded while a breaker is open", func(t *testing.T) {
		f := newFixture(t)
		require.NoError(t, f.o.TripBreaker("orders"))
		got := decode[status](t, call(f.h, http.MethodGet, "/health/status", ""), http.StatusOK)
		assert.Equal(t, "degraded", got.Status)
		assert.Equal(t, 1, got.CircuitBreakersOpen)
		assert.Equal(t, 1, got.Endpoints.Unhealthy, "orders has no health check, so its open breaker makes it unhealthy")
	})
	t.Run("is draining while shutting down", func(t *testing.T) {
		f := newFixture(t)
		f.draining.Store(true)
		got := decode[status](t, call(f.h, http.MethodGet, "/health/status", ""), http.StatusOK)
		assert.Equal(t, "draining", got.Status)
	})
	t.Run("needs authorization", func(t *testing.T) {
		f := newFixture(t, withToken)
		requireProblem(t, call(f.h, http.MethodGet, "/health/status", ""), http.StatusUnauthorized, "unauthorized")
	})
}

func TestHealthEndpoints(t *testing.T) {
	f := newFixture(t)
	t.Run("lists every endpoint", func(t *testing.T) {
		got := decode[endpointList](t, call(f.h, http.MethodGet, "/health/endpoints", ""), http.StatusOK)
		assert.Equal(t, 3, got.Count)
		assert.Equal(t, []string{"legacy", "orders", "users_v1"}, got.ids())
	})
	t.Run("shows one endpoint", func(t *testing.T) {
		got := decode[orchestrator.RegisteredEndpoint](t, call(f.h, http.MethodGet, "/health/endpoints/users_v1", ""), http.StatusOK)
		assert.Equal(t, "users_v1", got.ID)
		assert.Equal(t, orchestrator.SourceConfig, got.Source)
		assert.Equal(t, f.backend.URL+"/api", got.Config.URL)
		assert.True(t, got.Health.Active)
	})
	t.Run("answers 404 for an unknown id", func(t *testing.T) {
		requireProblem(t, call(f.h, http.MethodGet, "/health/endpoints/nope", ""), http.StatusNotFound, "not-found")
	})
}

func TestHealthUnhealthy(t *testing.T) {
	f := newFixture(t)
	t.Run("is empty while everything is well", func(t *testing.T) {
		got := decode[endpointList](t, call(f.h, http.MethodGet, "/health/unhealthy", ""), http.StatusOK)
		assert.Equal(t, 0, got.Count)
		assert.NotNil(t, got.Endpoints, "an empty list is [], not null")
	})
	t.Run("lists an endpoint whose breaker is open", func(t *testing.T) {
		require.NoError(t, f.o.TripBreaker("orders"))
		got := decode[endpointList](t, call(f.h, http.MethodGet, "/health/unhealthy", ""), http.StatusOK)
		assert.Equal(t, []string{"orders"}, got.ids())
		assert.Equal(t, 1, got.Count)
	})
	t.Run("needs a loopback client without token", func(t *testing.T) {
		requireProblem(t, call(f.h, http.MethodGet, "/health/unhealthy", "", remote("198.51.100.4:4000")), http.StatusForbidden, "not-loopback")
	})
}

func TestHealthSummary(t *testing.T) {
	type summary struct {
		Total          int            `json:"total"`
		ByStatus       map[string]int `json:"by_status"`
		ByBreakerState map[string]int `json:"by_circuit_breaker_state"`
	}
	f := newFixture(t)
	require.NoError(t, f.o.TripBreaker("orders"))
	got := decode[summary](t, call(f.h, http.MethodGet, "/health/summary", ""), http.StatusOK)
	assert.Equal(t, 3, got.Total)
	assert.Len(t, got.ByStatus, 4, "every status is listed, zero or not: %v", got.ByStatus)
	assert.Len(t, got.ByBreakerState, 4, "every breaker state is listed: %v", got.ByBreakerState)
	assert.Equal(t, 1, got.ByStatus["unhealthy"])
	assert.Equal(t, 1, got.ByBreakerState["open"])
	assert.Equal(t, 1, got.ByBreakerState["disabled"], "legacy's breaker is disabled")

	t.Run("needs authorization", func(t *testing.T) {
		f := newFixture(t, withToken)
		requireProblem(t, call(f.h, http.MethodGet, "/health/summary", "", bearer("wrong")), http.StatusUnauthorized, "unauthorized")
	})
}

func TestHealthCheck(t *testing.T) {
	f := newFixture(t)
	t.Run("probes now and answers the endpoint", func(t *testing.T) {
		got := decode[orchestrator.RegisteredEndpoint](t, call(f.h, http.MethodPost, "/health/check/users_v1", ""), http.StatusOK)
		assert.Equal(t, orchestrator.StatusHealthy, got.Status)
		assert.NotNil(t, got.LastHealthCheck)
	})
	t.Run("answers 404 for an unknown id", func(t *testing.T) {
		requireProblem(t, call(f.h, http.MethodPost, "/health/check/nope", ""), http.StatusNotFound, "not-found")
	})
	t.Run("answers 409 for an endpoint without an active check", func(t *testing.T) {
		p := requireProblem(t, call(f.h, http.MethodPost, "/health/check/orders", ""), http.StatusConflict, "no-active-check")
		assert.Contains(t, p.Detail, "orders")
	})
}
