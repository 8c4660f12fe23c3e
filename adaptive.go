package orchestrator

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/failsafe-go/failsafe-go/adaptivelimiter"
)

// AdaptiveConcurrencyConfig turns on adaptive concurrency limiting for an
// endpoint: failsafe-go's adaptive limiter watches the latency of the
// upstream's answers and lowers the number of requests it lets through at
// once when latency climbs (a queue forming at the backend), raising it
// again as latency recovers. A request over the limit is shed at once: 503
// "load-shed" with Retry-After, or the endpoint's fallback. Used as the
// global default (WithAdaptiveConcurrency) it applies to every endpoint,
// each with a limiter of its own; an endpoint's section is merged over it
// field by field.
//
// The latency sample of a request is the time to the upstream's response
// headers, when its permit goes back: a long download or a stream does not
// read as a slow backend, and an upgraded connection or an event stream is
// no sample at all. A request that got no response (a transport error, a
// timeout, a refusal) gives its permit back unsampled.
type AdaptiveConcurrencyConfig struct {
	// Disabled turns the limiter off for this endpoint (under a global
	// section). Nil inherits; the default, once a section exists, is on.
	Disabled *bool `json:"disabled,omitempty" yaml:"disabled,omitempty"`
	// MinLimit is the fewest requests let through at once. Default 1.
	MinLimit int `json:"min_limit,omitempty" yaml:"min_limit,omitempty"`
	// MaxLimit is the most requests let through at once. Default 1000.
	MaxLimit int `json:"max_limit,omitempty" yaml:"max_limit,omitempty"`
	// InitialLimit is where the limit starts. Default 20.
	InitialLimit int `json:"initial_limit,omitempty" yaml:"initial_limit,omitempty"`
}

// The adaptive limiter's defaults.
const (
	DefaultAdaptiveMinLimit     = 1
	DefaultAdaptiveMaxLimit     = 1000
	DefaultAdaptiveInitialLimit = 20
)

// merge returns c with every zero field taken from base.
func (c AdaptiveConcurrencyConfig) merge(base AdaptiveConcurrencyConfig) AdaptiveConcurrencyConfig {
	if c.Disabled == nil {
		c.Disabled = base.Disabled
	}
	if c.MinLimit == 0 {
		c.MinLimit = base.MinLimit
	}
	if c.MaxLimit == 0 {
		c.MaxLimit = base.MaxLimit
	}
	if c.InitialLimit == 0 {
		c.InitialLimit = base.InitialLimit
	}
	return c
}

func (c AdaptiveConcurrencyConfig) withDefaults() AdaptiveConcurrencyConfig {
	return c.merge(AdaptiveConcurrencyConfig{MinLimit: DefaultAdaptiveMinLimit, MaxLimit: DefaultAdaptiveMaxLimit, InitialLimit: DefaultAdaptiveInitialLimit})
}

func (c AdaptiveConcurrencyConfig) validate(path string, errs *ValidationError) {
	for _, f := range []struct {
		name string
		v    int
	}{{"min_limit", c.MinLimit}, {"max_limit", c.MaxLimit}, {"initial_limit", c.InitialLimit}} {
		if f.v < 0 {
			errs.add(path+"."+f.name, "must not be negative")
		}
	}
	if c.MinLimit > 0 && c.MaxLimit > 0 && c.MinLimit > c.MaxLimit {
		errs.add(path+".min_limit", fmt.Sprintf("%d is above max_limit %d", c.MinLimit, c.MaxLimit))
	}
	if c.InitialLimit > 0 && (c.MinLimit > 0 && c.InitialLimit < c.MinLimit || c.MaxLimit > 0 && c.InitialLimit > c.MaxLimit) {
		errs.add(path+".initial_limit", fmt.Sprintf("%d is outside min_limit..max_limit", c.InitialLimit))
	}
}

// adaptivePlan is a route's adaptive limiter; nil without one.
type adaptivePlan struct {
	cfg     AdaptiveConcurrencyConfig // merged, defaults applied
	limiter adaptivelimiter.AdaptiveLimiter[*http.Response]
	// shed counts the requests refused, for the metrics; it carries over
	// config changes of the endpoint.
	shed *atomic.Uint64
}

// newAdaptivePlan builds the route's limiter from its merged section, or
// returns nil when it has none or it is disabled. A limiter whose settings
// did not change is kept with what it has learnt.
func newAdaptivePlan(own *AdaptiveConcurrencyConfig, global *AdaptiveConcurrencyConfig, old *adaptivePlan) *adaptivePlan {
	if own == nil && global == nil {
		return nil
	}
	var cfg AdaptiveConcurrencyConfig
	if global != nil {
		cfg = *global
	}
	if own != nil {
		cfg = own.merge(cfg)
	}
	cfg = cfg.withDefaults()
	if cfg.Disabled != nil && *cfg.Disabled {
		return nil
	}
	if old != nil && sameJSON(old.cfg, cfg) {
		return old
	}
	p := &adaptivePlan{cfg: cfg, shed: &atomic.Uint64{}}
	if old != nil {
		p.shed = old.shed
	}
	p.limiter = adaptivelimiter.NewBuilder[*http.Response]().
		WithLimits(uint(cfg.MinLimit), uint(cfg.MaxLimit), uint(cfg.InitialLimit)).
		Build()
	return p
}

// releasePermit gives a request's adaptive permit back once the upstream
// answered (or could not): with a latency sample for an ordinary response,
// without one for an upgrade, an event stream or no response at all.
func releasePermit(p adaptivelimiter.Permit, resp *http.Response, err error) {
	if p == nil {
		return
	}
	if err != nil || resp.StatusCode == http.StatusSwitchingProtocols ||
		strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		p.Drop()
		return
	}
	p.Record()
}
