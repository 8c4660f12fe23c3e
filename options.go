package orchestrator

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/failsafe-go/failsafe-go"
	"github.com/orchestrator-go/orchestrator/internal/netguard"
)

// Option configures New. An Option given a value it cannot take makes New
// fail with an error that matches ErrInvalid (errors.Is) and names the
// option and the value, so a program can tell a configuration mistake from
// a registry that cannot be reached.
type Option func(*options) error

type options struct {
	prefix           string
	registry         Registry
	endpoints        []Endpoint
	transport        http.RoundTripper
	prober           Prober
	logger           *slog.Logger
	loggerKey        string
	breaker          CircuitBreakerConfig
	rateLimit        RateLimits
	adaptive         *AdaptiveConcurrencyConfig
	health           HealthCheckConfig
	trustedProxies   []netip.Prefix
	probeWorkers     int
	maxBodyBytes     int64
	maxHeaderCount   int
	adminToken       string
	noMetrics        bool
	metricsLabels    map[string]string
	accessLog        bool
	startTraces      bool
	allowedUpstreams []string
	// extraPolicies are composed around every endpoint's own; tests set
	// them (export_test.go) for the retries and hedges still to come.
	extraPolicies []failsafe.Policy[*http.Response]
}

// WithPrefix sets the path prefix the gateway serves under. Default
// "/orchestrator". It must start with "/"; a trailing "/" is ignored. Each
// segment must be non-empty, not "." or "..", and written only with
// characters a URL path segment carries unescaped (letters, digits and
// -._~$&+:=@), because the prefix is compared byte for byte with the
// request's escaped path: "/a b" or "/caf%C3%A9" could match one spelling of
// a request and miss another. The empty string is refused, since it is more
// often a missing setting than a choice.
//
// WithPrefix("/") serves at the root: routes are /{name}/{version}/..., and
// Prefix returns "" so that Prefix()+"/"+name stays a clean path. The
// gateway then claims every path (any other is its 404), so whatever else
// the program serves must be routed before it: Middleware would pass next
// nothing, and orchestratord's admin API is then reachable only on its own
// listener (admin.listen).
func WithPrefix(prefix string) Option {
	return func(o *options) error {
		p, reason := cleanPrefix(prefix)
		if reason != "" {
			return invalidOption("WithPrefix", strconv.Quote(prefix), reason)
		}
		o.prefix = p
		return nil
	}
}

// cleanPrefix returns prefix as the gateway compares it with escaped paths
// ("" for the root, otherwise "/a/b" without a trailing "/"), or why it
// cannot be one.
func cleanPrefix(prefix string) (string, string) {
	switch {
	case prefix == "":
		return "", `the prefix must not be empty; use "/" to serve at the root`
	case prefix[0] != '/':
		return "", "the prefix must be an absolute path such as /orchestrator"
	case prefix == "/":
		return "", ""
	}
	p := strings.TrimSuffix(prefix, "/")
	for seg := range strings.SplitSeq(p[1:], "/") {
		switch {
		case seg == "":
			return "", "the prefix must not contain an empty segment (//)"
		case seg == "." || seg == "..":
			return "", "the prefix must not contain . or .. segments"
		case url.PathEscape(seg) != seg:
			return "", fmt.Sprintf("segment %q has characters a URL path must escape; use letters, digits and -._~$&+:=@", seg)
		}
	}
	return p, ""
}

// WithEndpoints registers endpoints owned by configuration (source
// "config") when New runs. All are validated together; any problem fails New
// with a *ValidationError listing every one.
func WithEndpoints(endpoints ...Endpoint) Option {
	return func(o *options) error {
		o.endpoints = append(o.endpoints, endpoints...)
		return nil
	}
}

// WithRegistry replaces the in-memory registry, for example with one backed
// by etcd or a database shared by several gateways. Endpoints it already
// holds are loaded by New, and its Watch events are followed until Close.
func WithRegistry(r Registry) Option {
	return func(o *options) error {
		if r == nil {
			return invalidOption("WithRegistry", "nil", "a Registry is required; leave the option out for the in-memory one")
		}
		o.registry = r
		return nil
	}
}

// WithTransport sets the RoundTripper that carries requests upstream. The
// default is a tuned *http.Transport (see NewTransport). A custom transport
// should not decompress responses or follow proxies, or the gateway stops
// being transparent.
func WithTransport(rt http.RoundTripper) Option {
	return func(o *options) error {
		if rt == nil {
			return invalidOption("WithTransport", "nil", "a RoundTripper is required; leave the option out for the default transport")
		}
		o.transport = rt
		return nil
	}
}

