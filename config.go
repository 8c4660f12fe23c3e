package orchestrator

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orchestrator-go/orchestrator/internal/netguard"
	"github.com/orchestrator-go/orchestrator/internal/yamlconf"
)

// Config is the whole configuration file of the reference server. YAML and
// JSON use the same snake_case names. Every section is optional; zero values
// take the documented defaults.
type Config struct {
	// Server configures the main listener.
	Server ServerConfig `json:"server" yaml:"server"`
	// Admin configures the admin API.
	Admin AdminConfig `json:"admin" yaml:"admin"`
	// Registry configures where API-registered endpoints persist.
	Registry RegistryConfig `json:"registry" yaml:"registry"`
	// Logging configures the logs.
	Logging LoggingConfig `json:"logging" yaml:"logging"`
	// CORS makes the gateway answer CORS for proxied routes.
	CORS CORSConfig `json:"cors" yaml:"cors"`
	// CircuitBreaker holds the global breaker defaults.
	CircuitBreaker CircuitBreakerConfig `json:"circuit_breaker" yaml:"circuit_breaker"`
	// HealthCheck holds the global health-check defaults.
	HealthCheck HealthCheckConfig `json:"health_check" yaml:"health_check"`
	// Endpoints are owned by the file (source "config"). Empty ones are
	// left out when encoded: "endpoints: null" reads as a file cut short.
	Endpoints []Endpoint `json:"endpoints,omitempty" yaml:"endpoints,omitempty"`
}

// ServerConfig configures the main listener. Changes take effect at the next
// restart; a reload applies endpoints and the breaker and health defaults.
type ServerConfig struct {
	// Host to listen on. Default 0.0.0.0.
	Host string `json:"host,omitempty" yaml:"host,omitempty"`
	// Port to listen on. Default 8000.
	Port int `json:"port,omitempty" yaml:"port,omitempty"`
	// Prefix the gateway serves under. Default /orchestrator.
	Prefix string `json:"prefix,omitempty" yaml:"prefix,omitempty"`
	// ShutdownTimeout bounds how long in-flight requests may finish after
	// SIGINT/SIGTERM. Default 30s.
	ShutdownTimeout Duration `json:"shutdown_timeout,omitempty" yaml:"shutdown_timeout,omitempty"`
	// ReadHeaderTimeout cuts clients that send headers too slowly
	// (slowloris). Default 10s.
	ReadHeaderTimeout Duration `json:"read_header_timeout,omitempty" yaml:"read_header_timeout,omitempty"`
	// ReadTimeout bounds reading a whole request, body included. Default
	// none: uploads stream for as long as they flow.
	ReadTimeout Duration `json:"read_timeout,omitempty" yaml:"read_timeout,omitempty"`
	// WriteTimeout bounds writing a response. Default none, so that
	// server-sent events and long downloads are not cut.
	WriteTimeout Duration `json:"write_timeout,omitempty" yaml:"write_timeout,omitempty"`
	// IdleTimeout closes idle keep-alive connections. Default 120s.
	IdleTimeout Duration `json:"idle_timeout,omitempty" yaml:"idle_timeout,omitempty"`
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
	DrainDelay Duration `json:"drain_delay,omitempty" yaml:"drain_delay,omitempty"`
	// TLS serves HTTPS (with HTTP/2) when both files are set.
	TLS TLSConfig `json:"tls" yaml:"tls"`
	// TrustedProxies lists the CIDRs (or single addresses) whose
	// X-Forwarded-* headers are kept and appended to. Default none.
	TrustedProxies []string `json:"trusted_proxies,omitempty" yaml:"trusted_proxies,omitempty"`
}

// TLSConfig names a certificate and its key, PEM encoded.
type TLSConfig struct {
	// CertFile is the certificate chain (PEM).
	CertFile string `json:"cert_file,omitempty" yaml:"cert_file,omitempty"`
	// KeyFile is the private key (PEM).
	KeyFile string `json:"key_file,omitempty" yaml:"key_file,omitempty"`
}

