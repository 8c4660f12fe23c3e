package orchestrator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/orchestrator-go/orchestrator/internal/ratelimit"
)

// RateLimitConfig is one rate limit: requests per second with a burst, for
// the whole endpoint or per key. A request over it is answered 429
// "rate-limited" with Retry-After and the RateLimit-Policy and RateLimit
// headers of draft-ietf-httpapi-ratelimit-headers-09; it never falls
// back.
type RateLimitConfig struct {
	// RequestsPerSecond is the sustained rate. Required, above 0.
	RequestsPerSecond float64 `json:"requests_per_second" yaml:"requests_per_second"`
	// Burst is the requests admitted at once on a full bucket. Default:
	// RequestsPerSecond rounded up.
	Burst int `json:"burst,omitempty" yaml:"burst,omitempty"`
	// Key splits the limit: "none" (the whole endpoint; default),
	// "client_ip" (the client's address as trusted_proxies reveal it,
	// IPv6 per /64) or "header:NAME" (each value of the header; a request
	// without it shares one bucket). A header the client chooses is no
	// protection alone: every new value gets a fresh bucket, so combine it
	// with a limit for the whole endpoint.
	Key string `json:"key,omitempty" yaml:"key,omitempty"`
	// MaxKeys bounds a keyed limit's memory: past it the least recently
	// seen keys are forgotten. Default 100000.
	MaxKeys int `json:"max_keys,omitempty" yaml:"max_keys,omitempty"`
}

// DefaultRateLimitMaxKeys is a keyed limit's max_keys when none is set.
const DefaultRateLimitMaxKeys = 100_000

// RateLimits is an endpoint's rate limits, all of which apply. In YAML and
// JSON it is one limit (a mapping) or a list of them.
type RateLimits []RateLimitConfig

// UnmarshalJSON takes one limit or a list. Unknown fields are refused,
// as the admin API refuses them everywhere else (a method of its own would
// otherwise drop its decoder's strictness).
func (r *RateLimits) UnmarshalJSON(b []byte) error {
	t := bytes.TrimSpace(b)
	if bytes.Equal(t, []byte("null")) {
		*r = nil
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(t))
	dec.DisallowUnknownFields()
	if len(t) > 0 && t[0] == '[' {
		var list []RateLimitConfig
		if err := dec.Decode(&list); err != nil {
			return err
		}
		*r = list
		return nil
	}
	var one RateLimitConfig
	if err := dec.Decode(&one); err != nil {
		return err
	}
	*r = RateLimits{one}
	return nil
}

// MarshalJSON writes one limit as a mapping, several as a list, as they
// are usually written.
func (r RateLimits) MarshalJSON() ([]byte, error) {
	if len(r) == 1 {
		return json.Marshal(r[0])
	}
	return json.Marshal([]RateLimitConfig(r))
}

// UnmarshalYAML takes one limit or a list (goccy/go-yaml's
// InterfaceUnmarshaler). It decodes the generic value and reads it as
// JSON: the config loader has already checked every key and type against
// RateLimitConfig, with their line and column, and a generic value is what
// its fast decoder hands over.
func (r *RateLimits) UnmarshalYAML(unmarshal func(any) error) error {
	var v any
	if err := unmarshal(&v); err != nil {
		return err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("rate_limit: %w", err)
	}
	return r.UnmarshalJSON(raw)
}

// field names limit i as its config spells it: rate_limit for a single
// mapping, rate_limit[i] in a list.
func (r RateLimits) field(path string, i int) string {
	if len(r) == 1 {
		return path
	}
	return fmt.Sprintf("%s[%d]", path, i)
}

func (r RateLimits) validate(path string, errs *ValidationError) {
	for i, l := range r {
		f := r.field(path, i)
		if !(l.RequestsPerSecond > 0) || l.RequestsPerSecond > 1e9 {
			errs.add(f+".requests_per_second", "must be above 0 (and at most 1e9)")
		}
		if l.Burst < 0 {
			errs.add(f+".burst", "must not be negative")
		}
		if l.MaxKeys < 0 {
			errs.add(f+".max_keys", "must not be negative")
		}
		if _, err := parseRateKey(l.Key); err != nil {
			errs.add(f+".key", err.Error())
		}
	}
}

