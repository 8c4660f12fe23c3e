package orchestrator

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// RegisteredEndpoint is an endpoint as the gateway sees it: its config and
// owner (desired state) with its health and breaker (observed state). It is
// the shape the admin API returns.
//
// Its first six fields are the health entry the admin API's clients know
// from the original service's EndpointHealth model, in that model's names
// and order; encoding/json writes fields in struct order, so keep them
// first. Every duration in it encodes as a number of seconds.
type RegisteredEndpoint struct {
	// EndpointID is the endpoint's id, the same as ID.
	EndpointID string `json:"endpoint_id"`
	// LastCheckTime is when the last health probe ran; nil before the
	// first, and for an endpoint that is not probed.
	LastCheckTime *time.Time `json:"last_check_time"`
	// ResponseTime is how long the last health probe took; zero before the
	// first.
	ResponseTime Duration `json:"response_time"`
	// ErrorMessage is the last health probe's error while probes fail; nil
	// (JSON null) when the last probe passed or none has run.
	ErrorMessage *string `json:"error_message"`
	// ConsecutiveFailures counts the health probes that failed in a row
	// (health_check.unhealthy_threshold of them make the endpoint
	// unhealthy); a passing probe resets it. Proxied requests that failed
	// are ConsecutiveRequestFailures.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// ConsecutiveSuccesses counts the health probes that passed in a row
	// (health_check.healthy_threshold of them make an unhealthy endpoint
	// healthy again); a failing probe resets it.
	ConsecutiveSuccesses int `json:"consecutive_successes"`

	// ID is the endpoint's id.
	ID string `json:"id"`
	// Config is the endpoint's normalized configuration.
	Config Endpoint `json:"config"`
	// Source is the owner: "config" (the file) or "api".
	Source Source `json:"source"`
	// Revision is the registry revision of Config; the admin API's ETag.
	Revision uint64 `json:"revision"`
	// RegistrationTime is when the id was first registered.
	RegistrationTime time.Time `json:"registration_time"`
	// LastHealthCheck is when the last probe ran; nil before the first.
	// The same as LastCheckTime, kept for the clients that read it.
	LastHealthCheck *time.Time `json:"last_health_check"`
	// Status is unknown, healthy, unhealthy or disabled.
	Status HealthStatus `json:"status"`
	// CircuitBreakerState is closed, open, half_open or disabled.
	CircuitBreakerState BreakerState `json:"circuit_breaker_state"`
	// ConsecutiveRequestFailures counts proxied requests that failed in a
	// row, what the circuit breaker counts towards failure_threshold.
	ConsecutiveRequestFailures int64 `json:"consecutive_request_failures"`
	// LastFailureTime is when a proxied request last failed; nil if never.
	LastFailureTime *time.Time `json:"last_failure_time"`
	// Health details the active health checking.
	Health HealthReport `json:"health"`
	// Traffic counts the requests served.
	Traffic TrafficReport `json:"traffic"`
	// Targets is each target's state, for an endpoint with a targets
	// list (absent for the url shorthand, whose one target's state is the
	// endpoint's). The endpoint's own probe fields above then sum its
	// targets up: the latest check, the fewest probes failed or passed in
	// a row, and an error message only when every target's last probe
	// failed.
	Targets []TargetReport `json:"targets,omitempty"`
}

