package admin

import (
	"fmt"
	"net/http"
	"time"

	"github.com/orchestrator-go/orchestrator"
)

// liveness is the body of GET /health.
type liveness struct {
	Status string `json:"status"`
}

// gatewayStatus is the body of GET /health/status.
type gatewayStatus struct {
	// Status is "ok", "degraded" (some endpoint is unhealthy or has an open
	// breaker) or "draining".
	Status    string    `json:"status"`
	Version   string    `json:"version"`
	StartedAt time.Time `json:"started_at"`
	// Uptime is the time since started_at in seconds, to the millisecond,
	// as every duration the admin API answers with.
	Uptime orchestrator.Duration `json:"uptime"`
	// UptimeSeconds is Uptime in whole seconds, kept for the clients that
	// read it from before uptime was a number.
	UptimeSeconds       int64          `json:"uptime_seconds"`
	Prefix              string         `json:"prefix"`
	Endpoints           endpointCounts `json:"endpoints"`
	CircuitBreakersOpen int            `json:"circuit_breakers_open"`
}

type endpointCounts struct {
	Total     int `json:"total"`
	Healthy   int `json:"healthy"`
	Unhealthy int `json:"unhealthy"`
	Unknown   int `json:"unknown"`
	Disabled  int `json:"disabled"`
}

// healthSummary is the body of GET /health/summary.
type healthSummary struct {
	Total          int                               `json:"total"`
	ByStatus       map[orchestrator.HealthStatus]int `json:"by_status"`
	ByBreakerState map[orchestrator.BreakerState]int `json:"by_circuit_breaker_state"`
}

// endpointList is the list shape: {"endpoints": [...], "count": N}.
type endpointList struct {
	Endpoints []orchestrator.RegisteredEndpoint `json:"endpoints"`
	Count     int                               `json:"count"`
}

func listOf(eps []orchestrator.RegisteredEndpoint) endpointList {
	if eps == nil {
		eps = []orchestrator.RegisteredEndpoint{}
	}
	return endpointList{Endpoints: eps, Count: len(eps)}
}

func filter(eps []orchestrator.RegisteredEndpoint, keep func(orchestrator.RegisteredEndpoint) bool) []orchestrator.RegisteredEndpoint {
	out := []orchestrator.RegisteredEndpoint{}
	for _, ep := range eps {
		if keep(ep) {
			out = append(out, ep)
		}
	}
	return out
}

// summarize counts endpoints by status and breaker state; every known value
// is present, zero or not, so that clients need no existence checks.
func summarize(eps []orchestrator.RegisteredEndpoint) healthSummary {
	s := healthSummary{
		Total: len(eps),
		ByStatus: map[orchestrator.HealthStatus]int{
			orchestrator.StatusHealthy: 0, orchestrator.StatusUnhealthy: 0,
			orchestrator.StatusUnknown: 0, orchestrator.StatusDisabled: 0,
		},
		ByBreakerState: map[orchestrator.BreakerState]int{
			orchestrator.BreakerClosed: 0, orchestrator.BreakerOpen: 0,
			orchestrator.BreakerHalfOpen: 0, orchestrator.BreakerDisabled: 0,
		},
	}
	for _, ep := range eps {
		s.ByStatus[ep.Status]++
		s.ByBreakerState[ep.CircuitBreakerState]++
	}
	return s
}

func (h *Handler) draining() bool { return h.opts.Draining != nil && h.opts.Draining() }

func (h *Handler) getHealth(w http.ResponseWriter, r *http.Request) error {
	if h.draining() {
		return writeJSON(w, http.StatusServiceUnavailable, liveness{Status: "draining"})
	}
	return writeJSON(w, http.StatusOK, liveness{Status: "ok"})
}

// getHealthLive is the process's liveness, for a Kubernetes livenessProbe:
// 200 as long as the process answers, draining included. /health turns 503
// on SIGTERM so that readiness takes the instance out of rotation; a
// liveness probe on it would have the kubelet kill a gateway that is only
// finishing its drain.
func (h *Handler) getHealthLive(w http.ResponseWriter, r *http.Request) error {
	if h.draining() {
		return writeJSON(w, http.StatusOK, liveness{Status: "draining"})
	}
	return writeJSON(w, http.StatusOK, liveness{Status: "ok"})
}

func (h *Handler) getHealthStatus(w http.ResponseWriter, r *http.Request) error {
	sum := summarize(h.o.Endpoints())
	uptime := time.Since(h.started).Round(time.Millisecond)
	st := gatewayStatus{
		Status:        "ok",
		Version:       h.opts.Version,
		StartedAt:     h.started.UTC(),
		Uptime:        orchestrator.Duration(uptime),
		UptimeSeconds: int64(uptime / time.Second),
		Prefix:        h.o.Prefix(),
		Endpoints: endpointCounts{
			Total:     sum.Total,
			Healthy:   sum.ByStatus[orchestrator.StatusHealthy],
			Unhealthy: sum.ByStatus[orchestrator.StatusUnhealthy],
			Unknown:   sum.ByStatus[orchestrator.StatusUnknown],
			Disabled:  sum.ByStatus[orchestrator.StatusDisabled],
		},
		CircuitBreakersOpen: sum.ByBreakerState[orchestrator.BreakerOpen],
	}
	switch {
	case h.draining():
		st.Status = "draining"
	case st.Endpoints.Unhealthy > 0 || st.CircuitBreakersOpen > 0:
		st.Status = "degraded"
	}
	return writeJSON(w, http.StatusOK, st)
}

func (h *Handler) getHealthEndpoints(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, listOf(h.o.Endpoints()))
}

// getEndpoint serves GET /health/endpoints/{id}.
func (h *Handler) getEndpoint(w http.ResponseWriter, r *http.Request) error {
	ep, err := h.o.Endpoint(r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ep)
}

func (h *Handler) getUnhealthy(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, listOf(filter(h.o.Endpoints(), func(ep orchestrator.RegisteredEndpoint) bool {
		return ep.Status == orchestrator.StatusUnhealthy
	})))
}

func (h *Handler) getHealthSummary(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, summarize(h.o.Endpoints()))
}

// postHealthCheck probes an endpoint now. An endpoint without an active
// check (no health_check_path, checks disabled, or the endpoint disabled)
// answers 409: there is nothing to probe.
func (h *Handler) postHealthCheck(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ep, err := h.o.Endpoint(id)
	if err != nil {
		return err
	}
	if !ep.Health.Active {
		return &apiError{status: http.StatusConflict, kind: "no-active-check", title: "No active health check",
			detail: fmt.Sprintf("endpoint %q has no active health check (no health_check_path, health checks disabled, or the endpoint is disabled); its circuit breaker alone judges it", id)}
	}
	ep, err = h.o.CheckHealth(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ep)
}
