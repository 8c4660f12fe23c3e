package orchestrator

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
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
	// StatusHealthy: probes pass (or, for an endpoint that is not probed,
	// the breaker is not open).
	StatusHealthy HealthStatus = "healthy"
	// StatusUnhealthy: unhealthy_threshold consecutive probes failed (or,
	// for an endpoint that is not probed, the breaker is open). Requests to
	// a probed endpoint then fail fast with 503 without touching the
	// upstream.
	StatusUnhealthy HealthStatus = "unhealthy"
	// StatusDisabled: the endpoint is registered with disabled: true.
	StatusDisabled HealthStatus = "disabled"
)

// ProbeTarget is what a Prober checks: one endpoint, named by its id, with
// the address of its upstream.
type ProbeTarget struct {
	// EndpointID is the id of the endpoint probed.
	EndpointID string
	// URL is the absolute URL to probe: the upstream's scheme and host with
	// the endpoint's health_check_path, such as "http://10.0.0.5:8080/health"
	// (the upstream URL's own path is left out). It is empty when the
	// endpoint has no health_check_path.
	URL string
	// Host is the upstream URL's host name or IP address, without port or
	// IPv6 brackets: "10.0.0.5", "::1", "users.internal".
	Host string
	// Port is the upstream URL's port, or its scheme's default ("80" for
	// http, "443" for https) when it names none. net.JoinHostPort(Host,
	// Port) is the address a TCP probe dials.
	Port string
	// Endpoint is the endpoint's configuration, for probes that need more
	// (a gRPC service name, the upstream's scheme).
	Endpoint Endpoint
	// TargetID is the id of the target probed: each target of an endpoint
	// is probed on its own. For the url shorthand it is the URL's
	// host:port.
	TargetID string
	// Transport is the RoundTripper the gateway's requests to the target
	// use when it is not the shared one (a target with a tls section), so
	// that a probe trusts the same CA and presents the same client
	// certificate. Nil otherwise.
	Transport http.RoundTripper
}

// Prober checks one endpoint. A nil error means healthy; an error counts
// towards health_check.unhealthy_threshold, and an unhealthy endpoint's
// requests fail fast with 503 until healthy_threshold probes pass.
//
// The default is an *HTTPProber, which checks only endpoints that have a
// health_check_path. Any other Prober, set with WithProber, is called for
// every endpoint whose health checks are on (health_check.enabled is not
// false and the endpoint is not disabled), with or without a
// health_check_path: right after the endpoint is registered or its
// upstream or health_check config changes, then every health_check.interval
// (±10%), and on CheckHealth. Its target carries the upstream's Host and
// Port, and the URL when there is a health_check_path.
//
// Implementations must honour ctx (it carries the health_check.timeout; a
// scheduled probe's is also cancelled by Close, a CheckHealth probe's by its
// caller's context) and be safe for concurrent use: different
// endpoints are probed at once, up to WithHealthCheckConcurrency, while one
// endpoint's scheduled probes never overlap (CheckHealth may run beside
// one). A custom Prober makes its own connections: WithAllowedUpstreams
// guards only the gateway's default transport. Users plug in TCP, gRPC or
// custom probes with WithProber.
type Prober interface {
	Probe(ctx context.Context, target ProbeTarget) error
}

// ProberFunc adapts a function to the Prober interface.
type ProberFunc func(ctx context.Context, target ProbeTarget) error

// Probe calls f.
func (f ProberFunc) Probe(ctx context.Context, target ProbeTarget) error { return f(ctx, target) }

// HTTPProber is the default Prober: an HTTP GET of the target URL, healthy
// on any 2xx or 3xx status (redirects are not followed), as Traefik judges.
// The gateway calls an *HTTPProber (the default, or one set with
// WithProber) only for endpoints with a health_check_path; the others are
// judged by their circuit breaker alone. Called with a target without a URL
// (by a Prober that wraps it), it has nothing to GET and returns nil.
type HTTPProber struct {
	// Client sends the probes. Nil uses a client on the Orchestrator's
	// transport (when used through New) or http.DefaultTransport.
	Client *http.Client
}

