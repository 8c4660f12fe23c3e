package admin

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/orchestrator-go/orchestrator"
)

// breakerView is one endpoint's circuit breaker as the admin API shows it.
type breakerView struct {
	ID                  string                    `json:"id"`
	State               orchestrator.BreakerState `json:"state"`
	ConsecutiveFailures int64                     `json:"consecutive_failures"`
	LastFailureTime     *time.Time                `json:"last_failure_time"`
}

// breakerList is the list shape for breakers.
type breakerList struct {
	Endpoints []breakerView `json:"endpoints"`
	Count     int           `json:"count"`
}

func breakerOf(ep orchestrator.RegisteredEndpoint) breakerView {
	return breakerView{
		ID:                  ep.ID,
		State:               ep.CircuitBreakerState,
		ConsecutiveFailures: ep.ConsecutiveRequestFailures,
		LastFailureTime:     ep.LastFailureTime,
	}
}

func breakersOf(eps []orchestrator.RegisteredEndpoint, keep func(orchestrator.RegisteredEndpoint) bool) breakerList {
	out := breakerList{Endpoints: []breakerView{}}
	for _, ep := range eps {
		if keep == nil || keep(ep) {
			out.Endpoints = append(out.Endpoints, breakerOf(ep))
		}
	}
	out.Count = len(out.Endpoints)
	return out
}

func (h *Handler) getBreakers(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, breakersOf(h.o.Endpoints(), nil))
}

func (h *Handler) getBreaker(w http.ResponseWriter, r *http.Request) error {
	ep, err := h.o.Endpoint(r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, breakerOf(ep))
}

func (h *Handler) getOpenBreakers(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, breakersOf(h.o.Endpoints(), func(ep orchestrator.RegisteredEndpoint) bool {
		return ep.CircuitBreakerState == orchestrator.BreakerOpen
	}))
}

// answerBreaker answers the breaker of id after a change.
func (h *Handler) answerBreaker(w http.ResponseWriter, id string) error {
	ep, err := h.o.Endpoint(id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, breakerOf(ep))
}

func (h *Handler) postResetBreaker(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := h.o.ResetBreaker(id); err != nil {
		return err
	}
	return h.answerBreaker(w, id)
}

// postTripBreaker opens a breaker by hand. An endpoint whose breaker is
// disabled answers 409: tripping it would silently do nothing.
func (h *Handler) postTripBreaker(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ep, err := h.o.Endpoint(id)
	if err != nil {
		return err
	}
	if ep.CircuitBreakerState == orchestrator.BreakerDisabled {
		return &apiError{status: http.StatusConflict, kind: "breaker-disabled", title: "Circuit breaker disabled",
			detail: fmt.Sprintf("endpoint %q has its circuit breaker disabled, so it cannot be tripped; disable the endpoint instead", id)}
	}
	if err := h.o.TripBreaker(id); err != nil {
		return err
	}
	return h.answerBreaker(w, id)
}

// postResetAllBreakers closes every breaker and answers them all.
func (h *Handler) postResetAllBreakers(w http.ResponseWriter, r *http.Request) error {
	for _, ep := range h.o.Endpoints() {
		// An endpoint removed meanwhile has no breaker left to reset.
		if err := h.o.ResetBreaker(ep.ID); err != nil && !errors.Is(err, orchestrator.ErrNotFound) {
			return err
		}
	}
	return writeJSON(w, http.StatusOK, breakersOf(h.o.Endpoints(), nil))
}
