package orchestrator

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"

	"github.com/orchestrator-go/orchestrator/internal/urlpath"
)

// Option configures New.
type Option func(*options) error

type options struct {
	prefix           string
	registry         Registry
	endpoints        []Endpoint
	transport        http.RoundTripper
	prober           Prober
	logger           *slog.Logger
	breaker          CircuitBreakerConfig
	health           HealthCheckConfig
	trustedProxies   []netip.Prefix
	probeWorkers     int
	maxBodyBytes     int64
	maxHeaderCount   int
	adminToken       string
	noMetrics        bool
	accessLog        bool
	startTraces      bool
	allowedUpstreams []string
}

// WithPrefix sets the path prefix the gateway serves under. Default
// "/orchestrator". It must start with "/"; a trailing "/" is ignored.
func WithPrefix(prefix string) Option {
	return func(o *options) error {
		prefix = strings.TrimSuffix(prefix, "/")
		if prefix != "" && (!strings.HasPrefix(prefix, "/") || urlpath.HasDotSegment(prefix) || strings.ContainsAny(prefix, "?#")) {
			return fmt.Errorf("orchestrator: prefix %q must be an absolute path such as /orchestrator", prefix)
		}
		o.prefix = prefix
		return nil
	}
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
			return errors.New("orchestrator: WithRegistry(nil)")
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
			return errors.New("orchestrator: WithTransport(nil)")
		}
		o.transport = rt
		return nil
	}
}

// WithProber replaces the default HTTP GET health probe.
func WithProber(p Prober) Option {
	return func(o *options) error {
		if p == nil {
			return errors.New("orchestrator: WithProber(nil)")
		}
		o.prober = p
		return nil
	}
}

// WithLogger sets the structured logger. Default: slog.Default(). Each
// component logs with a "logger" attribute: orchestrator.router,
// orchestrator.health, orchestrator.breaker.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("orchestrator: WithLogger(nil)")
		}
		o.logger = l
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
			return err
		}
		o.breaker = c
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
			return err
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
		for _, p := range prefixes {
			if !p.IsValid() {
				return fmt.Errorf("orchestrator: invalid trusted proxy prefix %v", p)
			}
			o.trustedProxies = append(o.trustedProxies, p.Masked())
		}
		return nil
	}
}

// WithConfig applies a configuration file's gateway settings: the prefix,
// trusted proxies, request body limit, breaker and health defaults, and its
// endpoints (source "config"). Options after it override it.
func WithConfig(cfg *Config) Option {
	return func(o *options) error {
		if cfg == nil {
			return errors.New("orchestrator: WithConfig(nil)")
		}
		if err := cfg.Validate(); err != nil {
			return err
		}
		if cfg.Server.Prefix != "" {
			if err := WithPrefix(cfg.Server.Prefix)(o); err != nil {
				return err
			}
		}
		for _, s := range cfg.Server.TrustedProxies {
			p, _ := ParseTrustedProxy(s) // validated above
			o.trustedProxies = append(o.trustedProxies, p)
		}
		o.maxBodyBytes = cfg.Server.MaxBodyBytes
		if cfg.Server.MaxHeaderCount > 0 {
			o.maxHeaderCount = cfg.Server.MaxHeaderCount
		}
		o.allowedUpstreams = append(o.allowedUpstreams, cfg.Registry.AllowedUpstreams...)
		o.breaker = cfg.CircuitBreaker
		o.health = cfg.HealthCheck
		o.endpoints = append(o.endpoints, cfg.Endpoints...)
		return nil
	}
}

// WithMaxBodyBytes caps request bodies: a larger declared Content-Length
// gets 413 at once, and a body that grows past the cap while streaming is
// cut and answered 413 if no response has started. Default 0: no limit.
func WithMaxBodyBytes(n int64) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("orchestrator: max body bytes %d must not be negative", n)
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
			return fmt.Errorf("orchestrator: max header count %d must not be negative", n)
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
		o.allowedUpstreams = append(o.allowedUpstreams, entries...)
		return nil
	}
}

// WithHealthCheckConcurrency bounds how many probes run at once. Default 32:
// thousands of endpoints are checked by that many goroutines.
func WithHealthCheckConcurrency(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("orchestrator: health check concurrency %d must be > 0", n)
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
