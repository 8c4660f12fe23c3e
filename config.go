package orchestrator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults applied when a field is left at its zero value. They match the
// reference server's documented defaults (DESIGN.md, "Health, breakers, policies").
const (
	DefaultPrefix             = "/orchestrator"
	DefaultTimeout            = 30 * time.Second
	DefaultFailureThreshold   = 5
	DefaultResetTimeout       = 60 * time.Second
	DefaultHalfOpenRequests   = 1
	DefaultHealthInterval     = 30 * time.Second
	DefaultHealthTimeout      = 10 * time.Second
	DefaultUnhealthyThreshold = 3
	DefaultHealthyThreshold   = 2
)

// Duration is a time.Duration that decodes from either a bare number of
// seconds (`timeout: 30`, as existing configs write it) or a Go duration
// string (`"250ms"`, `"1m30s"`). It encodes as a Go duration string.
// The zero value means "not set": the default or the global value applies.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String returns the Go duration form, such as "30s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON encodes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON accepts a number of seconds (fractions allowed) or a Go
// duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		// encoding/json convention: null leaves the value unchanged.
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		return d.UnmarshalText([]byte(s))
	}
	return d.parseSeconds(string(b))
}

// UnmarshalYAML decodes a bare number of seconds or a Go duration string
// (goccy/go-yaml's InterfaceUnmarshaler). Without it the library decodes a
// Duration through UnmarshalText after re-formatting the document for every
// value, which made a config with a timeout per endpoint quadratic: minutes
// for 10,000 endpoints.
func (d *Duration) UnmarshalYAML(unmarshal func(any) error) error {
	var v any
	if err := unmarshal(&v); err != nil {
		return err
	}
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return d.unmarshalString(x)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return d.unmarshalString(fmt.Sprint(x))
	}
	return fmt.Errorf("invalid duration %v: want seconds (30) or a Go duration (\"250ms\", \"1m30s\")", v)
}

// MarshalText encodes d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText accepts a Go duration string, or a bare number of seconds.
func (d *Duration) UnmarshalText(b []byte) error { return d.unmarshalString(string(b)) }

func (d *Duration) unmarshalString(s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		*d = 0
		return nil
	}
	// time.ParseDuration refuses a bare number for want of a unit, but for
	// "0", which it reads as parseSeconds does: skip it, and the error it
	// would allocate, for the common "timeout: 30".
	if !bareNumber(s) {
		if v, err := time.ParseDuration(s); err == nil {
			if v < 0 {
				return fmt.Errorf("duration %q must not be negative", s)
			}
			*d = Duration(v)
			return nil
		}
	}
	if err := d.parseSeconds(s); err != nil {
		if strings.HasPrefix(s, "-") {
			return fmt.Errorf("duration %q must not be negative", s)
		}
		return fmt.Errorf("invalid duration %q: want seconds (30) or a Go duration (\"250ms\", \"1m30s\")", s)
	}
	return nil
}

// bareNumber reports whether s is digits with at most one dot among them.
func bareNumber(s string) bool {
	digits, dots := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}