// TargetReport is one target's state in an endpoint's view: its config
// and its observed health, ejection, breaker and in-flight requests.
type TargetReport struct {
	// ID is the target's id.
	ID string `json:"id"`
	// URL is the target's base URL.
	URL string `json:"url"`
	// Weight is the configured weight.
	Weight int `json:"weight"`
	// Drained is set while an operator's drain holds the target out of
	// balancing (its weight counts as 0).
	Drained bool `json:"drained"`
	// Eligible: the target can take a new request now.
	Eligible bool `json:"eligible"`
	// AwaitingProbe: added by a reload, it is not preferred before its
	// first health probe passes.
	AwaitingProbe bool `json:"awaiting_probe,omitempty"`
	// Status is the target's health: from its probes when probed, else
	// from its breaker.
	Status HealthStatus `json:"status"`
	// LastCheckTime is when its last probe ran.
	LastCheckTime *time.Time `json:"last_check_time"`
	// Health details its probes.
	Health HealthReport `json:"health"`
	// CircuitBreakerState is its breaker's state.
	CircuitBreakerState BreakerState `json:"circuit_breaker_state"`
	// Ejected: outlier detection took it out of balancing until
	// EjectedUntil.
	Ejected      bool       `json:"ejected"`
	EjectedUntil *time.Time `json:"ejected_until,omitempty"`
	// Ejections counts its ejections since the endpoint's outlier
	// detection was set up.
	Ejections uint64 `json:"ejections"`
	// ConsecutiveRequestFailures is its current run of failed requests,
	// what outlier detection counts.
	ConsecutiveRequestFailures int `json:"consecutive_request_failures"`
	// InFlight is its requests in flight.
	InFlight int64 `json:"in_flight"`
}

func (o *Orchestrator) view(rt *route) RegisteredEndpoint {
	up := rt.targets[0]
	report, last := up.health.report(rt.healthActive, rt.probeURL(up))
	var targets []TargetReport
	if len(rt.ep.Targets) > 0 {
		targets = rt.targetReports()
		report, last = sumUp(rt.healthActive, targets)
	}
	v := RegisteredEndpoint{
		EndpointID:                 rt.ep.ID,
		LastCheckTime:              last,
		ResponseTime:               report.ResponseTime,
		ConsecutiveFailures:        report.ConsecutiveFailures,
		ConsecutiveSuccesses:       report.ConsecutiveSuccesses,
		ID:                         rt.ep.ID,
		Config:                     rt.ep,
		Source:                     rt.reg.Source,
		Revision:                   rt.reg.Revision,
		RegistrationTime:           rt.reg.RegisteredAt,
		LastHealthCheck:            last,
		Status:                     rt.status(),
		CircuitBreakerState:        rt.breakerState(),
		ConsecutiveRequestFailures: rt.traffic.consecutiveFailures.Load(),
		Health:                     report,
		Traffic: TrafficReport{
			Requests:     rt.traffic.requests.Load(),
			ServerErrors: rt.traffic.serverErrors.Load(),
			LatencySum:   Duration(rt.traffic.latencyNanos.Load()),
			InFlight:     rt.traffic.inFlight.Load(),
		},
		Targets: targets,
	}
	if plan := rt.rateLimitPlan(); plan != nil {
		v.Traffic.RateLimited = plan.limited.Load()
	}
	if plan := rt.adaptivePlan(); plan != nil {
		v.Traffic.LoadShed = plan.shed.Load()
		v.Traffic.AdaptiveLimit = plan.limiter.Limit()
	}
	if report.LastError != "" {
		msg := report.LastError
		v.ErrorMessage = &msg
	}
	if n := rt.traffic.lastFailure.Load(); n != 0 {
		t := time.Unix(0, n).UTC()
		v.LastFailureTime = &t
	}
	return v
}

// targetReports returns each target's state.
func (rt *route) targetReports() []TargetReport {
	now := time.Now()
	list := rt.ep.TargetList()
	out := make([]TargetReport, len(rt.targets))
	for i, u := range rt.targets {
		health, last := u.health.report(rt.healthActive, rt.probeURL(u))
		r := TargetReport{
			ID: u.id, URL: list[i].URL, Weight: int(u.weight), Drained: u.drained.Load(),
			Eligible: u.Weight() > 0 && u.Eligible(), AwaitingProbe: u.pending.Load(),
			Status: u.status(rt.healthActive), LastCheckTime: last, Health: health,
			CircuitBreakerState: u.breaker.state(), InFlight: u.inFlight.Load(),
		}
		if rt.set != nil && rt.set.outlier != nil {
			s := rt.set.outlier.State(i, now)
			r.Ejected, r.Ejections, r.ConsecutiveRequestFailures = s.Ejected, s.Ejections, s.ConsecutiveFailures
			if s.Ejected {
				until := s.Until.UTC()
				r.EjectedUntil = &until
			}
		}
		out[i] = r
	}
	return out
}