// Probe sends the GET and drains a little of the body so that the connection
// can be reused.
func (p *HTTPProber) Probe(ctx context.Context, target ProbeTarget) error {
	if target.URL == "" {
		return nil
	}
	client := p.Client
	switch {
	case target.Transport != nil:
		// The target's own TLS settings win over the client's transport.
		c := http.Client{CheckRedirect: noRedirects}
		if p.Client != nil {
			c = *p.Client
		}
		c.Transport = target.Transport
		client = &c
	case client == nil:
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
// one (buildRoute gives every active route a state of its own, so a route
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
	// Active is true when the endpoint is probed: its health checks are on,
	// it is not disabled, and it has a health_check_path or the gateway has
	// a custom Prober (see Prober).
	Active bool `json:"active"`
	// URL is the probed URL; empty for an endpoint without a
	// health_check_path.
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
	// Read the route writers set before they schedule a probe, not the
	// published table: writers schedule a probe (Add(id, 0)) before they
	// publish, and a probe that ran in between would find no route (and wait
	// a minute) or the old one (and wait its old interval). Not under o.mu
	// either: a long reload holds it, and must not stall every probe.
	rt := o.probeRoute(id)
	if rt == nil || !rt.healthActive {
		// Removed, or no longer checked: the scheduler entry is being
		// replaced; come back rarely in case it is not.
		return time.Minute
	}
	o.probeTargets(ctx, rt)
	next := jitter(rt.health.Interval.Std())
	at := time.Now().Add(next).UnixNano()
	for _, u := range rt.targets {
		u.health.nextProbe.Store(at)
	}
	return next
}

// probeTargets probes each of rt's targets once, several at once.
func (o *Orchestrator) probeTargets(ctx context.Context, rt *route) {
	if len(rt.targets) == 1 {
		o.runProbe(ctx, rt, rt.targets[0])
		return
	}
	var wg sync.WaitGroup
	for _, u := range rt.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.runProbe(ctx, rt, u)
		}()
	}
	wg.Wait()
}

// setProbeRoute records the route probes of id check (nil: none). Called
// under o.mu with every change of o.entries.
func (o *Orchestrator) setProbeRoute(id string, rt *route) {
	o.probeMu.Lock()
	if rt == nil {
		delete(o.probeRoutes, id)
	} else {
		o.probeRoutes[id] = rt
	}
	o.probeMu.Unlock()
}

func (o *Orchestrator) probeRoute(id string) *route {
	o.probeMu.Lock()
	defer o.probeMu.Unlock()
	return o.probeRoutes[id]
}

// runProbe probes one target of rt once, records the result and logs a
// transition.
func (o *Orchestrator) runProbe(ctx context.Context, rt *route, up *upstream) HealthStatus {
	pctx, cancel := context.WithTimeout(ctx, rt.health.Timeout.Std())
	defer cancel()
	host, port := probeHostPort(up.scheme(), up.host)
	start := time.Now()
	err := o.prober.Probe(pctx, ProbeTarget{EndpointID: rt.ep.ID, URL: rt.probeURL(up), Host: host, Port: port,
		Endpoint: rt.ep, TargetID: up.id, Transport: up.transport()})
	took := time.Since(start)
	if ctx.Err() != nil {
		// Shutting down: a cancelled probe says nothing about the endpoint.
		return up.health.current()
	}
	from, to := up.health.record(err, took, start, *rt.health)
	if err == nil {
		up.pending.Store(false)
	}
	if m := rt.metrics; m != nil {
		m.probeDuration.Update(took.Seconds())
		if from != to {
			m.healthFlips.Inc()
		}
	}
	if from != to {
		level := slog.LevelInfo
		attrs := []any{slog.String("endpoint_id", rt.ep.ID)}
		if len(rt.ep.Targets) > 0 {
			attrs = append(attrs, slog.String("target", up.id))
		}
		attrs = append(attrs, slog.String("from", string(from)), slog.String("to", string(to)))
		if to == StatusUnhealthy {
			level = slog.LevelWarn
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		o.healthLog.Log(ctx, level, "endpoint health changed", attrs...)
	}
	return to
}

// CheckHealth probes the endpoint now, outside its schedule, and returns its
// view afterwards. An endpoint without an active check (checks off,
// disabled, or no health_check_path with the default prober) is not
// probed: its view says Health.Active false. Unknown ids get ErrNotFound.
// Safe for concurrent use.
func (o *Orchestrator) CheckHealth(ctx context.Context, id string) (RegisteredEndpoint, error) {
	rt := o.table.Load().route(id)
	if rt == nil {
		return RegisteredEndpoint{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if rt.healthActive {
		o.probeTargets(ctx, rt)
	}
	return o.view(rt), nil
}

// probesEveryEndpoint reports whether o's prober is called for endpoints
// without a health_check_path: any prober but an *HTTPProber, which has
// nothing to GET without one.
func (o *Orchestrator) probesEveryEndpoint() bool {
	_, isHTTP := o.prober.(*HTTPProber)
	return !isHTTP
}

// probeHostPort splits an upstream URL's host ("host", "host:port",
// "[::1]:port") into the host name and the port, the scheme's default port
// when it names none.
func probeHostPort(scheme, hostport string) (host, port string) {
	u := url.URL{Host: hostport}
	host, port = u.Hostname(), u.Port()
	if port == "" {
		port = "80"
		if scheme == "https" {
			port = "443"
		}
	}
	return host, port
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
