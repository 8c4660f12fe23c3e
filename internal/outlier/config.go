package outlier

import (
	"errors"
	"fmt"
	"time"
)

// The defaults, Envoy's. DefaultMaxEjectionTime is raised to the base
// ejection time when that is longer, as Envoy does.
const (
	// DefaultConsecutiveFailures is the failures in a row that eject a target.
	DefaultConsecutiveFailures = 5
	// DefaultBaseEjectionTime is the first ejection's length.
	DefaultBaseEjectionTime = 30 * time.Second
	// DefaultMaxEjectionTime caps an ejection's length.
	DefaultMaxEjectionTime = 5 * time.Minute
	// DefaultMaxEjectionPercent is the share of an endpoint's targets that
	// may be ejected at once (Envoy's default, 10%); see Config.
	DefaultMaxEjectionPercent = 10
)

// Config is an endpoint's outlier_detection section. Its zero value is the
// defaults (detection on, Envoy's numbers). It holds plain Go types, not
// the gateway's config types, so that the gateway maps its own section
// onto it.
type Config struct {
	// ConsecutiveFailures is how many failures in a row eject a target
	// (consecutive_failures). Nil means DefaultConsecutiveFailures (5);
	// 0 turns outlier detection off. A pointer because 0 is meaningful.
	ConsecutiveFailures *int
	// BaseEjectionTime is the first ejection's length; the n-th ejection
	// in a row lasts n times as long (base_ejection_time). It is also the
	// decay period: each full BaseEjectionTime a target stays in service
	// takes one off its multiplier. 0 means DefaultBaseEjectionTime.
	BaseEjectionTime time.Duration
	// MaxEjectionTime caps one ejection's length (max_ejection_time). 0
	// means DefaultMaxEjectionTime, or BaseEjectionTime when that is
	// longer (Envoy's rule). Set explicitly, it must not be shorter than
	// BaseEjectionTime.
	MaxEjectionTime time.Duration
	// MaxEjectionPercent is the largest share of the endpoint's targets
	// ejected at once, 1-100 (max_ejection_percent). 0 means
	// DefaultMaxEjectionPercent. The number of targets it allows is
	// floor(targets × percent / 100), but at least 1: one target can
	// always be ejected, so 50% of 1 target is 1 and 10% of 3 is 1. This
	// is Envoy's comparison ((ejected+1)/targets ≤ percent) with its
	// always_eject_one_host turned on.
	MaxEjectionPercent int
}

// Enabled reports whether the config ejects anything (consecutive_failures
// is not 0).
func (c Config) Enabled() bool {
	return c.ConsecutiveFailures == nil || *c.ConsecutiveFailures > 0
}

// WithDefaults returns c with every unset field at its default. It does not
// validate: call Validate first.
func (c Config) WithDefaults() Config {
	if c.ConsecutiveFailures == nil {
		n := DefaultConsecutiveFailures
		c.ConsecutiveFailures = &n
	}
	if c.BaseEjectionTime == 0 {
		c.BaseEjectionTime = DefaultBaseEjectionTime
	}
	if c.MaxEjectionTime == 0 {
		c.MaxEjectionTime = max(DefaultMaxEjectionTime, c.BaseEjectionTime)
	}
	if c.MaxEjectionPercent == 0 {
		c.MaxEjectionPercent = DefaultMaxEjectionPercent
	}
	return c
}

// FieldError is one problem with one field of the outlier_detection
// section. Field is the path inside the endpoint, such as
// "outlier_detection.max_ejection_percent"; the gateway prefixes the
// endpoint's own path ("endpoints[2].").
type FieldError struct {
	Field   string
	Message string
}

// Error returns "field: message".
func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Validate returns nil or every problem of c at once, joined
// (errors.Join); each joined error is a *FieldError.
func (c Config) Validate() error {
	var errs []error
	add := func(field, msg string) {
		errs = append(errs, &FieldError{Field: "outlier_detection." + field, Message: msg})
	}
	if c.ConsecutiveFailures != nil && *c.ConsecutiveFailures < 0 {
		add("consecutive_failures", fmt.Sprintf("%d must be >= 0 (0 turns ejection off)", *c.ConsecutiveFailures))
	}
	if c.BaseEjectionTime < 0 {
		add("base_ejection_time", fmt.Sprintf("%s must not be negative", c.BaseEjectionTime))
	}
	switch {
	case c.MaxEjectionTime < 0:
		add("max_ejection_time", fmt.Sprintf("%s must not be negative", c.MaxEjectionTime))
	case c.MaxEjectionTime > 0 && c.BaseEjectionTime >= 0:
		if base := c.WithDefaults().BaseEjectionTime; c.MaxEjectionTime < base {
			add("max_ejection_time", fmt.Sprintf("%s must not be shorter than base_ejection_time (%s)", c.MaxEjectionTime, base))
		}
	}
	if c.MaxEjectionPercent < 0 || c.MaxEjectionPercent > 100 {
		add("max_ejection_percent", fmt.Sprintf("%d must be between 1 and 100 (0 takes the default, %d)", c.MaxEjectionPercent, DefaultMaxEjectionPercent))
	}
	return errors.Join(errs...)
}

// MaxEjected returns how many of targets may be ejected at once under
// percent: floor(targets × percent / 100), at least 1 when there is a
// target, at most targets.
func MaxEjected(targets, percent int) int {
	if targets <= 0 {
		return 0
	}
	n := targets * percent / 100
	return min(max(n, 1), targets)
}