// sumUp is an endpoint's probe report from its targets': the latest check,
// the fewest probes failed (and passed) in a row, the slowest probe, and
// the first target's error only when every target's last probe failed.
func sumUp(active bool, targets []TargetReport) (HealthReport, *time.Time) {
	sum := HealthReport{Active: active}
	var last *time.Time
	allFailed := true
	for i, t := range targets {
		h := t.Health
		if i == 0 || h.ConsecutiveFailures < sum.ConsecutiveFailures {
			sum.ConsecutiveFailures = h.ConsecutiveFailures
		}
		if i == 0 || h.ConsecutiveSuccesses < sum.ConsecutiveSuccesses {
			sum.ConsecutiveSuccesses = h.ConsecutiveSuccesses
		}
		sum.ResponseTime = max(sum.ResponseTime, h.ResponseTime)
		if h.NextCheck != nil && (sum.NextCheck == nil || h.NextCheck.Before(*sum.NextCheck)) {
			sum.NextCheck = h.NextCheck
		}
		if t.LastCheckTime != nil && (last == nil || t.LastCheckTime.After(*last)) {
			last = t.LastCheckTime
		}
		allFailed = allFailed && h.LastError != ""
	}
	if allFailed && len(targets) > 0 {
		sum.LastError = targets[0].Health.LastError
	}
	return sum, last
}

// Endpoint returns one endpoint's view, or ErrNotFound.
func (o *Orchestrator) Endpoint(id string) (RegisteredEndpoint, error) {
	rt := o.table.Load().route(id)
	if rt == nil {
		return RegisteredEndpoint{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return o.view(rt), nil
}

// Endpoints returns every endpoint's view sorted by id.
func (o *Orchestrator) Endpoints() []RegisteredEndpoint {
	t := o.table.Load()
	out := make([]RegisteredEndpoint, 0, t.ids.Len())
	for _, rt := range t.ids.All() {
		out = append(out, o.view(rt))
	}
	slices.SortFunc(out, func(a, b RegisteredEndpoint) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// trafficState counts request outcomes of one endpoint. Must not be copied.
type trafficState struct {
	consecutiveFailures atomic.Int64
	lastFailure         atomic.Int64 // UnixNano
	requests            atomic.Uint64
	serverErrors        atomic.Uint64 // answered 5xx
	latencyNanos        atomic.Uint64 // sum over requests
	inFlight            atomic.Int64
}

// TrafficReport counts the requests an endpoint has served since it was
// registered (or since its upstream URL last changed). Rates and mean
// latencies over a window are differences of two reports.
type TrafficReport struct {
	// Requests is the number of requests answered for the endpoint.
	Requests uint64 `json:"requests"`
	// ServerErrors is how many of them were answered with a 5xx.
	ServerErrors uint64 `json:"server_errors"`
	// LatencySum is the total time spent answering them.
	LatencySum Duration `json:"latency_sum"`
	// InFlight is the number being answered now.
	InFlight int64 `json:"in_flight"`
	// RateLimited counts the requests the endpoint's rate limit refused
	// (429) since the limit was set; absent while there is none.
	RateLimited uint64 `json:"rate_limited,omitempty"`
	// LoadShed counts the requests the endpoint's adaptive concurrency
	// limit shed (503 load-shed) since it was set; absent while there is
	// none.
	LoadShed uint64 `json:"load_shed,omitempty"`
	// AdaptiveLimit is the adaptive limiter's current limit; absent
	// without one.
	AdaptiveLimit int `json:"adaptive_limit,omitempty"`
}

func (t *trafficState) record(failed bool) {
	if failed {
		t.consecutiveFailures.Add(1)
		t.lastFailure.Store(time.Now().UnixNano())
	} else if t.consecutiveFailures.Load() != 0 {
		t.consecutiveFailures.Store(0)
	}
}
