package config

import (
	"encoding/json"
	"time"

	"github.com/orchestrator-go/orchestrator"
)

// Config is the whole configuration file of orchestratord. YAML and JSON
// use the same snake_case names. Every section is optional; zero values
// take the documented defaults.
type Config struct {
	// Server configures the main listener.
	Server Server `json:"server" yaml:"server"`
	// Admin configures the admin API.
	Admin Admin `json:"admin" yaml:"admin"`
	// Registry configures where API-registered endpoints persist.
	Registry Registry `json:"registry" yaml:"registry"`
	// Logging configures the logs.
	Logging Logging `json:"logging" yaml:"logging"`
	// Metrics configures the Prometheus exposition at /metrics.
	Metrics Metrics `json:"metrics" yaml:"metrics"`
	// CORS makes the gateway answer CORS for proxied routes
	// (orchestrator.CORS).
	CORS orchestrator.CORSConfig `json:"cors" yaml:"cors"`
	// CircuitBreaker holds the global breaker defaults.
	CircuitBreaker orchestrator.CircuitBreakerConfig `json:"circuit_breaker" yaml:"circuit_breaker"`
	// HealthCheck holds the global health-check defaults.
	HealthCheck orchestrator.HealthCheckConfig `json:"health_check" yaml:"health_check"`
	// RateLimit holds the global rate limits: each endpoint without its
	// own gets them, with buckets of its own.
	RateLimit orchestrator.RateLimits `json:"rate_limit,omitempty" yaml:"rate_limit,omitempty"`
	// AdaptiveConcurrency turns adaptive concurrency limiting on for every
	// endpoint, each with a limiter of its own.
	AdaptiveConcurrency *orchestrator.AdaptiveConcurrencyConfig `json:"adaptive_concurrency,omitempty" yaml:"adaptive_concurrency,omitempty"`
	// Endpoints are owned by the file (source "config"). Empty ones are
	// left out when encoded: "endpoints: null" reads as a file cut short.
	Endpoints []orchestrator.Endpoint `json:"endpoints,omitempty" yaml:"endpoints,omitempty"`
}

// Server configures the main listener. Changes take effect at the next
// restart; a reload applies endpoints and the breaker and health defaults.
type Server struct {
	// Host to listen on. Default 0.0.0.0.
	Host string `json:"host,omitempty" yaml:"host,omitempty"`
	// Port to listen on. Default 8000.
	Port int `json:"port,omitempty" yaml:"port,omitempty"`
	// Prefix the gateway serves under. Default /orchestrator.
	Prefix string `json:"prefix,omitempty" yaml:"prefix,omitempty"`
	// ShutdownTimeout bounds how long in-flight requests may finish after
	// SIGINT/SIGTERM. Default 30s.
	ShutdownTimeout orchestrator.Duration `json:"shutdown_timeout,omitempty" yaml:"shutdown_timeout,omitempty"`
	// ReadHeaderTimeout cuts clients that send headers too slowly
	// (slowloris). Default 10s.
	ReadHeaderTimeout orchestrator.Duration `json:"read_header_timeout,omitempty" yaml:"read_header_timeout,omitempty"`
	// ReadTimeout bounds reading a whole request, body included. Default
	// none: uploads stream for as long as they flow.
	ReadTimeout orchestrator.Duration `json:"read_timeout,omitempty" yaml:"read_timeout,omitempty"`
	// WriteTimeout bounds writing a response. Default none, so that
	// server-sent events and long downloads are not cut.
	WriteTimeout orchestrator.Duration `json:"write_timeout,omitempty" yaml:"write_timeout,omitempty"`
	// IdleTimeout closes idle keep-alive connections. Default 120s.
	IdleTimeout orchestrator.Duration `json:"idle_timeout,omitempty" yaml:"idle_timeout,omitempty"`
	// MaxHeaderBytes caps request headers (431 past it). Default 1 MiB.
	MaxHeaderBytes int `json:"max_header_bytes,omitempty" yaml:"max_header_bytes,omitempty"`
	// MaxBodyBytes caps request bodies (413 past it). Default: no limit.
	MaxBodyBytes int64 `json:"max_body_bytes,omitempty" yaml:"max_body_bytes,omitempty"`
	// MaxHeaderCount caps the number of request header field lines (431
	// past it), as Envoy's max_headers_count does. Default 100.
	MaxHeaderCount int `json:"max_header_count,omitempty" yaml:"max_header_count,omitempty"`
	// MaxConfigBytes caps the size of the config file and of a
	// POST /config/validate body. Default 8 MiB.
	MaxConfigBytes int64 `json:"max_config_bytes,omitempty" yaml:"max_config_bytes,omitempty"`
	// DrainDelay is how long the server keeps serving after SIGINT or
	// SIGTERM while /health answers 503, so that load balancers and
	// Kubernetes stop sending before the listeners close. Default 0.
	DrainDelay orchestrator.Duration `json:"drain_delay,omitempty" yaml:"drain_delay,omitempty"`
	// TLS serves HTTPS (with HTTP/2) when both files are set.
	TLS TLS `json:"tls" yaml:"tls"`
	// TrustedProxies lists the CIDRs (or single addresses) whose
	// X-Forwarded-* headers are kept and appended to. Default none.
	TrustedProxies []string `json:"trusted_proxies,omitempty" yaml:"trusted_proxies,omitempty"`
}

// TLS names a certificate and its key, PEM encoded.
type TLS struct {
	// CertFile is the certificate chain (PEM).
	CertFile string `json:"cert_file,omitempty" yaml:"cert_file,omitempty"`
	// KeyFile is the private key (PEM).
	KeyFile string `json:"key_file,omitempty" yaml:"key_file,omitempty"`
}

