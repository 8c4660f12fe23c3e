package admin_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

type resolution struct {
	Matched     bool   `json:"matched"`
	EndpointID  string `json:"endpoint_id"`
	UpstreamURL string `json:"upstream_url"`
	Reason      string `json:"reason"`
}

func TestRouterRoutes(t *testing.T) {
	type routes struct {
		Prefix string                   `json:"prefix"`
		Routes []orchestrator.RouteInfo `json:"routes"`
		Count  int                      `json:"count"`
	}
	f := newFixture(t)
	t.Run("lists the route table", func(t *testing.T) {
		got := decode[routes](t, call(f.h, http.MethodGet, "/router/routes", ""), http.StatusOK)
		assert.Equal(t, "/orchestrator", got.Prefix)
		require.Equal(t, 3, got.Count)
		var paths []string
		for _, r := range got.Routes {
			paths = append(paths, r.Path)
		}
		assert.Equal(t, []string{"/orchestrator/legacy", "/orchestrator/orders", "/orchestrator/users/v1"}, paths)
	})
	t.Run("refresh rebuilds and answers the table", func(t *testing.T) {
		got := decode[routes](t, call(f.h, http.MethodPost, "/router/refresh", ""), http.StatusOK)
		assert.Equal(t, 3, got.Count)
	})
	t.Run("refresh needs authorization", func(t *testing.T) {
		f := newFixture(t, withToken)
		requireProblem(t, call(f.h, http.MethodPost, "/router/refresh", ""), http.StatusUnauthorized, "unauthorized")
	})
	t.Run("routes needs a loopback client without token", func(t *testing.T) {
		requireProblem(t, call(f.h, http.MethodGet, "/router/routes", "", remote("[2001:db8::1]:443")), http.StatusForbidden, "not-loopback")
	})
}

func TestRouterTest(t *testing.T) {
	type routeTest struct {
		resolution
		Path                string                     `json:"path"`
		Status              orchestrator.HealthStatus  `json:"status"`
		CircuitBreakerState orchestrator.BreakerState  `json:"circuit_breaker_state"`
		Reachable           bool                       `json:"reachable"`
		Targets             []orchestrator.TargetCheck `json:"targets"`
	}
	f := newFixture(t)
	t.Run("tests each target with a HEAD to its health_check_path", func(t *testing.T) {
		got := decode[routeTest](t, call(f.h, http.MethodGet, "/router/test/users_v1", ""), http.StatusOK)
		assert.True(t, got.Reachable)
		require.Len(t, got.Targets, 1)
		c := got.Targets[0]
		assert.True(t, c.Reachable)
		assert.Equal(t, http.StatusOK, c.Status)
		assert.Equal(t, http.MethodHead, c.Method)
		assert.Equal(t, f.backend.URL+"/health", c.URL)
		assert.Empty(t, c.ErrorKind)
	})
	t.Run("an endpoint on a closed port matches but is not reachable", func(t *testing.T) {
		closed := testutil.RefusedURL(t)
		_, err := f.o.Register(context.Background(), orchestrator.Endpoint{Name: "gone", URL: closed + "/api"})
		require.NoError(t, err)

		got := decode[routeTest](t, call(f.h, http.MethodGet, "/router/test/gone", ""), http.StatusOK)
		assert.True(t, got.Matched, "the route resolves")
		assert.False(t, got.Reachable, "but nothing listens behind it")
		require.Len(t, got.Targets, 1)
		assert.Equal(t, "refused", got.Targets[0].ErrorKind)
		assert.Equal(t, closed+"/api", got.Targets[0].URL)
		assert.Zero(t, got.Targets[0].Status)
	})
	t.Run("resolves the endpoint's own route", func(t *testing.T) {
		got := decode[routeTest](t, call(f.h, http.MethodGet, "/router/test/users_v1", ""), http.StatusOK)
		assert.True(t, got.Matched)
		assert.Equal(t, "users_v1", got.EndpointID)
		assert.Equal(t, f.backend.URL+"/api", got.UpstreamURL)
		assert.Equal(t, "/orchestrator/users/v1", got.Path)
		assert.Equal(t, orchestrator.BreakerClosed, got.CircuitBreakerState)
	})
	t.Run("says why an endpoint would refuse", func(t *testing.T) {
		require.NoError(t, f.o.TripBreaker("orders"))
		got := decode[routeTest](t, call(f.h, http.MethodGet, "/router/test/orders", ""), http.StatusOK)
		assert.Equal(t, orchestrator.StatusUnhealthy, got.Status)
		assert.NotEmpty(t, got.Reason)
	})
	t.Run("answers 404 for an unknown id", func(t *testing.T) {
		requireProblem(t, call(f.h, http.MethodGet, "/router/test/nope", ""), http.StatusNotFound, "not-found")
	})
}

func TestRouterDebug(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		target string
		want   resolution
		reason bool // a reason is expected
	}{
		{"resolves a versioned path with its query", "/router/debug/users/v1/42?x=1&y=%20",
			resolution{Matched: true, EndpointID: "users_v1", UpstreamURL: f.backend.URL + "/api/42?x=1&y=%20"}, false},
		{"resolves an unversioned endpoint", "/router/debug/orders/v9/items",
			resolution{Matched: true, EndpointID: "orders", UpstreamURL: f.backend.URL + "/orders/v9/items"}, false},
		{"keeps an escaped slash", "/router/debug/users/v1/a%2Fb",
			resolution{Matched: true, EndpointID: "users_v1", UpstreamURL: f.backend.URL + "/api/a%2Fb"}, false},
		{"reports an encoded dot segment", "/router/debug/users/v1/%2e%2e/secret",
			resolution{EndpointID: "users_v1"}, true},
		{"reports no match", "/router/debug/nope/v1", resolution{}, true},
		{"reports no match for an empty path", "/router/debug/", resolution{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decode[resolution](t, call(f.h, http.MethodGet, tt.target, ""), http.StatusOK)
			if tt.reason {
				assert.NotEmpty(t, got.Reason)
				got.Reason = ""
			}
			assert.Equal(t, tt.want, got)
		})
	}
	t.Run("always sends all four fields", func(t *testing.T) {
		got := decode[map[string]any](t, call(f.h, http.MethodGet, "/router/debug/nope", ""), http.StatusOK)
		assert.ElementsMatch(t, []string{"matched", "endpoint_id", "upstream_url", "reason"}, keys(got))
	})
	t.Run("refuses a non-loopback Host without token", func(t *testing.T) {
		requireProblem(t, call(f.h, http.MethodGet, "/router/debug/users/v1", "", host("evil.example")), http.StatusForbidden, "host-not-allowed")
	})
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