func (d *Duration) parseSeconds(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("invalid duration %s: want seconds (30) or a Go duration (\"250ms\", \"1m30s\")", s)
	}
	if f < 0 {
		return fmt.Errorf("duration %s must not be negative", s)
	}
	if f > float64(math.MaxInt64)/float64(time.Second) {
		return fmt.Errorf("duration %s is too large", s)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

// AuthType documents how a backend authenticates its callers. The gateway
// never authenticates proxied requests itself: credentials pass through
// untouched whatever the value.
type AuthType string

// The documented auth types.
const (
	AuthNone   AuthType = "none"
	AuthBearer AuthType = "bearer"
	AuthAPIKey AuthType = "api_key"
	AuthBasic  AuthType = "basic"
	AuthOAuth2 AuthType = "oauth2"
	AuthCustom AuthType = "custom"
)

// FallbackStrategy names what the gateway answers when an endpoint cannot
// serve a request (circuit open, unhealthy, upstream error or timeout).
type FallbackStrategy string

// The fallback strategies.
const (
	// FallbackErrorResponse answers with an application/problem+json document
	// (502, 503 or 504). It is the default.
	FallbackErrorResponse FallbackStrategy = "error_response"
	// FallbackStaticResponse answers with FallbackConfig.Status, Headers and Body.
	FallbackStaticResponse FallbackStrategy = "static_response"
	// FallbackEndpoint serves the request from the endpoint whose id is
	// FallbackConfig.Endpoint.
	FallbackEndpoint FallbackStrategy = "fallback_endpoint"
)

// CircuitBreakerConfig configures an endpoint's circuit breaker. Used as the
// global default (WithCircuitBreaker) every zero field takes the package
// default; used as a per-endpoint override every zero field inherits the
// global value, field by field.
type CircuitBreakerConfig struct {
	// Disabled turns the breaker off: no request is refused for past failures.
	// Nil inherits; the default is enabled.
	Disabled *bool `json:"disabled,omitempty" yaml:"disabled,omitempty"`
	// FailureThreshold is the number of consecutive failures that opens the
	// breaker. Default 5.
	FailureThreshold int `json:"failure_threshold,omitempty" yaml:"failure_threshold,omitempty"`
	// ResetTimeout is how long the breaker stays open before it lets trial
	// requests through (half-open). Default 60s.
	ResetTimeout Duration `json:"reset_timeout,omitempty" yaml:"reset_timeout,omitempty"`
	// HalfOpenRequests is the number of successful trial requests needed in
	// half-open to close the breaker; as many trials may run at once. Default 1.
	HalfOpenRequests int `json:"half_open_requests,omitempty" yaml:"half_open_requests,omitempty"`
	// FailureStatuses lists the upstream status codes counted as failures.
	// Default: every 5xx. Transport errors and timeouts always count.
	FailureStatuses []int `json:"failure_statuses,omitempty" yaml:"failure_statuses,omitempty"`
	// FallbackStrategy is the global default fallback strategy; an endpoint's
	// own Fallback.Strategy wins over it. Default error_response.
	FallbackStrategy FallbackStrategy `json:"fallback_strategy,omitempty" yaml:"fallback_strategy,omitempty"`
}

// merge returns c with every zero field taken from base.
func (c CircuitBreakerConfig) merge(base CircuitBreakerConfig) CircuitBreakerConfig {
	if c.Disabled == nil {
		c.Disabled = base.Disabled
	}
	if c.FailureThreshold == 0 {
		c.FailureThreshold = base.FailureThreshold
	}
	if c.ResetTimeout == 0 {
		c.ResetTimeout = base.ResetTimeout
	}
	if c.HalfOpenRequests == 0 {
		c.HalfOpenRequests = base.HalfOpenRequests
	}
	if c.FailureStatuses == nil {
		c.FailureStatuses = base.FailureStatuses
	}
	if c.FallbackStrategy == "" {
		c.FallbackStrategy = base.FallbackStrategy
	}
	return c
}

func (c CircuitBreakerConfig) withDefaults() CircuitBreakerConfig {
	return c.merge(CircuitBreakerConfig{
		FailureThreshold: DefaultFailureThreshold,
		ResetTimeout:     Duration(DefaultResetTimeout),
		HalfOpenRequests: DefaultHalfOpenRequests,
		FallbackStrategy: FallbackErrorResponse,
	})
}

func (c CircuitBreakerConfig) validate(path string, errs *ValidationError) {
	if c.FailureThreshold < 0 {
		errs.add(path+".failure_threshold", "must be > 0")
	}
	if c.HalfOpenRequests < 0 {
		errs.add(path+".half_open_requests", "must be > 0")
	}
	if c.ResetTimeout < 0 {
		errs.add(path+".reset_timeout", "must not be negative")
	}
	for i, s := range c.FailureStatuses {
		if s < 100 || s > 599 {
			errs.add(fmt.Sprintf("%s.failure_statuses[%d]", path, i), fmt.Sprintf("%d is not an HTTP status code (100-599)", s))
		}
	}
	if c.FallbackStrategy != "" && !validStrategy(c.FallbackStrategy) {
		errs.add(path+".fallback_strategy", fmt.Sprintf("unknown strategy %q; want error_response, static_response or fallback_endpoint", c.FallbackStrategy))
	}
}

// HealthCheckConfig configures active health checking. Used as the global
// default (WithHealthCheck) every zero field takes the package default; used
// as a per-endpoint override every zero field inherits the global value.
type HealthCheckConfig struct {
	// Enabled turns active checks on or off. Nil inherits; the default is on.
	// Only endpoints with a health_check_path are probed either way.
	Enabled *bool `json:"enabled,omitempty" yaml:"enabled,omitempty"`
	// Interval between probes of one endpoint; each wait is jittered by up to
	// ±10% so that many endpoints do not probe in lockstep. Default 30s.
	Interval Duration `json:"interval,omitempty" yaml:"interval,omitempty"`
	// Timeout of one probe. Default 10s.
	Timeout Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// UnhealthyThreshold is the number of consecutive failed probes that marks
	// an endpoint unhealthy. Default 3.
	UnhealthyThreshold int `json:"unhealthy_threshold,omitempty" yaml:"unhealthy_threshold,omitempty"`
	// HealthyThreshold is the number of consecutive good probes that marks an
	// unhealthy endpoint healthy again. Default 2.
	HealthyThreshold int `json:"healthy_threshold,omitempty" yaml:"healthy_threshold,omitempty"`
}

func (c HealthCheckConfig) merge(base HealthCheckConfig) HealthCheckConfig {
	if c.Enabled == nil {
		c.Enabled = base.Enabled
	}
	if c.Interval == 0 {
		c.Interval = base.Interval
	}
	if c.Timeout == 0 {
		c.Timeout = base.Timeout
	}
	if c.UnhealthyThreshold == 0 {
		c.UnhealthyThreshold = base.UnhealthyThreshold
	}
	if c.HealthyThreshold == 0 {
		c.HealthyThreshold = base.HealthyThreshold
	}
	return c
}

func (c HealthCheckConfig) withDefaults() HealthCheckConfig {
	return c.merge(HealthCheckConfig{
		Interval:           Duration(DefaultHealthInterval),
		Timeout:            Duration(DefaultHealthTimeout),
		UnhealthyThreshold: DefaultUnhealthyThreshold,
		HealthyThreshold:   DefaultHealthyThreshold,
	})
}

func (c HealthCheckConfig) enabled() bool { return c.Enabled == nil || *c.Enabled }

func (c HealthCheckConfig) validate(path string, errs *ValidationError) {
	if c.UnhealthyThreshold < 0 {
		errs.add(path+".unhealthy_threshold", "must be > 0")
	}
	if c.HealthyThreshold < 0 {
		errs.add(path+".healthy_threshold", "must be > 0")
	}
	if c.Interval != 0 && c.Interval.Std() < time.Millisecond {
		errs.add(path+".interval", "must be at least 1ms")
	}
	if c.Timeout < 0 {
		errs.add(path+".timeout", "must not be negative")
	}
}

// FallbackConfig says what to answer when an endpoint cannot serve a request.
type FallbackConfig struct {
	// Strategy is error_response, static_response or fallback_endpoint. Empty
	// inherits circuit_breaker.fallback_strategy.
	Strategy FallbackStrategy `json:"strategy,omitempty" yaml:"strategy,omitempty"`
	// Status of a static response. Default 503.
	Status int `json:"status,omitempty" yaml:"status,omitempty"`
	// Headers of a static response.
	Headers map[string]string `json:"headers,omitempty" yaml:"headers,omitempty"`
	// Body of a static response.
	Body string `json:"body,omitempty" yaml:"body,omitempty"`
	// Endpoint is the id of the endpoint that serves the request under the
	// fallback_endpoint strategy. It gets the same method, path rest, query,
	// headers and body. Fallbacks do not chain: if it cannot serve either, the
	// client gets the error response.
	Endpoint string `json:"endpoint,omitempty" yaml:"endpoint,omitempty"`
}

// Endpoint is the desired-state configuration of one routed backend. YAML and
// JSON use the same snake_case names. Only URL and Name are required.
type Endpoint struct {
	// ID is the stable id used by the admin API, metrics and logs. Default:
	// Name, or Name_Version when versioned.
	ID string `json:"id,omitempty" yaml:"id,omitempty"`
	// URL is the upstream base URL (http or https). Its path is the base that
	// the rest of the request path is appended to.
	URL string `json:"url" yaml:"url"`
	// Name is the first path segment after the prefix.
	Name string `json:"name" yaml:"name"`
	// Version is the optional second path segment, such as "v1".
	Version string `json:"version,omitempty" yaml:"version,omitempty"`
	// Methods lists the allowed HTTP methods; others get 405. Empty allows
	// every method but CONNECT and TRACE, which an endpoint gets only by
	// listing them (a tunnel and a request echo are never implied).
	Methods []string `json:"methods,omitempty" yaml:"methods,omitempty"`
	// AuthType documents the backend's authentication; it changes nothing.
	AuthType AuthType `json:"auth_type,omitempty" yaml:"auth_type,omitempty"`
	// Disabled keeps the endpoint registered but answers 503.
	Disabled bool `json:"disabled,omitempty" yaml:"disabled,omitempty"`
	// HealthCheckPath is the absolute path probed on the upstream's host, such
	// as "/health". Empty: no active check; the breaker alone judges it.
	HealthCheckPath string `json:"health_check_path,omitempty" yaml:"health_check_path,omitempty"`
	// Timeout is how long the gateway waits for the upstream's response
	// headers once the request is sent (504 past it). It does not cut a
	// response body that is streaming, so server-sent events and WebSockets
	// live on. Default 30s.
	Timeout Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// MaxConcurrent caps the requests in flight to this endpoint (a
	// failsafe-go bulkhead); one more is answered 503 at once, without
	// queueing. Default 0: no cap.
	MaxConcurrent int `json:"max_concurrent,omitempty" yaml:"max_concurrent,omitempty"`
	// PreserveHost forwards the client's Host header instead of the upstream's.
	PreserveHost bool `json:"preserve_host,omitempty" yaml:"preserve_host,omitempty"`
	// CircuitBreaker overrides the global breaker settings field by field.
	CircuitBreaker *CircuitBreakerConfig `json:"circuit_breaker,omitempty" yaml:"circuit_breaker,omitempty"`
	// HealthCheck overrides the global health-check settings field by field.
	HealthCheck *HealthCheckConfig `json:"health_check,omitempty" yaml:"health_check,omitempty"`
	// Fallback says what to answer when the endpoint cannot serve.
	Fallback *FallbackConfig `json:"fallback,omitempty" yaml:"fallback,omitempty"`
}

// EndpointID returns the endpoint's id: ID when set, else Name, or
// Name_Version when versioned.
func (e Endpoint) EndpointID() string {
	if e.ID != "" {
		return e.ID
	}
	if e.Version != "" {
		return e.Name + "_" + e.Version
	}
	return e.Name
}

// Normalized returns a copy with the id filled in and methods upper-cased,
// as the registry stores it.
func (e Endpoint) Normalized() Endpoint {
	e.ID = e.EndpointID()
	if len(e.Methods) > 0 {
		ms := make([]string, len(e.Methods))
		for i, m := range e.Methods {
			ms[i] = strings.ToUpper(strings.TrimSpace(m))
		}
		e.Methods = ms
	}
	if e.AuthType == "" {
		e.AuthType = AuthNone
	}
	return e
}

// validSegment reports whether s matches [A-Za-z0-9][A-Za-z0-9._-]*, the
// form of names, versions and ids. A loop, not a regexp: a reload validates
// every endpoint, and the regexp was a tenth of applying 10,000.
func validSegment(s string) bool {
	if s == "" || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Validate checks every field and returns a *ValidationError listing every
// problem, or nil.
func (e Endpoint) Validate() error {
	var errs ValidationError
	e.validate("", &errs)
	return errs.orNil()
}

func (e Endpoint) validate(path string, errs *ValidationError) {
	field := func(name string) string {
		if path == "" {
			return name
		}
		return path + "." + name
	}
	switch {
	case e.Name == "":
		errs.add(field("name"), "is required")
	case !validSegment(e.Name) || e.Name == "." || e.Name == "..":
		errs.add(field("name"), fmt.Sprintf("%q must match [A-Za-z0-9][A-Za-z0-9._-]*", e.Name))
	}
	if e.Version != "" && (!validSegment(e.Version) || e.Version == "..") {
		errs.add(field("version"), fmt.Sprintf("%q must match [A-Za-z0-9][A-Za-z0-9._-]*", e.Version))
	}
	if e.ID != "" && !validSegment(e.ID) {
		errs.add(field("id"), fmt.Sprintf("%q must match [A-Za-z0-9][A-Za-z0-9._-]*", e.ID))
	}
	if e.URL == "" {
		errs.add(field("url"), "is required")
	} else if _, err := parseUpstreamURL(e.URL); err != nil {
		errs.add(field("url"), err.Error())
	}
	for i, m := range e.Methods {
		m = strings.ToUpper(strings.TrimSpace(m))
		if m == "" || !isToken(m) {
			errs.add(fmt.Sprintf("%s[%d]", field("methods"), i), fmt.Sprintf("%q is not an HTTP method", e.Methods[i]))
		}
	}
	switch e.AuthType {
	case "", AuthNone, AuthBearer, AuthAPIKey, AuthBasic, AuthOAuth2, AuthCustom:
	default:
		errs.add(field("auth_type"), fmt.Sprintf("unknown auth type %q; want none, bearer, api_key, basic, oauth2 or custom", e.AuthType))
	}
	if e.MaxConcurrent < 0 {
		errs.add(field("max_concurrent"), "must not be negative")
	}
	if e.HealthCheckPath != "" && !strings.HasPrefix(e.HealthCheckPath, "/") {
		errs.add(field("health_check_path"), fmt.Sprintf("%q must start with /", e.HealthCheckPath))
	} else if e.HealthCheckPath != "" {
		if _, err := url.Parse(e.HealthCheckPath); err != nil {
			errs.add(field("health_check_path"), "is not a valid path")
		}
	}
	if e.Timeout < 0 {
		errs.add(field("timeout"), "must not be negative")
	}
	if e.CircuitBreaker != nil {
		e.CircuitBreaker.validate(field("circuit_breaker"), errs)
	}
	if e.HealthCheck != nil {
		e.HealthCheck.validate(field("health_check"), errs)
	}
	if f := e.Fallback; f != nil {
		if f.Strategy != "" && !validStrategy(f.Strategy) {
			errs.add(field("fallback.strategy"), fmt.Sprintf("unknown strategy %q; want error_response, static_response or fallback_endpoint", f.Strategy))
		}
		if f.Status != 0 && (f.Status < 200 || f.Status > 599) {
			errs.add(field("fallback.status"), fmt.Sprintf("%d must be a final HTTP status (200-599)", f.Status))
		}
		for k := range f.Headers {
			if !isToken(k) {
				errs.add(field("fallback.headers"), fmt.Sprintf("%q is not a valid header name", k))
			}
		}
		if f.Strategy == FallbackEndpoint {
			switch f.Endpoint {
			case "":
				errs.add(field("fallback.endpoint"), "is required by the fallback_endpoint strategy")
			case e.EndpointID():
				errs.add(field("fallback.endpoint"), "must name another endpoint, not this one")
			}
		}
	}
}

func validStrategy(s FallbackStrategy) bool {
	return s == FallbackErrorResponse || s == FallbackStaticResponse || s == FallbackEndpoint
}

// parseUpstreamURL parses and checks an upstream base URL.
func parseUpstreamURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid URL", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q must use http or https", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%q has no host", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%q must not carry credentials (user:password@); send them per request instead", raw)
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("%q must not have a fragment", raw)
	}
	if u.RawQuery != "" || u.ForceQuery {
		return nil, fmt.Errorf("%q must not have a query string; the client's query is forwarded as is", raw)
	}
	return u, nil
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// FieldError is one problem with one field of a configuration.
type FieldError struct {
	// Field is the path of the offending field, such as "endpoints[2].url".
	Field string `json:"field"`
	// Message says what is wrong.
	Message string `json:"message"`
	// Line and Column locate the field in a config file, when known (1-based).
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
}

