package orchestrator

import (
	"fmt"
	"time"
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
	// breaker. Default 5. It and FailureRateThreshold are two modes of one
	// breaker: a section sets one or the other, and an endpoint that sets
	// one does not inherit the other from the global section.
	FailureThreshold int `json:"failure_threshold,omitempty" yaml:"failure_threshold,omitempty"`
	// FailureRateThreshold, a percentage from 1 to 100, switches the breaker
	// to failure-rate mode (failsafe-go's time-based thresholding): it opens
	// when at least this share of the requests of the last
	// FailureThresholdingPeriod failed, once that period has seen at least
	// FailureExecutionThreshold requests. Zero (the default) keeps the
	// consecutive-failures mode.
	FailureRateThreshold int `json:"failure_rate_threshold,omitempty" yaml:"failure_rate_threshold,omitempty"`
	// FailureExecutionThreshold is the fewest requests in the period before
	// the failure rate is judged, so that two failures of the first three
	// requests do not open the breaker. Failure-rate mode only; default 10.
	FailureExecutionThreshold int `json:"failure_execution_threshold,omitempty" yaml:"failure_execution_threshold,omitempty"`
	// FailureThresholdingPeriod is the rolling window the failure rate is
	// measured over. Failure-rate mode only; default 1m.
	FailureThresholdingPeriod Duration `json:"failure_thresholding_period,omitempty" yaml:"failure_thresholding_period,omitempty"`
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
	// The two modes replace each other: a section that chooses one does
	// not take the other's threshold from base, so that an endpoint can ask
	// for a failure rate under a global failure_threshold (and back).
	switch {
	case c.FailureThreshold != 0, c.FailureRateThreshold != 0:
	default:
		c.FailureThreshold = base.FailureThreshold
		c.FailureRateThreshold = base.FailureRateThreshold
	}
	// The rate's window and minimum only ever apply to a rate, so they are
	// inherited in either mode: a global section may set them for the
	// endpoints that choose a rate.
	if c.FailureExecutionThreshold == 0 {
		c.FailureExecutionThreshold = base.FailureExecutionThreshold
	}
	if c.FailureThresholdingPeriod == 0 {
		c.FailureThresholdingPeriod = base.FailureThresholdingPeriod
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
	c = c.merge(CircuitBreakerConfig{
		FailureThreshold: DefaultFailureThreshold,
		ResetTimeout:     Duration(DefaultResetTimeout),
		HalfOpenRequests: DefaultHalfOpenRequests,
		FallbackStrategy: FallbackErrorResponse,
	})
	if c.FailureExecutionThreshold == 0 {
		c.FailureExecutionThreshold = DefaultFailureExecutionThreshold
	}
	if c.FailureThresholdingPeriod == 0 {
		c.FailureThresholdingPeriod = Duration(DefaultFailureThresholdingPeriod)
	}
	return c
}

func (c CircuitBreakerConfig) validate(path string, errs *ValidationError) {
	if c.FailureThreshold < 0 {
		errs.add(path+".failure_threshold", "must be > 0")
	}
	if c.FailureRateThreshold < 0 || c.FailureRateThreshold > 100 {
		errs.add(path+".failure_rate_threshold", fmt.Sprintf("%d is not a percentage; want 1 to 100", c.FailureRateThreshold))
	}
	if c.FailureThreshold != 0 && c.FailureRateThreshold != 0 {
		errs.add(path+".failure_rate_threshold", "set together with failure_threshold: a breaker counts either consecutive failures (failure_threshold) or a failure rate (failure_rate_threshold), not both")
	}
	if c.FailureExecutionThreshold < 0 {
		errs.add(path+".failure_execution_threshold", "must be > 0")
	}
	if c.FailureThresholdingPeriod < 0 {
		errs.add(path+".failure_thresholding_period", "must not be negative")
	} else if c.FailureThresholdingPeriod != 0 && c.FailureThresholdingPeriod.Std() < time.Second {
		errs.add(path+".failure_thresholding_period", "must be at least 1s")
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

// Defaults applied when a field is left at its zero value. They match the
// reference server's documented defaults (docs/DESIGN.md, "Health, breakers, policies").
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
	DefaultMaxHeaderCount     = 100
	// DefaultFailureExecutionThreshold and DefaultFailureThresholdingPeriod
	// apply to a breaker in failure-rate mode: at least 10 requests in a
	// rolling minute before a rate is judged (Resilience4j's and
	// failsafe-go's examples use windows of this order).
	DefaultFailureExecutionThreshold = 10
	DefaultFailureThresholdingPeriod = time.Minute
)