// WithProber replaces the default health probe, an *HTTPProber that GETs an
// endpoint's health_check_path and leaves endpoints without one to their
// circuit breaker. Any other Prober is called for every endpoint whose health
// checks are on (health_check.enabled not false, endpoint not disabled), with
// or without a health_check_path: right after registration or a change of its
// upstream or health_check config, then every health_check.interval, and on
// CheckHealth. Its ProbeTarget carries the upstream's Host and Port (and the
// URL when the endpoint has a health_check_path). A failing probe makes the
// endpoint unhealthy after unhealthy_threshold failures, and its requests then
// fail fast with 503. A Prober makes its own connections: WithAllowedUpstreams
// does not guard them. An *HTTPProber passed here behaves as the default.
func WithProber(p Prober) Option {
	return func(o *options) error {
		if p == nil {
			return invalidOption("WithProber", "nil", "a Prober is required; leave the option out for the HTTP GET probe")
		}
		o.prober = p
		return nil
	}
}

// WithLogger sets the structured logger. Default: slog.Default(). Each
// component logs with a "logger" attribute naming it: orchestrator.router,
// orchestrator.health, orchestrator.breaker, orchestrator.access.
//
// A slog.Logger does not tell anyone which attributes it already carries,
// and slog's JSON and text handlers print a key given twice twice
// (golang/go#59365). So if l already has a "logger" attribute of its own
// (slog.New(h).With("logger", "myapp")), the gateway cannot see it: name
// another key for the component with WithLoggerKey ("component"), or
// WithLoggerKey("") to add none, and each line keeps exactly one "logger".
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return invalidOption("WithLogger", "nil", "a logger is required; leave the option out for slog.Default()")
		}
		o.logger = l
		return nil
	}
}

// WithLoggerKey sets the attribute key under which each log line names the
// gateway component that wrote it (orchestrator.router, orchestrator.health,
// orchestrator.breaker, orchestrator.access). Default "logger". The empty
// key adds no such attribute. Use it when the logger given to WithLogger
// already carries an attribute with the default key, which the gateway
// cannot detect (see WithLogger). Keys slog writes itself (time, level, msg,
// source) are refused: the line would carry them twice.
func WithLoggerKey(key string) Option {
	return func(o *options) error {
		switch key {
		case slog.TimeKey, slog.LevelKey, slog.MessageKey, slog.SourceKey:
			return invalidOption("WithLoggerKey", strconv.Quote(key), "slog writes this key on every line itself; pick another, such as \"component\"")
		}
		o.loggerKey = key
		return nil
	}
}

// WithCircuitBreaker sets the global circuit-breaker defaults that every
// endpoint's circuit_breaker section is merged over. Zero fields keep the
// package defaults (5 failures, 60s, 1 trial, every 5xx is a failure).
func WithCircuitBreaker(c CircuitBreakerConfig) Option {
	return func(o *options) error {
		var errs ValidationError
		c.validate("circuit_breaker", &errs)
		if err := errs.orNil(); err != nil {
			return invalidSection("WithCircuitBreaker", string(mustJSON(c)), err)
		}
		o.breaker = c
		return nil
	}
}

// WithRateLimit sets the global rate limits: each endpoint without a
// rate_limit of its own gets them, with buckets of its own (a limit for
// the whole endpoint is per endpoint, not shared by all). An endpoint's
// own rate_limit replaces them whole.
func WithRateLimit(limits ...RateLimitConfig) Option {
	return func(o *options) error {
		var errs ValidationError
		RateLimits(limits).validate("rate_limit", &errs)
		if err := errs.orNil(); err != nil {
			return invalidSection("WithRateLimit", string(mustJSON(RateLimits(limits))), err)
		}
		o.rateLimit = limits
		return nil
	}
}

// WithAdaptiveConcurrency turns adaptive concurrency limiting on for every
// endpoint, each with a limiter of its own; an endpoint's
// adaptive_concurrency section is merged over c field by field (and may
// disable it). Zero fields keep the defaults (1, 1000, 20).
func WithAdaptiveConcurrency(c AdaptiveConcurrencyConfig) Option {
	return func(o *options) error {
		var errs ValidationError
		c.validate("adaptive_concurrency", &errs)
		if err := errs.orNil(); err != nil {
			return invalidSection("WithAdaptiveConcurrency", string(mustJSON(c)), err)
		}
		o.adaptive = &c
		return nil
	}
}

// WithHealthCheck sets the global health-check defaults that every
// endpoint's health_check section is merged over. Zero fields keep the
// package defaults (enabled, 30s interval, 10s timeout, 3 failures to go
// unhealthy, 2 successes to recover).
func WithHealthCheck(c HealthCheckConfig) Option {
	return func(o *options) error {
		var errs ValidationError
		c.validate("health_check", &errs)
		if err := errs.orNil(); err != nil {
			return invalidSection("WithHealthCheck", string(mustJSON(c)), err)
		}
		o.health = c
		return nil
	}
}