// AdminConfig configures the admin API.
type AdminConfig struct {
	// Listen is a separate address for the admin API, such as
	// "127.0.0.1:9000". Default: the admin routes are served at the root of
	// the main listener.
	Listen string `json:"listen,omitempty" yaml:"listen,omitempty"`
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// every admin route but /health and /metrics. The environment variable
	// ORCHESTRATOR_ADMIN_TOKEN overrides it. Without a token the admin API
	// answers loopback clients only. It is never shown by the API.
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

// RegistryConfig configures where API-registered endpoints are kept.
type RegistryConfig struct {
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

// LoggingConfig configures the server's logs.
type LoggingConfig struct {
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

// Server defaults, per docs/DESIGN.md.
const (
	DefaultHost              = "0.0.0.0"
	DefaultPort              = 8000
	DefaultShutdownTimeout   = 30 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 1 << 20
	DefaultMaxConfigBytes    = 8 << 20
)

// WithDefaults returns c with every unset server and logging field filled
// in. Breaker and health defaults are applied per endpoint by New.
func (c Config) WithDefaults() Config {
	s := &c.Server
	if s.Host == "" {
		s.Host = DefaultHost
	}
	if s.Port == 0 {
		s.Port = DefaultPort
	}
	if s.Prefix == "" {
		s.Prefix = DefaultPrefix
	}
	if s.ShutdownTimeout == 0 {
		s.ShutdownTimeout = Duration(DefaultShutdownTimeout)
	}
	if s.ReadHeaderTimeout == 0 {
		s.ReadHeaderTimeout = Duration(DefaultReadHeaderTimeout)
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = Duration(DefaultIdleTimeout)
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

// AccessLogEnabled reports whether access lines are written (default true).
func (l LoggingConfig) AccessLogEnabled() bool { return l.AccessLog == nil || *l.AccessLog }

// Validate checks the whole configuration and returns a *ValidationError
// listing every problem with its field path, or nil.
func (c Config) Validate() error {
	var errs ValidationError
	s := c.Server
	if s.Port < 0 || s.Port > 65535 {
		errs.add("server.port", fmt.Sprintf("%d is not a TCP port (1-65535)", s.Port))
	}
	if s.Host != "" && strings.ContainsAny(s.Host, " /") {
		errs.add("server.host", fmt.Sprintf("%q is not a host name or address", s.Host))
	}
	if s.Prefix != "" {
		if err := WithPrefix(s.Prefix)(&options{}); err != nil {
			errs.add("server.prefix", fmt.Sprintf("%q must be an absolute path such as /orchestrator", s.Prefix))
		}
	}
	if s.MaxHeaderBytes < 0 {
		errs.add("server.max_header_bytes", "must not be negative")
	}
	if s.MaxBodyBytes < 0 {
		errs.add("server.max_body_bytes", "must not be negative")
	}
	if s.MaxHeaderCount < 0 {
		errs.add("server.max_header_count", "must not be negative")
	}
	if s.MaxConfigBytes < 0 {
		errs.add("server.max_config_bytes", "must not be negative")
	}
	if s.DrainDelay < 0 {
		errs.add("server.drain_delay", "must not be negative")
	}
	if (s.TLS.CertFile == "") != (s.TLS.KeyFile == "") {
		errs.add("server.tls", "cert_file and key_file must be set together")
	}
	for i, p := range s.TrustedProxies {
		if _, err := ParseTrustedProxy(p); err != nil {
			errs.add(fmt.Sprintf("server.trusted_proxies[%d]", i), err.Error())
		}
	}
	for i, a := range c.Registry.AllowedUpstreams {
		if _, err := netguard.New([]string{a}); err != nil {
			errs.add(fmt.Sprintf("registry.allowed_upstreams[%d]", i), err.Error()+"; want a CIDR, an IP address or a host name")
		}
	}
	if a := c.Admin.Listen; a != "" {
		if _, port, err := net.SplitHostPort(a); err != nil {
			errs.add("admin.listen", fmt.Sprintf("%q must be host:port, such as 127.0.0.1:9000", a))
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			errs.add("admin.listen", fmt.Sprintf("%q has an invalid port", a))
		}
	}
	for i, o := range c.Admin.AllowedOrigins {
		if !validOrigin(o) {
			errs.add(fmt.Sprintf("admin.allowed_origins[%d]", i), fmt.Sprintf("%q must be an origin such as https://admin.example.com", o))
		}
	}
	for i, o := range c.CORS.AllowedOrigins {
		if o != "*" && !validOrigin(o) {
			errs.add(fmt.Sprintf("cors.allowed_origins[%d]", i), fmt.Sprintf("%q must be \"*\" or an origin such as https://app.example.com", o))
		}
	}
	if c.CORS.AllowCredentials && slices.Contains(c.CORS.AllowedOrigins, "*") {
		errs.add("cors.allow_credentials", "cannot be combined with the \"*\" origin (browsers refuse it); list the origins")
	}
	switch strings.ToLower(c.Logging.Level) {
	case "", "debug", "info", "warn", "warning", "error":
	default:
		errs.add("logging.level", fmt.Sprintf("unknown level %q; want debug, info, warn or error", c.Logging.Level))
	}
	switch c.Logging.Format {
	case "", "json", "text":
	default:
		errs.add("logging.format", fmt.Sprintf("unknown format %q; want json or text", c.Logging.Format))
	}
	c.CircuitBreaker.validate("circuit_breaker", &errs)
	c.HealthCheck.validate("health_check", &errs)
	validateSet(c.Endpoints, "endpoints", &errs)
	// Fallback endpoints must exist in the file (API endpoints may come and
	// go; a config fallback must not depend on them).
	ids := make(map[string]bool, len(c.Endpoints))
	for _, ep := range c.Endpoints {
		ids[ep.EndpointID()] = true
	}
	for i, ep := range c.Endpoints {
		if f := ep.Fallback; f != nil && f.Strategy == FallbackEndpoint && f.Endpoint != "" && f.Endpoint != ep.EndpointID() && !ids[f.Endpoint] {
			errs.add(fmt.Sprintf("endpoints[%d].fallback.endpoint", i), fmt.Sprintf("no endpoint in this file has id %q", f.Endpoint))
		}
	}
	return errs.orNil()
}

func validOrigin(o string) bool {
	scheme, host, ok := strings.Cut(o, "://")
	return ok && (scheme == "http" || scheme == "https") && host != "" && !strings.ContainsAny(host, "/?# ")
}

// ParseTrustedProxy parses a CIDR ("10.0.0.0/8") or a single address.
func ParseTrustedProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// ConfigError lists the problems of a configuration file, each located by
// line and column: the first MaxReportedErrors of them, and how many more
// there were. Its Error method prints one "file:line:column: message" line
// per problem, the format editors and CI annotate.
type ConfigError struct {
	// File is the file name as given (may be empty for inline data).
	File string `json:"file,omitempty"`
	// Errors holds the problems in file order.
	Errors []FieldError `json:"errors"`
	// Omitted counts the problems past MaxReportedErrors that are not
	// listed.
	Omitted int `json:"omitted,omitempty"`
}

// Total is the number of problems found, listed or not.
func (e *ConfigError) Total() int { return len(e.Errors) + e.Omitted }

// Error prints one "file:line:column: field: message" per problem.
func (e *ConfigError) Error() string {
	var b strings.Builder
	for i, fe := range e.Errors {
		if i > 0 {
			b.WriteByte('\n')
		}
		name := e.File
		if name == "" {
			name = "config"
		}
		fmt.Fprintf(&b, "%s:%d:%d: ", name, fe.Line, fe.Column)
		if fe.Field != "" {
			b.WriteString(fe.Field + ": ")
		}
		b.WriteString(fe.Message)
	}
	if e.Omitted > 0 {
		name := e.File
		if name == "" {
			name = "config"
		}
		fmt.Fprintf(&b, "\n%s: %s", name, moreProblems(e.Omitted))
	}
	return b.String()
}

// Is reports ErrInvalid as matching.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalid }

// ParseConfig decodes and validates a YAML (or JSON, which is YAML)
// configuration. Unknown fields, wrong types and invalid values are all
// reported together in a *ConfigError; name is used in its messages.
func ParseConfig(data []byte, name string) (*Config, error) {
	var cfg Config
	doc, problems := yamlconf.Decode(data, &cfg)
	if len(problems) > 0 {
		ce := &ConfigError{File: name}
		for _, p := range problems {
			if len(ce.Errors) == MaxReportedErrors {
				ce.Omitted++
				continue
			}
			ce.Errors = append(ce.Errors, FieldError{Field: p.Path, Message: p.Message, Line: p.Line, Column: p.Column})
		}
		return nil, ce
	}
	limit := cfg.Server.MaxConfigBytes
	if limit == 0 {
		limit = DefaultMaxConfigBytes
	}
	if int64(len(data)) > limit {
		// A file may raise its own cap; past the cap in force it is
		// refused like any other bad file. (Reading is capped before this
		// on reloads and POST /config/validate bodies.)
		line, col := doc.Locate("server.max_config_bytes")
		return nil, &ConfigError{File: name, Errors: []FieldError{{Field: "server.max_config_bytes", Line: line, Column: col,
			Message: fmt.Sprintf("the file is %d bytes, more than the %d this allows", len(data), limit)}}}
	}
	if cfg.Endpoints == nil && doc.NullKey("endpoints") {
		// "endpoints:" with nothing after it is what a file cut short
		// while being written looks like; serving no endpoints is asked
		// for with "endpoints: []".
		line, col := doc.Locate("endpoints")
		return nil, &ConfigError{File: name, Errors: []FieldError{{Field: "endpoints", Line: line, Column: col,
			Message: "is null; write \"endpoints: []\" to serve no endpoints from the file"}}}
	}
	if err := cfg.Validate(); err != nil {
		ve := err.(*ValidationError)
		ce := &ConfigError{File: name, Omitted: ve.Omitted}
		for _, fe := range ve.Errors {
			fe.Line, fe.Column = doc.Locate(fe.Field)
			ce.Errors = append(ce.Errors, fe)
		}
		slices.SortStableFunc(ce.Errors, func(a, b FieldError) int {
			if a.Line != b.Line {
				return a.Line - b.Line
			}
			return a.Column - b.Column
		})
		return nil, ce
	}
	return &cfg, nil
}

// LoadConfig reads and parses a configuration file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(data, path)
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