// String formats the error as "field: message".
func (e FieldError) String() string { return e.Field + ": " + e.Message }

// MaxReportedErrors caps the problems a ValidationError or ConfigError
// lists; the rest are only counted (Omitted). A file of 400,000 broken
// endpoints would otherwise give a status body and a log line of tens of
// megabytes, and nobody fixes a file from its ten-thousandth error.
const MaxReportedErrors = 100

// ValidationError lists the problems found in a configuration: the first
// MaxReportedErrors of them, and how many more there were. It is returned
// (as error) by Endpoint.Validate, New and the registration methods.
type ValidationError struct {
	// Errors holds one entry per problem, in the order found.
	Errors []FieldError `json:"errors"`
	// Omitted counts the problems past MaxReportedErrors that are not
	// listed.
	Omitted int `json:"omitted,omitempty"`
}

// Error joins every field error on one line each.
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors), len(e.Errors)+1)
	for i, fe := range e.Errors {
		parts[i] = fe.String()
	}
	if e.Omitted > 0 {
		parts = append(parts, moreProblems(e.Omitted))
	}
	return "invalid configuration: " + strings.Join(parts, "; ")
}

// Total is the number of problems found, listed or not.
func (e *ValidationError) Total() int { return len(e.Errors) + e.Omitted }