// WithTrustedProxies lists the networks whose X-Forwarded-For,
// X-Forwarded-Host, X-Forwarded-Proto and Forwarded headers are kept (and
// appended to). From any other client they are replaced. Default: none, so
// a client can never forge its address.
func WithTrustedProxies(prefixes ...netip.Prefix) Option {
	return func(o *options) error {
		for i, p := range prefixes {
			if !p.IsValid() {
				// The zero Prefix, or one whose bit count does not fit its
				// address (netip.PrefixFrom(ipv4, 33)).
				return invalidOption("WithTrustedProxies", p.String(), fmt.Sprintf("invalid trusted proxy prefix: prefixes[%d] is not a valid netip.Prefix; want one such as netip.MustParsePrefix(\"10.0.0.0/8\")", i))
			}
			o.trustedProxies = append(o.trustedProxies, p.Masked())
		}
		return nil
	}
}

// WithMaxBodyBytes caps request bodies: a larger declared Content-Length
// gets 413 at once, and a body that grows past the cap while streaming is
// cut and answered 413 if no response has started. Default 0: no limit.
func WithMaxBodyBytes(n int64) Option {
	return func(o *options) error {
		if n < 0 {
			return invalidOption("WithMaxBodyBytes", strconv.FormatInt(n, 10), "max body bytes must not be negative; 0 means no limit")
		}
		o.maxBodyBytes = n
		return nil
	}
}

// WithMaxHeaderCount caps the header field lines of a request: one with
// more gets 431 and its connection is closed, as Envoy's max_headers_count
// does. Go's server limits header bytes only (MaxHeaderBytes), so ten
// thousand one-byte headers would otherwise be forwarded. Default
// DefaultMaxHeaderCount (100); 0 turns the limit off.
func WithMaxHeaderCount(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return invalidOption("WithMaxHeaderCount", strconv.Itoa(n), "max header count must not be negative; 0 means no limit")
		}
		o.maxHeaderCount = n
		return nil
	}
}

// WithAdminToken names the admin API's bearer token so that the gateway can
// keep it from ever reaching a backend: a proxied request whose
// Authorization carries exactly that token has the header removed before
// forwarding (the token is a credential for the gateway's own admin hop, like
// Proxy-Authorization). Every other Authorization passes through untouched.
func WithAdminToken(token string) Option {
	return func(o *options) error {
		o.adminToken = token
		return nil
	}
}

// WithMetrics turns the Prometheus metrics on or off. Default on: they cost
// no allocation per request (see BENCHMARKS.md).
func WithMetrics(enabled bool) Option {
	return func(o *options) error {
		o.noMetrics = !enabled
		return nil
	}
}

// WithAccessLog writes one line per request handled under the prefix to
// the logger (logger "orchestrator.access", level info, warn for 5xx):
// request_id, endpoint_id, method, path, status_code, response_time in
// seconds, and trace_id when the request carries W3C trace context.
// Headers and query strings are never logged. Default off for the library;
// orchestratord turns it on (logging.access_log).
func WithAccessLog(enabled bool) Option {
	return func(o *options) error {
		o.accessLog = enabled
		return nil
	}
}

// WithTraceStart makes the gateway start a W3C trace for a request that
// carries no valid traceparent: it sends the backend a new sampled
// traceparent, so backend logs and the gateway's access log share a trace
// id. A request's own trace context always passes through untouched.
// Default off.
func WithTraceStart(enabled bool) Option {
	return func(o *options) error {
		o.startTraces = enabled
		return nil
	}
}

// WithAllowedUpstreams lists CIDRs, IP addresses or host names that
// endpoints may point at even where the upstream guard would refuse them.
// The guard refuses link-local and cloud-metadata addresses (169.254.0.0/16,
// fe80::/10, fd00:ec2::254, 100.100.100.200), however they are written (an
// IPv6 zone, or an IPv4 address carried in IPv4-mapped, IPv4-compatible,
// NAT64 or 6to4 IPv6), and the gateway's own listeners (SetListenAddrs): at registration through Register or Update (after DNS
// resolution) and at every dial of the default transport, health probes
// included. A custom WithTransport is not guarded.
func WithAllowedUpstreams(entries ...string) Option {
	return func(o *options) error {
		for _, e := range entries {
			// Checked here, one by one, so that the error names the entry.
			if _, err := netguard.New([]string{e}); err != nil {
				return invalidOption("WithAllowedUpstreams", strconv.Quote(e), err.Error()+"; want a CIDR, an IP address or a host name")
			}
		}
		o.allowedUpstreams = append(o.allowedUpstreams, entries...)
		return nil
	}
}

// WithHealthCheckConcurrency bounds how many probes run at once. Default 32:
// thousands of endpoints are checked by at most that many goroutines,
// started as probes need them (none while nothing is probed) and stopped by
// Close.
func WithHealthCheckConcurrency(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return invalidOption("WithHealthCheckConcurrency", strconv.Itoa(n), "health check concurrency must be > 0: at least one probe must be able to run")
		}
		o.probeWorkers = n
		return nil
	}
}

func bearer(token string) string {
	if token == "" {
		return ""
	}
	return "Bearer " + token
}