// Admin configures the admin API.
type Admin struct {
	// Listen is a separate address for the admin API, such as
	// "127.0.0.1:9000". Default: the admin routes are served at the root of
	// the main listener.
	Listen string `json:"listen,omitempty" yaml:"listen,omitempty"`
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// every admin route but the open ones, which hold no data: /health,
	// /health/live, /metrics, /openapi.json, /docs and /redoc. The
	// environment variable ORCHESTRATOR_ADMIN_TOKEN overrides it. Without a
	// token the admin API answers loopback clients only. It is never shown
	// by the API.
	Token string `json:"token,omitempty" yaml:"token,omitempty"`
	// AllowedOrigins lists the browser origins allowed to call the admin
	// API. Default none: a request with an Origin header gets 403.
	AllowedOrigins []string `json:"allowed_origins,omitempty" yaml:"allowed_origins,omitempty"`
	// Pprof serves the Go runtime's profiles (heap, goroutines, CPU) under
	// /debug/pprof/ on the admin API, behind the same token or loopback
	// guard as the other admin routes. Default false: /debug/pprof/ answers
	// 404.
	Pprof bool `json:"pprof,omitempty" yaml:"pprof,omitempty"`
}

// Registry configures where API-registered endpoints are kept.
type Registry struct {
	// StateFile, when set, persists endpoints registered through the admin
	// API (written atomically) and restores them at start.
	StateFile string `json:"state_file,omitempty" yaml:"state_file,omitempty"`
	// AllowedUpstreams lists CIDRs, IP addresses or host names that
	// endpoints may point at although the upstream guard refuses them by
	// default: link-local and cloud-metadata addresses (169.254.0.0/16,
	// fe80::/10, fd00:ec2::254, 100.100.100.200, however they are written)
	// and the gateway's own listeners. An IPv6 address that carries an IPv4
	// one (NAT64, 6to4) is allowed when either is listed.
	AllowedUpstreams []string `json:"allowed_upstreams,omitempty" yaml:"allowed_upstreams,omitempty"`
}

// Logging configures the server's logs.
type Logging struct {
	// Level is debug, info, warn or error. Default info.
	Level string `json:"level,omitempty" yaml:"level,omitempty"`
	// Format is json or text. Default json.
	Format string `json:"format,omitempty" yaml:"format,omitempty"`
	// AccessLog writes one line per proxied request. Default true.
	AccessLog *bool `json:"access_log,omitempty" yaml:"access_log,omitempty"`
	// StartTraces makes the gateway start a W3C trace (a new traceparent
	// sent upstream and logged as trace_id) for requests that carry none.
	// Default false: trace context passes through untouched.
	StartTraces bool `json:"start_traces,omitempty" yaml:"start_traces,omitempty"`
}

// Metrics configures the Prometheus exposition. Changes take effect at the
// next restart.
type Metrics struct {
	// Labels are constant labels added to every series of the gateway
	// (orchestrator.WithMetricsLabels), such as {gateway: eu-1}, so that
	// gateways scraped by one job give distinct series. Names match
	// [a-zA-Z_][a-zA-Z0-9_]*, do not start with __ and are not one of the
	// gateway's own labels (endpoint, method, status, kind, source, result,
	// target, le, quantile, vmrange); values are non-empty UTF-8. The Go
	// runtime and process series do not get them.
	Labels map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
}

// AccessLogEnabled reports whether access lines are written (default true).
func (l Logging) AccessLogEnabled() bool { return l.AccessLog == nil || *l.AccessLog }

// Server defaults, per docs/DESIGN.md. The prefix defaults to
// orchestrator.DefaultPrefix.
const (
	DefaultHost              = "0.0.0.0"
	DefaultPort              = 8000
	DefaultShutdownTimeout   = 30 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 1 << 20
	DefaultMaxHeaderCount    = orchestrator.DefaultMaxHeaderCount
	DefaultMaxConfigBytes    = 8 << 20
)

// WithDefaults returns c with every unset server and logging field filled
// in. Breaker and health defaults are applied per endpoint by the gateway.
func (c Config) WithDefaults() Config {
	s := &c.Server
	if s.Host == "" {
		s.Host = DefaultHost
	}
	if s.Port == 0 {
		s.Port = DefaultPort
	}
	if s.Prefix == "" {
		s.Prefix = orchestrator.DefaultPrefix
	}
	if s.ShutdownTimeout == 0 {
		s.ShutdownTimeout = orchestrator.Duration(DefaultShutdownTimeout)
	}
	if s.ReadHeaderTimeout == 0 {
		s.ReadHeaderTimeout = orchestrator.Duration(DefaultReadHeaderTimeout)
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = orchestrator.Duration(DefaultIdleTimeout)
	}
	if s.MaxHeaderBytes == 0 {
		s.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if s.MaxHeaderCount == 0 {
		s.MaxHeaderCount = DefaultMaxHeaderCount
	}
	if s.MaxConfigBytes == 0 {
		s.MaxConfigBytes = DefaultMaxConfigBytes
	}
	if c.Logging.Level == "" {
		c.Logging.Level = "info"
	}
	if c.Logging.Format == "" {
		c.Logging.Format = "json"
	}
	return c
}

// Redacted returns a copy with secrets replaced, fit to show or log.
func (c Config) Redacted() Config {
	if c.Admin.Token != "" {
		c.Admin.Token = "[redacted]"
	}
	return c
}

// String renders the redacted configuration as JSON.
func (c Config) String() string {
	b, _ := json.Marshal(c.Redacted())
	return string(b)
}
