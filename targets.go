package orchestrator

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/orchestrator-go/orchestrator/internal/balance"
	"github.com/orchestrator-go/orchestrator/internal/outlier"
)

// This file holds the configuration of an endpoint with several upstream
// instances (targets): the targets themselves, how requests are spread over
// them (load_balancing), when one is taken out for failing (outlier_detection)
// and when a failed request is tried again (retry). The hot path that uses
// them is in upstreams.go and retry.go.

// Target is one upstream instance of an endpoint. An endpoint lists either
// one URL (Endpoint.URL, the shorthand for a single target) or Targets.
type Target struct {
	// ID names the target in the admin API, metrics and logs. Default: the
	// URL's host:port. It is also what the hash policy and sticky sessions
	// key on, so a target keeps its share of keys while its ID is unchanged.
	ID string `json:"id,omitempty" yaml:"id,omitempty"`
	// URL is the target's base URL (http or https), as Endpoint.URL.
	URL string `json:"url" yaml:"url"`
	// Weight is the target's share of traffic relative to the others.
	// Nil means 1; 0 means drained: no new requests, in-flight ones finish.
	Weight *int `json:"weight,omitempty" yaml:"weight,omitempty"`
	// TLS configures the connection to an https target: its CA bundle, a
	// client certificate, the server name and insecure_skip_verify.
	TLS *TargetTLS `json:"tls,omitempty" yaml:"tls,omitempty"`
}

// TargetTLS configures TLS to one https target. Every connection to the
// target still goes through the upstream guard.
type TargetTLS struct {
	// CAFile is a PEM bundle of the CAs the target's certificate must chain
	// to, instead of the system roots.
	CAFile string `json:"ca_file,omitempty" yaml:"ca_file,omitempty"`
	// CertFile and KeyFile are the gateway's client certificate and key
	// (PEM), for targets that require mutual TLS. Both or neither.
	CertFile string `json:"cert_file,omitempty" yaml:"cert_file,omitempty"`
	// KeyFile is the client certificate's private key (PEM).
	KeyFile string `json:"key_file,omitempty" yaml:"key_file,omitempty"`
	// ServerName is the name sent in SNI and verified in the target's
	// certificate. Default: the URL's host.
	ServerName string `json:"server_name,omitempty" yaml:"server_name,omitempty"`
	// InsecureSkipVerify accepts any certificate the target presents. It
	// exists for tests and migrations; it must be set explicitly.
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty" yaml:"insecure_skip_verify,omitempty"`
}

// The load-balancing policies. An embedder's own is a Selector set in
// LoadBalancingConfig.Selector.
const (
	// PolicyRoundRobin is smooth weighted round robin (nginx's), the default.
	PolicyRoundRobin = balance.RoundRobin
	// PolicyLeastRequests picks the target with fewer requests in flight of
	// two drawn at random (power of two choices).
	PolicyLeastRequests = balance.LeastRequests
	// PolicyRandom picks at random, by weight.
	PolicyRandom = balance.Random
	// PolicyHash is consistent (rendezvous) hashing on LoadBalancingConfig.HashKey:
	// removing one target moves only its keys.
	PolicyHash = balance.Hash
	// PolicyFirst sends everything to the first eligible target in order:
	// the others are standbys.
	PolicyFirst = balance.First
)

// LoadBalancingConfig says how requests are spread over an endpoint's
// targets.
type LoadBalancingConfig struct {
	// Policy is round_robin (default), least_requests, random, hash or
	// first.
	Policy string `json:"policy,omitempty" yaml:"policy,omitempty"`
	// Selector is an embedder's own policy, used instead of Policy (which
	// must then be empty). It lives only in this process: it is not
	// serialized, so an endpoint stored in a shared registry (a state file,
	// etcd) must use Policy. Each endpoint must have its own Selector value
	// if the Selector keeps state per endpoint (as round robin does).
	Selector Selector `json:"-" yaml:"-"`
	// HashKey is what the hash policy hashes: header:NAME, cookie:NAME,
	// query:NAME or client_ip. Required by hash, refused by the others.
	HashKey string `json:"hash_key,omitempty" yaml:"hash_key,omitempty"`
	// Sticky pins a client to the target it was first sent to, with a
	// cookie the gateway sets (as Traefik and Caddy do).
	Sticky *StickyConfig `json:"sticky,omitempty" yaml:"sticky,omitempty"`
	// PanicMode, when no target is eligible, balances across all of them
	// instead of answering with the fallback (Envoy's panic threshold at
	// 100%): better a request to a target that may be failing than none.
	PanicMode bool `json:"panic_mode,omitempty" yaml:"panic_mode,omitempty"`
}

