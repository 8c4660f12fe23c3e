package orchestrator

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// HealthStatus is an endpoint's status as the gateway observes it.
type HealthStatus string

// The statuses.
const (
	// StatusUnknown: no probe has answered yet. Requests are served.
	StatusUnknown HealthStatus = "unknown"
	// StatusHealthy: probes pass (or, without a health_check_path, the
	// breaker is not open).
	StatusHealthy HealthStatus = "healthy"
	// StatusUnhealthy: unhealthy_threshold consecutive probes failed (or,
	// without a health_check_path, the breaker is open). Requests fail fast
	// with 503 without touching the upstream.
	StatusUnhealthy HealthStatus = "unhealthy"
	// StatusDisabled: the endpoint is registered with disabled: true.
	StatusDisabled HealthStatus = "disabled"
)

// ProbeTarget is what a Prober checks.
type ProbeTarget struct {
	// EndpointID is the id of the endpoint probed.
	EndpointID string
	// URL is the absolute URL to probe: the upstream's scheme and host with
	// the endpoint's health_check_path.
	URL string
	// Endpoint is the endpoint's configuration, for probes that need more
	// (a gRPC service name, a TCP port).
	Endpoint Endpoint
}

// Prober checks one endpoint. A nil error means healthy. Implementations
// must honour ctx (it carries the health_check.timeout) and be safe for
// concurrent use. Users plug in TCP, gRPC or custom probes with WithProber.
type Prober interface {
	Probe(ctx context.Context, target ProbeTarget) error
}

// ProberFunc adapts a function to the Prober interface.
type ProberFunc func(ctx context.Context, target ProbeTarget) error

// Probe calls f.
func (f ProberFunc) Probe(ctx context.Context, target ProbeTarget) error { return f(ctx, target) }

// HTTPProber is the default Prober: an HTTP GET of the target URL, healthy
// on any 2xx or 3xx status (redirects are not followed), as Traefik judges.
type HTTPProber struct {
	// Client sends the probes. Nil uses a client on the Orchestrator's
	// transport (when used through New) or http.DefaultTransport.
	Client *http.Client
}

// Probe sends the GET and drains a little of the body so that the connection
// can be reused.
func (p *HTTPProber) Probe(ctx context.Context, target ProbeTarget) error {
	client := p.Client
	if client == nil {
		client = &http.Client{CheckRedirect: noRedirects}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.URL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "orchestrator-health-check")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return fmt.Errorf("health check answered %d", resp.StatusCode)
	}
	return nil
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// healthState is the observed health of one endpoint. It lives on the
// Orchestrator (never in the registry) and survives config changes that keep
// the same upstream and health-check path. Must not be copied.
type healthState struct {
	// status is read on every request without a lock.
	status atomic.Pointer[HealthStatus]
	// nextProbe is the UnixNano time of the next scheduled probe, for
	// Retry-After on fast-failed requests.
	nextProbe atomic.Int64

	mu                   sync.Mutex
	consecutiveSuccesses int
	consecutiveFailures  int
	lastCheck            time.Time
	lastError            string
	lastResponseTime     time.Duration
}

var (
	statusUnknown   = StatusUnknown
	statusHealthy   = StatusHealthy
	statusUnhealthy = StatusUnhealthy
)

func newHealthState() *healthState {
	h := &healthState{}
	h.status.Store(&statusUnknown)
	return h
}

// idleHealth is the health state of every route without an active check:
// nothing probes them, so nothing writes it, and they need not each carry
// one (an active route's probe URL differs from an idle one's "", so a route
// that becomes active never inherits it).
var idleHealth = newHealthState()

func (h *healthState) current() HealthStatus { return *h.status.Load() }

// record applies one probe result under the thresholds and reports the
// status before and after. From unknown, one good probe is enough to be
// healthy (a fresh endpoint should not wait healthy_threshold intervals),
// while going unhealthy always takes unhealthy_threshold failures.
func (h *healthState) record(err error, took time.Duration, at time.Time, cfg HealthCheckConfig) (from, to HealthStatus) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastCheck = at
	h.lastResponseTime = took
	from = h.current()
	to = from
	if err == nil {
		h.lastError = ""
		h.consecutiveFailures = 0
		h.consecutiveSuccesses++
		if from == StatusUnknown || (from == StatusUnhealthy && h.consecutiveSuccesses >= cfg.HealthyThreshold) {
			to = StatusHealthy
		}
	} else {
		h.lastError = err.Error()
		h.consecutiveSuccesses = 0
		h.consecutiveFailures++
		if from != StatusUnhealthy && h.consecutiveFailures >= cfg.UnhealthyThreshold {
			to = StatusUnhealthy
		}
	}
	switch to {
	case StatusHealthy:
		h.status.Store(&statusHealthy)
	case StatusUnhealthy:
		h.status.Store(&statusUnhealthy)
	}
	return from, to
}

