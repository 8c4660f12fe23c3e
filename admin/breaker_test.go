package admin_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

func TestCircuitBreakerStatus(t *testing.T) {
	f := newFixture(t)
	t.Run("lists every breaker", func(t *testing.T) {
		got := decode[breakerList](t, call(f.h, http.MethodGet, "/circuit-breaker/status", ""), http.StatusOK)
		require.Equal(t, 3, got.Count)
		assert.Equal(t, breakerView{ID: "legacy", State: orchestrator.BreakerDisabled}, got.Endpoints[0])
		assert.Equal(t, breakerView{ID: "orders", State: orchestrator.BreakerClosed}, got.Endpoints[1])
	})
	t.Run("shows one breaker", func(t *testing.T) {
		got := decode[breakerView](t, call(f.h, http.MethodGet, "/circuit-breaker/endpoints/orders", ""), http.StatusOK)
		assert.Equal(t, breakerView{ID: "orders", State: orchestrator.BreakerClosed}, got)
	})
	t.Run("answers 404 for an unknown id", func(t *testing.T) {
		requireProblem(t, call(f.h, http.MethodGet, "/circuit-breaker/endpoints/nope", ""), http.StatusNotFound, "not-found")
	})
	t.Run("refuses a remote client without token", func(t *testing.T) {
		requireProblem(t, call(f.h, http.MethodGet, "/circuit-breaker/status", "", remote("192.0.2.1:1")), http.StatusForbidden, "not-loopback")
	})
}

func TestCircuitBreakerOpen(t *testing.T) {
	f := newFixture(t)
	got := decode[breakerList](t, call(f.h, http.MethodGet, "/circuit-breaker/open", ""), http.StatusOK)
	assert.Equal(t, 0, got.Count)
	assert.NotNil(t, got.Endpoints)

	require.NoError(t, f.o.TripBreaker("orders"))
	got = decode[breakerList](t, call(f.h, http.MethodGet, "/circuit-breaker/open", ""), http.StatusOK)
	assert.Equal(t, breakerList{Endpoints: []breakerView{{ID: "orders", State: orchestrator.BreakerOpen}}, Count: 1}, got)

	t.Run("needs authorization", func(t *testing.T) {
		f := newFixture(t, withToken)
		requireProblem(t, call(f.h, http.MethodGet, "/circuit-breaker/open", ""), http.StatusUnauthorized, "unauthorized")
	})
}

func TestCircuitBreakerTrip(t *testing.T) {
	f := newFixture(t)
	t.Run("opens the breaker: requests get 503", func(t *testing.T) {
		got := decode[breakerView](t, call(f.h, http.MethodPost, "/circuit-breaker/trip/orders", ""), http.StatusOK)
		assert.Equal(t, orchestrator.BreakerOpen, got.State)
		assert.Equal(t, http.StatusServiceUnavailable, f.proxied(t, "/orchestrator/orders/x").Code)
	})
	t.Run("trips a config-owned endpoint: the emergency lever", func(t *testing.T) {
		got := decode[breakerView](t, call(f.h, http.MethodPost, "/circuit-breaker/trip/users_v1", ""), http.StatusOK)
		assert.Equal(t, orchestrator.BreakerOpen, got.State)
	})
	t.Run("answers 404 for an unknown id", func(t *testing.T) {
		requireProblem(t, call(f.h, http.MethodPost, "/circuit-breaker/trip/nope", ""), http.StatusNotFound, "not-found")
	})
	t.Run("answers 409 for a disabled breaker", func(t *testing.T) {
		requireProblem(t, call(f.h, http.MethodPost, "/circuit-breaker/trip/legacy", ""), http.StatusConflict, "breaker-disabled")
	})
}

func TestCircuitBreakerReset(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.o.TripBreaker("orders"))
	t.Run("closes the breaker: requests flow again", func(t *testing.T) {
		got := decode[breakerView](t, call(f.h, http.MethodPost, "/circuit-breaker/reset/orders", ""), http.StatusOK)
		assert.Equal(t, orchestrator.BreakerClosed, got.State)
		assert.Equal(t, http.StatusOK, f.proxied(t, "/orchestrator/orders/x").Code)
	})
	t.Run("answers 404 for an unknown id", func(t *testing.T) {
		requireProblem(t, call(f.h, http.MethodPost, "/circuit-breaker/reset/nope", ""), http.StatusNotFound, "not-found")
	})
}

func TestCircuitBreakerResetAll(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.o.TripBreaker("orders"))
	require.NoError(t, f.o.TripBreaker("users_v1"))
	got := decode[breakerList](t, call(f.h, http.MethodPost, "/circuit-breaker/reset-all", ""), http.StatusOK)
	require.Equal(t, 3, got.Count)
	for _, b := range got.Endpoints {
		assert.Contains(t, []orchestrator.BreakerState{orchestrator.BreakerClosed, orchestrator.BreakerDisabled}, b.State, "breaker %s", b.ID)
	}
	open := decode[breakerList](t, call(f.h, http.MethodGet, "/circuit-breaker/open", ""), http.StatusOK)
	assert.Equal(t, 0, open.Count)

	t.Run("needs authorization", func(t *testing.T) {
		f := newFixture(t, withToken)
		require.NoError(t, f.o.TripBreaker("orders"))
		requireProblem(t, call(f.h, http.MethodPost, "/circuit-breaker/reset-all", ""), http.StatusUnauthorized, "unauthorized")
		ep, err := f.o.Endpoint("orders")
		require.NoError(t, err)
		assert.Equal(t, orchestrator.BreakerOpen, ep.CircuitBreakerState, "nothing was reset")
	})
}