// rateKey is what a keyed limit keys on.
type rateKey struct {
	clientIP bool
	header   string // canonical; "" for client_ip or none
}

func parseRateKey(s string) (rateKey, error) {
	switch {
	case s == "" || s == "none":
		return rateKey{}, nil
	case s == "client_ip":
		return rateKey{clientIP: true}, nil
	case strings.HasPrefix(s, "header:"):
		name := strings.TrimPrefix(s, "header:")
		if !isToken(name) {
			return rateKey{}, fmt.Errorf("%q: %q is not a valid header name", s, name)
		}
		return rateKey{header: http.CanonicalHeaderKey(name)}, nil
	}
	return rateKey{}, fmt.Errorf("unknown key %q; want none, client_ip or header:NAME", s)
}

// rateLimiter is one configured limit, built for the hot path.
type rateLimiter struct {
	cfg    RateLimitConfig
	name   string   // the policy's name in the RateLimit headers, quoted
	policy []string // its RateLimit-Policy value, fixed: built once, shared
	key    rateKey
	bucket *ratelimit.Bucket // unkeyed
	keyed  *ratelimit.Keyed  // keyed
	limit  ratelimit.Limit
}

// rateLimitPlan is a route's limits; nil without any.
type rateLimitPlan struct {
	limiters []*rateLimiter
	// limited counts the requests refused, for the metrics; it carries
	// over config changes of the endpoint.
	limited *atomic.Uint64
}

// newRateLimitPlan builds the route's limiters, keeping the state of those
// whose settings did not change: a reload must not refill a bucket, or a
// reload a second would bypass the limit.
func newRateLimitPlan(limits RateLimits, old *rateLimitPlan) *rateLimitPlan {
	if len(limits) == 0 {
		return nil
	}
	p := &rateLimitPlan{limited: &atomic.Uint64{}}
	if old != nil {
		p.limited = old.limited
	}
	for i, cfg := range limits {
		name := "default"
		if len(limits) > 1 {
			name = "limit" + strconv.Itoa(i+1)
		}
		if old != nil {
			if kept := old.find(cfg); kept != nil {
				l := &rateLimiter{cfg: cfg, key: kept.key, bucket: kept.bucket, keyed: kept.keyed, limit: kept.limit}
				l.setName(name)
				p.limiters = append(p.limiters, l)
				continue
			}
		}
		key, _ := parseRateKey(cfg.Key) // validated
		burst := cfg.Burst
		if burst == 0 {
			burst = int(cfg.RequestsPerSecond + 0.999999)
		}
		l := &rateLimiter{cfg: cfg, key: key, limit: ratelimit.NewLimit(cfg.RequestsPerSecond, burst)}
		l.setName(name)
		if key == (rateKey{}) {
			l.bucket = ratelimit.NewBucket(l.limit)
		} else {
			maxKeys := cfg.MaxKeys
			if maxKeys == 0 {
				maxKeys = DefaultRateLimitMaxKeys
			}
			l.keyed = ratelimit.NewKeyed(l.limit, maxKeys)
		}
		p.limiters = append(p.limiters, l)
	}
	return p
}

// setName names the limiter in the RateLimit headers and builds its
// RateLimit-Policy value, which no request changes.
func (l *rateLimiter) setName(name string) {
	l.name = strconv.Quote(name)
	window := int64(l.limit.Window() / time.Second)
	l.policy = []string{l.name + ";q=" + strconv.Itoa(l.limit.Burst()) + ";w=" + strconv.FormatInt(window, 10)}[:1:1]
}

// find returns the limiter built from the same settings, or nil.
func (p *rateLimitPlan) find(cfg RateLimitConfig) *rateLimiter {
	for _, l := range p.limiters {
		if l.cfg == cfg {
			return l
		}
	}
	return nil
}