// moreProblems says how many problems were found but not listed.
func moreProblems(n int) string {
	if n == 1 {
		return "and 1 more problem"
	}
	return fmt.Sprintf("and %d more problems", n)
}

// Is reports ErrInvalid as matching, so errors.Is(err, ErrInvalid) works.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func (e *ValidationError) add(field, msg string) {
	if len(e.Errors) >= MaxReportedErrors {
		e.Omitted++
		return
	}
	e.Errors = append(e.Errors, FieldError{Field: field, Message: msg})
}

func (e *ValidationError) orNil() error {
	if e == nil || e.Total() == 0 {
		return nil
	}
	return e
}

// validateSet checks a set of endpoints for problems between them: duplicate
// ids, duplicate routes and dangling fallback references.
func validateSet(eps []Endpoint, path string, errs *ValidationError) {
	ids := make(map[string]int, len(eps))
	routes := make(map[string]int, len(eps))
	var probe ValidationError
	for i, ep := range eps {
		// Most endpoints are valid: check each without its field path
		// first, and build the path only to report what is wrong.
		probe.Errors = probe.Errors[:0]
		if ep.validate("", &probe); len(probe.Errors) > 0 {
			ep.validate(fmt.Sprintf("%s[%d]", path, i), errs)
		}
		id := ep.EndpointID()
		if j, dup := ids[id]; dup {
			errs.add(fmt.Sprintf("%s[%d].id", path, i), fmt.Sprintf("duplicate id %q (also %s[%d])", id, path, j))
		} else {
			ids[id] = i
		}
		rk := ep.Name + "/" + ep.Version
		if j, dup := routes[rk]; dup {
			errs.add(fmt.Sprintf("%s[%d]", path, i), fmt.Sprintf("route %s is already served by %s[%d]", routeKeyString(ep.Name, ep.Version), path, j))
		} else {
			routes[rk] = i
		}
	}
}

func routeKeyString(name, version string) string {
	if version == "" {
		return "/" + name
	}
	return "/" + name + "/" + version
}

// ErrInvalid is matched (errors.Is) by every *ValidationError.
var ErrInvalid = errors.New("orchestrator: invalid configuration")

// allowAllHeader is the Allow header of an endpoint with no methods list,
// which serves every method but CONNECT and TRACE.
const allowAllHeader = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"

func allowHeader(methods []string) string {
	ms := slices.Clone(methods)
	slices.Sort(ms)
	return strings.Join(slices.Compact(ms), ", ")
}
