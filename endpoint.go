package orchestrator

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

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
// JSON use the same snake_case names. Only Name and URL (or Targets) are
// required.
type Endpoint struct {
	// ID is the stable id used by the admin API, metrics and logs. Default:
	// Name, or Name_Version when versioned.
	ID string `json:"id,omitempty" yaml:"id,omitempty"`
	// URL is the upstream base URL (http or https). Its path is the base that
	// the rest of the request path is appended to. It is the shorthand for
	// one target; an endpoint sets either URL or Targets.
	URL string `json:"url,omitempty" yaml:"url,omitempty"`
	// Targets are the endpoint's upstream instances, balanced by
	// LoadBalancing (see Target).
	Targets []Target `json:"targets,omitempty" yaml:"targets,omitempty"`
	// LoadBalancing says how requests are spread over Targets.
	LoadBalancing *LoadBalancingConfig `json:"load_balancing,omitempty" yaml:"load_balancing,omitempty"`
	// OutlierDetection ejects a target that keeps failing (passive health).
	OutlierDetection *OutlierDetectionConfig `json:"outlier_detection,omitempty" yaml:"outlier_detection,omitempty"`
	// Retry says when a failed attempt is tried again, on another target
	// where there is one.
	Retry *RetryConfig `json:"retry,omitempty" yaml:"retry,omitempty"`
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
	// PreserveHost forwards the client's Host header instead of the
	// upstream's. (Beside Disabled: two bools share one word, and every
	// endpoint is held twice, by the registry and by its route.)
	PreserveHost bool `json:"preserve_host,omitempty" yaml:"preserve_host,omitempty"`
	// HealthCheckPath is the absolute path probed on the upstream's host, such
	// as "/health". Empty: the default prober makes no active check and the
	// breaker alone judges it; a custom Prober (WithProber) is still called,
	// with the upstream's host and port.
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
	// CircuitBreaker overrides the global breaker settings field by field.
	CircuitBreaker *CircuitBreakerConfig `json:"circuit_breaker,omitempty" yaml:"circuit_breaker,omitempty"`
	// HealthCheck overrides the global health-check settings field by field.
	HealthCheck *HealthCheckConfig `json:"health_check,omitempty" yaml:"health_check,omitempty"`
	// Fallback says what to answer when the endpoint cannot serve.
	Fallback *FallbackConfig `json:"fallback,omitempty" yaml:"fallback,omitempty"`
	// RequestHeaders edits the headers of requests to the upstream, after
	// the gateway's own handling (see HeaderRules).
	RequestHeaders *HeaderRules `json:"request_headers,omitempty" yaml:"request_headers,omitempty"`
	// ResponseHeaders edits the headers of the upstream's responses to the
	// client, after the gateway's own handling (see HeaderRules).
	ResponseHeaders *HeaderRules `json:"response_headers,omitempty" yaml:"response_headers,omitempty"`
	// RateLimit is one rate limit or several, all of which apply; it
	// replaces the global rate_limit section (WithRateLimit) whole. A
	// pointer, as the other optional sections are: an endpoint without
	// one pays 8 bytes, not a slice header, in each of its copies.
	RateLimit *RateLimits `json:"rate_limit,omitempty" yaml:"rate_limit,omitempty"`
	// AdaptiveConcurrency sheds load when the upstream's latency climbs
	// (see AdaptiveConcurrencyConfig); merged field by field over the
	// global section.
	AdaptiveConcurrency *AdaptiveConcurrencyConfig `json:"adaptive_concurrency,omitempty" yaml:"adaptive_concurrency,omitempty"`
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
	e.validateTargets(field, errs)
	if e.LoadBalancing != nil {
		e.LoadBalancing.validate(field("load_balancing"), errs)
	}
	if e.OutlierDetection != nil {
		e.OutlierDetection.validate(field("outlier_detection"), errs)
	}
	if e.Retry != nil {
		e.Retry.validate(field("retry"), errs)
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
	if e.RateLimit != nil {
		e.RateLimit.validate(field("rate_limit"), errs)
	}
	if e.AdaptiveConcurrency != nil {
		e.AdaptiveConcurrency.validate(field("adaptive_concurrency"), errs)
	}
	if e.RequestHeaders != nil {
		e.RequestHeaders.validate(field("request_headers"), true, errs)
	}
	if e.ResponseHeaders != nil {
		e.ResponseHeaders.validate(field("response_headers"), false, errs)
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

// MaxReportedErrors caps the problems a ValidationError (or the config
// package's Error) lists; the rest are only counted (Omitted). A file of 400,000 broken
// endpoints would otherwise give a status body and a log line of tens of
// megabytes, and nobody fixes a file from its ten-thousandth error.
const MaxReportedErrors = 100

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

// allowAllHeader is the Allow header of an endpoint with no methods list,
// which serves every method but CONNECT and TRACE.
const allowAllHeader = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"

func allowHeader(methods []string) string {
	ms := slices.Clone(methods)
	slices.Sort(ms)
	return strings.Join(slices.Compact(ms), ", ")
}
