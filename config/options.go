package config

import (
	"fmt"
	"net/netip"

	"github.com/orchestrator-go/orchestrator"
)

// Options returns the options that give orchestrator.New the file's gateway
// settings: server.prefix, server.trusted_proxies, server.max_body_bytes,
// server.max_header_count (when set), registry.allowed_upstreams,
// metrics.labels, the circuit_breaker and health_check defaults, and the
// endpoints (source "config"). Options given to New after them override them:
//
//	o, err := orchestrator.New(append(cfg.Options(), orchestrator.WithLogger(l))...)
//
// c is validated when Options is called, so change it before, not after.
// When c is nil or invalid, the one option returned makes New fail with an
// error that matches orchestrator.ErrInvalid; for an invalid c it wraps the
// *orchestrator.ValidationError listing every problem, those of server
// settings New does not take included.
func (c *Config) Options() []orchestrator.Option {
	if c == nil {
		return []orchestrator.Option{refusal(fmt.Errorf("config: Options of a nil *Config; use Parse or Load: %w", orchestrator.ErrInvalid))}
	}
	if err := c.Validate(); err != nil {
		// The field errors name each bad value and where it is.
		return []orchestrator.Option{refusal(fmt.Errorf("config: Options: %w", err))}
	}
	var opts []orchestrator.Option
	if c.Server.Prefix != "" {
		opts = append(opts, orchestrator.WithPrefix(c.Server.Prefix))
	}
	if len(c.Server.TrustedProxies) > 0 {
		proxies := make([]netip.Prefix, len(c.Server.TrustedProxies))
		for i, s := range c.Server.TrustedProxies {
			proxies[i], _ = ParseTrustedProxy(s) // validated above
		}
		opts = append(opts, orchestrator.WithTrustedProxies(proxies...))
	}
	opts = append(opts, orchestrator.WithMaxBodyBytes(c.Server.MaxBodyBytes))
	if c.Server.MaxHeaderCount > 0 {
		opts = append(opts, orchestrator.WithMaxHeaderCount(c.Server.MaxHeaderCount))
	}
	if len(c.Registry.AllowedUpstreams) > 0 {
		opts = append(opts, orchestrator.WithAllowedUpstreams(c.Registry.AllowedUpstreams...))
	}
	if len(c.Metrics.Labels) > 0 {
		opts = append(opts, orchestrator.WithMetricsLabels(c.Metrics.Labels))
	}
	opts = append(opts,
		orchestrator.WithCircuitBreaker(c.CircuitBreaker),
		orchestrator.WithHealthCheck(c.HealthCheck),
		orchestrator.WithRateLimit(c.RateLimit...),
	)
	if c.AdaptiveConcurrency != nil {
		opts = append(opts, orchestrator.WithAdaptiveConcurrency(*c.AdaptiveConcurrency))
	}
	if len(c.Endpoints) > 0 {
		opts = append(opts, orchestrator.WithEndpoints(c.Endpoints...))
	}
	return opts
}

// Desired returns the part of the file a reload applies
// (orchestrator.Orchestrator.Apply): the circuit_breaker, health_check,
// rate_limit and adaptive_concurrency defaults and the endpoints.
func (c *Config) Desired() orchestrator.Desired {
	return orchestrator.Desired{CircuitBreaker: c.CircuitBreaker, HealthCheck: c.HealthCheck, RateLimit: c.RateLimit,
		AdaptiveConcurrency: c.AdaptiveConcurrency, Endpoints: c.Endpoints}
}

// The library's options are functions of a type it does not export
// (orchestrator.Option is func(*options) error). Type inference names that
// type from an option value, which lets this package check a value with
// the option that takes it, and refuse a Config through New's own error
// path, without the library exporting anything for either.

// refuses reports whether opt refuses its value, by applying it to a zero
// options value as New applies it to its own. It suits options that only
// check their value and record it, such as WithPrefix.
func refuses[T any](opt func(*T) error) bool {
	var scratch T
	return opt(&scratch) != nil
}

// refusalOf returns the error opt refuses its value with, or nil, applying
// it to a zero options value as refuses does.
func refusalOf[T any](opt func(*T) error) error {
	var scratch T
	return opt(&scratch)
}

// refusal returns an option that makes New fail with err.
func refusal(err error) orchestrator.Option {
	return refusing(orchestrator.WithMetrics(true), err)
}

// refusing returns a function of like's type that fails with err.
func refusing[P any](like func(P) error, err error) func(P) error {
	return func(P) error { return err }
}