// HealthReport is the detail of an endpoint's active health checking.
type HealthReport struct {
	// Active is true when the endpoint is probed (it has a health_check_path
	// and health checks are enabled).
	Active bool `json:"active"`
	// URL is the probed URL.
	URL string `json:"url,omitempty"`
	// ConsecutiveSuccesses and ConsecutiveFailures count the latest run of
	// equal probe results.
	ConsecutiveSuccesses int `json:"consecutive_successes"`
	ConsecutiveFailures  int `json:"consecutive_failures"`
	// LastError is the last failed probe's error, cleared by a good probe.
	LastError string `json:"last_error,omitempty"`
	// ResponseTime is how long the last probe took.
	ResponseTime Duration `json:"response_time"`
	// NextCheck is when the next probe is due.
	NextCheck *time.Time `json:"next_check,omitempty"`
}

func (h *healthState) report(active bool, url string) (HealthReport, *time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := HealthReport{
		Active:               active,
		URL:                  url,
		ConsecutiveSuccesses: h.consecutiveSuccesses,
		ConsecutiveFailures:  h.consecutiveFailures,
		LastError:            h.lastError,
		ResponseTime:         Duration(h.lastResponseTime),
	}
	if active {
		if n := h.nextProbe.Load(); n > 0 {
			t := time.Unix(0, n).UTC()
			r.NextCheck = &t
		}
	}
	var last *time.Time
	if !h.lastCheck.IsZero() {
		t := h.lastCheck.UTC()
		last = &t
	}
	return r, last
}

// probe is the scheduler's job: probe one endpoint now and return the wait
// until the next probe.
func (o *Orchestrator) probe(ctx context.Context, id string) time.Duration {
	// Read the route under the writers' lock, not from the published table:
	// writers schedule a probe (Add(id, 0)) before they publish, and a probe
	// that ran in between would find no route (and wait a minute) or the old
	// one (and wait its old interval).
	o.mu.Lock()
	rt := o.entries[id]
	o.mu.Unlock()
	if rt == nil || !rt.healthActive {
		// Removed, or no longer checked: the scheduler entry is being
		// replaced; come back rarely in case it is not.
		return time.Minute
	}
	o.runProbe(ctx, rt)
	next := jitter(rt.health.Interval.Std())
	rt.healthState.nextProbe.Store(time.Now().Add(next).UnixNano())
	return next
}

// runProbe probes rt once, records the result and logs a transition.
func (o *Orchestrator) runProbe(ctx context.Context, rt *route) HealthStatus {
	pctx, cancel := context.WithTimeout(ctx, rt.health.Timeout.Std())
	defer cancel()
	start := time.Now()
	err := o.prober.Probe(pctx, ProbeTarget{EndpointID: rt.id, URL: rt.probeURL, Endpoint: rt.ep})
	took := time.Since(start)
	if ctx.Err() != nil {
		// Shutting down: a cancelled probe says nothing about the endpoint.
		return rt.healthState.current()
	}
	from, to := rt.healthState.record(err, took, start, *rt.health)
	if m := rt.metrics; m != nil {
		m.probeDuration.Update(took.Seconds())
		if from != to {
			m.healthFlips.Inc()
		}
	}
	if from != to {
		level := slog.LevelInfo
		attrs := []any{slog.String("endpoint_id", rt.id), slog.String("from", string(from)), slog.String("to", string(to))}
		if to == StatusUnhealthy {
			level = slog.LevelWarn
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		o.healthLog.Log(ctx, level, "endpoint health changed", attrs...)
	}
	return to
}

// CheckHealth probes the endpoint now, outside its schedule, and returns its
// view afterwards. An endpoint without an active check (no
// health_check_path, checks disabled) is not probed: its view says
// Health.Active false. Unknown ids get ErrNotFound. Safe for concurrent use.
func (o *Orchestrator) CheckHealth(ctx context.Context, id string) (RegisteredEndpoint, error) {
	rt := o.table.Load().route(id)
	if rt == nil {
		return RegisteredEndpoint{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if rt.healthActive {
		o.runProbe(ctx, rt)
	}
	return o.view(rt), nil
}

// jitter spreads d by up to ±10% so that endpoints registered together do not
// probe in lockstep.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	spread := int64(d) / 10
	if spread == 0 {
		return d
	}
	return d + time.Duration(rand.Int64N(2*spread+1)-spread)
}