// StickyConfig is a sticky-session cookie. The cookie's value is an opaque
// hash of the target's ID, never its address. A request whose cookie names a
// target that is not eligible (drained, ejected, unhealthy, breaker open)
// is balanced as usual and gets a new cookie.
type StickyConfig struct {
	// Cookie is the cookie's name. Required.
	Cookie string `json:"cookie" yaml:"cookie"`
	// MaxAge is the cookie's Max-Age. Zero: a session cookie.
	MaxAge Duration `json:"max_age,omitempty" yaml:"max_age,omitempty"`
	// Secure marks the cookie Secure (sent over HTTPS only).
	Secure bool `json:"secure,omitempty" yaml:"secure,omitempty"`
	// HTTPOnly marks the cookie HttpOnly (not readable by scripts).
	HTTPOnly bool `json:"http_only,omitempty" yaml:"http_only,omitempty"`
	// SameSite is lax, strict or none. Empty: the attribute is left out.
	SameSite string `json:"same_site,omitempty" yaml:"same_site,omitempty"`
	// Path is the cookie's Path. Default: the endpoint's route path.
	Path string `json:"path,omitempty" yaml:"path,omitempty"`
}

// OutlierDetectionConfig is passive health per target (Envoy's consecutive
// failures): a target whose requests failed consecutive_failures times in a
// row is ejected from balancing for a while. On by default for an endpoint
// with more than one target; with one target the circuit breaker does that
// job, so it is off unless the section is given.
type OutlierDetectionConfig struct {
	// ConsecutiveFailures ejects a target after this many failures in a
	// row. Nil: 5. 0 turns ejection off.
	ConsecutiveFailures *int `json:"consecutive_failures,omitempty" yaml:"consecutive_failures,omitempty"`
	// BaseEjectionTime is the first ejection's length; the n-th lasts n
	// times as long, up to MaxEjectionTime. Default 30s.
	BaseEjectionTime Duration `json:"base_ejection_time,omitempty" yaml:"base_ejection_time,omitempty"`
	// MaxEjectionTime caps one ejection. Default 5m.
	MaxEjectionTime Duration `json:"max_ejection_time,omitempty" yaml:"max_ejection_time,omitempty"`
	// MaxEjectionPercent is the largest share of the targets ejected at
	// once, rounded down but at least one target. Default 10 (Envoy's).
	MaxEjectionPercent int `json:"max_ejection_percent,omitempty" yaml:"max_ejection_percent,omitempty"`
}

// The retry defaults.
const (
	// DefaultRetryBackoff is the first retry's back-off before jitter.
	DefaultRetryBackoff = Duration(25 * time.Millisecond)
	// DefaultRetryMaxBackoff caps the doubling back-off.
	DefaultRetryMaxBackoff = Duration(250 * time.Millisecond)
	// DefaultRetryBudgetPercent is the share of attempts in flight that
	// may be retries or hedges.
	DefaultRetryBudgetPercent = 20
	// DefaultRetryMinConcurrency is how many retries are always allowed.
	DefaultRetryMinConcurrency = 3
	// DefaultMaxReplayBytes is the request body kept for a retry.
	DefaultMaxReplayBytes = 64 << 10
)

// DefaultRetryOn is what a retry is made on when RetryConfig.On is empty.
var DefaultRetryOn = []string{RetryOnConnectError, RetryOnReset, "502", "503", "504"}

// The retry conditions besides status codes.
const (
	// RetryOnConnectError: the connection could not be made (refused,
	// dial timeout, TLS handshake failure); the request never reached the
	// backend.
	RetryOnConnectError = "connect_error"
	// RetryOnReset: the connection broke before the response headers.
	RetryOnReset = "reset"
	// RetryOnTimeout: the attempt passed retry.per_try_timeout.
	RetryOnTimeout = "timeout"
)