// rateVerdict is a request's admission by every limit of its route.
type rateVerdict struct {
	allowed bool
	// worst is the decision of the limit with the fewest requests left
	// (or the refusing one with the longest wait): the one the RateLimit
	// header reports.
	worst ratelimit.Decision
	limit *rateLimiter
}

// admit asks the route's limits. A request one of them refuses takes no
// token from the others: with several limits each is asked first without
// taking (a new header value must not drain the endpoint's own limit by
// being refused), then each takes its token. Two requests racing between
// the two steps may both pass the first and one be refused in the second,
// after earlier limits gave it their token; the limits stay limits.
func (p *rateLimitPlan) admit(o *Orchestrator, r *http.Request, now time.Time) rateVerdict {
	keys := [4]string{}
	if len(p.limiters) > 1 {
		for i, l := range p.limiters {
			var d ratelimit.Decision
			if l.bucket != nil {
				d = l.bucket.Peek(now)
			} else {
				d = l.keyed.Peek(l.keyOf(o, r, keys[:], i), now)
			}
			if !d.Allowed {
				return rateVerdict{worst: d, limit: l}
			}
		}
	}
	v := rateVerdict{allowed: true}
	for i, l := range p.limiters {
		var d ratelimit.Decision
		if l.bucket != nil {
			d = l.bucket.Allow(now)
		} else {
			d = l.keyed.Allow(l.keyOf(o, r, keys[:], i), now)
		}
		if !d.Allowed {
			return rateVerdict{worst: d, limit: l}
		}
		if v.limit == nil || d.Remaining < v.worst.Remaining {
			v.worst, v.limit = d, l
		}
	}
	return v
}

// keyOf is r's key for limit i, computed once per request for the first
// few limits.
func (l *rateLimiter) keyOf(o *Orchestrator, r *http.Request, keys []string, i int) string {
	if i < len(keys) && keys[i] != "" {
		return keys[i]
	}
	k := o.rateKeyOf(l.key, r)
	if i < len(keys) {
		keys[i] = k
	}
	return k
}

// rateKeyOf is r's key for a keyed limit.
func (o *Orchestrator) rateKeyOf(k rateKey, r *http.Request) string {
	if !k.clientIP {
		if vs := r.Header[k.header]; len(vs) > 0 {
			return "h:" + vs[0]
		}
		return "h"
	}
	return "ip:" + o.clientPrefix(r)
}

// clientPrefix is the client's address as the gateway trusts it: the
// connection's peer, or, when the peer is a trusted proxy, the nearest
// address in X-Forwarded-For that is not one; an IPv6 client is reduced to
// its /64, which one host typically owns whole.
func (o *Orchestrator) clientPrefix(r *http.Request) string {
	peer, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		peer = r.RemoteAddr
	}
	client := peer
	if o.trusted(peer) {
		hops := r.Header.Values("X-Forwarded-For")
	walk:
		for i := len(hops) - 1; i >= 0; i-- {
			parts := strings.Split(hops[i], ",")
			for j := len(parts) - 1; j >= 0; j-- {
				hop := strings.TrimSpace(parts[j])
				if hop == "" {
					continue
				}
				client = hop
				if !o.trusted(hop) {
					break walk
				}
			}
		}
	}
	addr, err := netip.ParseAddr(client)
	if err != nil {
		return client
	}
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

// setRateLimitHeaders writes the RateLimit-Policy and RateLimit fields of
// draft-ietf-httpapi-ratelimit-headers-09 for the limit that binds: its
// quota (the burst) over its window, what is left and when it is full.
func setRateLimitHeaders(h http.Header, v rateVerdict) {
	l := v.limit
	reset := int64((v.worst.Reset + time.Second - 1) / time.Second)
	h["Ratelimit-Policy"] = l.policy
	h["Ratelimit"] = []string{l.name + ";r=" + strconv.Itoa(v.worst.Remaining) + ";t=" + strconv.FormatInt(reset, 10)}
}