// RetryConfig says when a failed attempt is tried again. A retry is made
// only when it is safe: the method is idempotent (GET, HEAD, OPTIONS, PUT,
// DELETE, TRACE), the request carries Idempotency-Key, or it never reached
// the backend; never once a byte of the response reached the client, and
// never for a body larger than MaxReplayBytes.
type RetryConfig struct {
	// Attempts is the number of tries after the first. 0 (default): off.
	Attempts int `json:"attempts,omitempty" yaml:"attempts,omitempty"`
	// Backoff is the first retry's delay, jittered and doubling up to
	// MaxBackoff. Default 25ms.
	Backoff Duration `json:"backoff,omitempty" yaml:"backoff,omitempty"`
	// MaxBackoff caps the back-off. Default 250ms.
	MaxBackoff Duration `json:"max_backoff,omitempty" yaml:"max_backoff,omitempty"`
	// On lists what is retried: connect_error, reset, timeout and status
	// codes (400-599). Default: connect_error, reset, 502, 503, 504.
	On []string `json:"on,omitempty" yaml:"on,omitempty"`
	// PerTryTimeout bounds one attempt up to its response headers; the
	// endpoint's Timeout bounds the whole request. Default: Timeout.
	PerTryTimeout Duration `json:"per_try_timeout,omitempty" yaml:"per_try_timeout,omitempty"`
	// BudgetPercent is the largest share of the endpoint's attempts in
	// flight that may be retries (and hedges). Default 20.
	BudgetPercent int `json:"budget_percent,omitempty" yaml:"budget_percent,omitempty"`
	// MinConcurrency retries are always allowed, whatever the budget says
	// (Envoy's model). Nil: 3.
	MinConcurrency *int `json:"min_concurrency,omitempty" yaml:"min_concurrency,omitempty"`
	// MaxReplayBytes is how much of a request body is kept (a bounded tee,
	// filled as the body streams) to send it again. A larger body is not
	// retried. Default 65536.
	MaxReplayBytes int64 `json:"max_replay_bytes,omitempty" yaml:"max_replay_bytes,omitempty"`
}

// maxTargets bounds an endpoint's target list: a selector walks every
// target per request.
const maxTargets = 1024

// TargetID returns the target's id: ID when set, else the URL's host:port
// (with the scheme's default port when none is given).
func (t Target) TargetID() string {
	if t.ID != "" {
		return t.ID
	}
	u, err := parseUpstreamURL(t.URL)
	if err != nil {
		return t.URL
	}
	return hostPort(u.Scheme, u.Host)
}

// hostPort returns host with the scheme's default port added when it has
// none.
func hostPort(scheme, host string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	port := "80"
	if scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

// TargetList returns the endpoint's targets: Targets, or one target for the
// URL shorthand.
func (e Endpoint) TargetList() []Target {
	if len(e.Targets) > 0 || e.URL == "" {
		return e.Targets
	}
	return []Target{{URL: e.URL}}
}

func (e Endpoint) validateTargets(field func(string) string, errs *ValidationError) {
	switch {
	case e.URL != "" && len(e.Targets) > 0:
		errs.add(field("targets"), "set either url or targets, not both")
		return
	case e.URL == "" && len(e.Targets) == 0:
		errs.add(field("url"), "is required")
		return
	case e.URL != "":
		if _, err := parseUpstreamURL(e.URL); err != nil {
			errs.add(field("url"), err.Error())
		}
	case len(e.Targets) > maxTargets:
		errs.add(field("targets"), fmt.Sprintf("lists %d targets; at most %d", len(e.Targets), maxTargets))
		return
	}
	urls := make(map[string]int, len(e.Targets))
	ids := make(map[string]int, len(e.Targets))
	for i, t := range e.Targets {
		at := fmt.Sprintf("%s[%d]", field("targets"), i)
		if t.URL == "" {
			errs.add(at+".url", "is required")
		} else if _, err := parseUpstreamURL(t.URL); err != nil {
			errs.add(at+".url", err.Error())
		} else if j, dup := urls[t.URL]; dup {
			errs.add(at+".url", fmt.Sprintf("duplicate target URL %q (also %s[%d])", t.URL, field("targets"), j))
		} else {
			urls[t.URL] = i
		}
		if t.ID != "" && !validSegment(t.ID) {
			errs.add(at+".id", fmt.Sprintf("%q must match [A-Za-z0-9][A-Za-z0-9._-]*", t.ID))
		}
		id := t.TargetID()
		if j, dup := ids[id]; dup && t.URL != "" {
			errs.add(at+".id", fmt.Sprintf("duplicate target id %q (also %s[%d]); set id to tell them apart", id, field("targets"), j))
		} else {
			ids[id] = i
		}
		if t.Weight != nil && (*t.Weight < 0 || *t.Weight > maxWeight) {
			errs.add(at+".weight", fmt.Sprintf("%d must be between 0 (drained) and %d", *t.Weight, maxWeight))
		}
		if t.TLS != nil {
			t.TLS.validate(at+".tls", t.URL, errs)
		}
	}
}

// maxWeight bounds a target's weight, so that sums of weights over the
// largest target list never overflow.
const maxWeight = 1_000_000

func (c *TargetTLS) validate(path, rawURL string, errs *ValidationError) {
	if !strings.HasPrefix(rawURL, "https:") {
		errs.add(path, "is set but the target's URL is not https")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs.add(path, "cert_file and key_file go together: set both or neither")
		return
	}
	// The files are read here too, so that a config naming a missing or
	// broken one is refused at its field, before it replaces a good one.
	if _, _, err := loadTargetTLS(c); err != nil {
		name, msg, _ := strings.Cut(err.Error(), ": ")
		errs.add(path+"."+name, msg)
	}
}

func (c *LoadBalancingConfig) validate(path string, errs *ValidationError) {
	if c.Selector != nil {
		if c.Policy != "" || c.HashKey != "" {
			errs.add(path+".policy", "must be empty when a custom Selector is set")
		}
	} else if _, err := balance.New(c.Policy, c.HashKey); err != nil {
		// balance names its fields from load_balancing on.
		msg := strings.TrimPrefix(err.Error(), "load_balancing.")
		name, rest, _ := strings.Cut(msg, ": ")
		errs.add(path+"."+name, rest)
	}
	if s := c.Sticky; s != nil {
		if s.Cookie == "" || !isToken(s.Cookie) {
			errs.add(path+".sticky.cookie", fmt.Sprintf("%q is not a valid cookie name", s.Cookie))
		}
		switch strings.ToLower(s.SameSite) {
		case "", "lax", "strict", "none":
		default:
			errs.add(path+".sticky.same_site", fmt.Sprintf("unknown value %q; want lax, strict or none", s.SameSite))
		}
		if s.MaxAge < 0 {
			errs.add(path+".sticky.max_age", "must not be negative")
		}
		if s.Path != "" && !strings.HasPrefix(s.Path, "/") {
			errs.add(path+".sticky.path", fmt.Sprintf("%q must start with /", s.Path))
		}
	}
}

// outlierConfig maps the section onto the detector's config.
func (c *OutlierDetectionConfig) outlierConfig() outlier.Config {
	return outlier.Config{
		ConsecutiveFailures: c.ConsecutiveFailures,
		BaseEjectionTime:    c.BaseEjectionTime.Std(),
		MaxEjectionTime:     c.MaxEjectionTime.Std(),
		MaxEjectionPercent:  c.MaxEjectionPercent,
	}
}

func (c *OutlierDetectionConfig) validate(path string, errs *ValidationError) {
	if err := c.outlierConfig().Validate(); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			name, msg, _ := strings.Cut(strings.TrimPrefix(line, "outlier_detection."), ": ")
			errs.add(path+"."+name, msg)
		}
	}
}

func (c *RetryConfig) validate(path string, errs *ValidationError) {
	if c.Attempts < 0 || c.Attempts > 10 {
		errs.add(path+".attempts", fmt.Sprintf("%d must be between 0 and 10", c.Attempts))
	}
	if c.Backoff < 0 {
		errs.add(path+".backoff", "must not be negative")
	}
	if c.MaxBackoff < 0 {
		errs.add(path+".max_backoff", "must not be negative")
	} else if c.MaxBackoff > 0 && c.MaxBackoff < c.Backoff {
		errs.add(path+".max_backoff", fmt.Sprintf("%s must not be shorter than backoff (%s)", c.MaxBackoff, c.Backoff))
	}
	for i, on := range c.On {
		if !validRetryOn(on) {
			errs.add(fmt.Sprintf("%s.on[%d]", path, i), fmt.Sprintf("unknown condition %q; want connect_error, reset, timeout or a status code 400-599", on))
		}
	}
	if c.PerTryTimeout < 0 {
		errs.add(path+".per_try_timeout", "must not be negative")
	}
	if c.BudgetPercent < 0 || c.BudgetPercent > 100 {
		errs.add(path+".budget_percent", fmt.Sprintf("%d must be between 1 and 100 (0 takes the default, %d)", c.BudgetPercent, DefaultRetryBudgetPercent))
	}
	if c.MinConcurrency != nil && *c.MinConcurrency < 0 {
		errs.add(path+".min_concurrency", "must not be negative")
	}
	if c.MaxReplayBytes < 0 {
		errs.add(path+".max_replay_bytes", "must not be negative")
	}
}

func validRetryOn(on string) bool {
	switch on {
	case RetryOnConnectError, RetryOnReset, RetryOnTimeout:
		return true
	}
	code, err := strconv.Atoi(on)
	return err == nil && code >= 400 && code <= 599 && strconv.Itoa(code) == on
}
