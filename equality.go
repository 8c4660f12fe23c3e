package orchestrator

import (
	"maps"
	"slices"
)

// sameJSON compares two configuration values by their JSON form, which
// looks through the pointers (*bool) that mark "inherit" in them.
func sameJSON(a, b any) bool { return string(mustJSON(a)) == string(mustJSON(b)) }

// endpointsEqual reports whether two endpoints have the same configuration,
// as comparing their JSON forms would: pointers are compared through (two
// decodings of one file must compare equal), and an empty list or map equals
// a missing one (JSON leaves both out). Field by field rather than through
// encoding/json: a reload compares every endpoint, and marshalling both was
// a fifth of applying 10,000. TestEndpointsEqualMatchesJSON keeps it in step
// with the fields of Endpoint.
func endpointsEqual(a, b Endpoint) bool {
	return a.ID == b.ID && a.URL == b.URL && a.Name == b.Name && a.Version == b.Version &&
		slices.Equal(a.Methods, b.Methods) && a.AuthType == b.AuthType && a.Disabled == b.Disabled &&
		a.HealthCheckPath == b.HealthCheckPath && a.Timeout == b.Timeout &&
		a.MaxConcurrent == b.MaxConcurrent && a.PreserveHost == b.PreserveHost &&
		equalThrough(a.CircuitBreaker, b.CircuitBreaker, breakerConfigsEqual) &&
		equalThrough(a.HealthCheck, b.HealthCheck, healthConfigsEqual) &&
		equalThrough(a.Fallback, b.Fallback, fallbacksEqual) &&
		slices.EqualFunc(a.Targets, b.Targets, targetsEqual) &&
		equalThrough(a.LoadBalancing, b.LoadBalancing, loadBalancingEqual) &&
		equalThrough(a.OutlierDetection, b.OutlierDetection, outlierConfigsEqual) &&
		equalThrough(a.Retry, b.Retry, retryConfigsEqual) &&
		equalThrough(a.RequestHeaders, b.RequestHeaders, headerRulesEqual) &&
		equalThrough(a.ResponseHeaders, b.ResponseHeaders, headerRulesEqual) &&
		equalThrough(a.RateLimit, b.RateLimit, func(a, b *RateLimits) bool { return slices.Equal(*a, *b) }) &&
		equalThrough(a.AdaptiveConcurrency, b.AdaptiveConcurrency, func(a, b *AdaptiveConcurrencyConfig) bool {
			return boolsEqual(a.Disabled, b.Disabled) && a.MinLimit == b.MinLimit && a.MaxLimit == b.MaxLimit && a.InitialLimit == b.InitialLimit
		})
}

func headerRulesEqual(a, b *HeaderRules) bool {
	return maps.Equal(a.Set, b.Set) && maps.Equal(a.Add, b.Add) && slices.Equal(a.Remove, b.Remove)
}

func intsEqual(a, b *int) bool {
	return equalThrough(a, b, func(a, b *int) bool { return *a == *b })
}

func targetsEqual(a, b Target) bool {
	return a.ID == b.ID && a.URL == b.URL && intsEqual(a.Weight, b.Weight) &&
		equalThrough(a.TLS, b.TLS, func(a, b *TargetTLS) bool { return *a == *b })
}

// loadBalancingEqual compares a custom Selector by identity: the same
// value is the same policy.
func loadBalancingEqual(a, b *LoadBalancingConfig) bool {
	return a.Policy == b.Policy && a.HashKey == b.HashKey && a.PanicMode == b.PanicMode &&
		a.Selector == b.Selector &&
		equalThrough(a.Sticky, b.Sticky, func(a, b *StickyConfig) bool { return *a == *b })
}

func outlierConfigsEqual(a, b *OutlierDetectionConfig) bool {
	return intsEqual(a.ConsecutiveFailures, b.ConsecutiveFailures) && a.BaseEjectionTime == b.BaseEjectionTime &&
		a.MaxEjectionTime == b.MaxEjectionTime && a.MaxEjectionPercent == b.MaxEjectionPercent
}

func retryConfigsEqual(a, b *RetryConfig) bool {
	return a.Attempts == b.Attempts && a.Backoff == b.Backoff && a.MaxBackoff == b.MaxBackoff &&
		slices.Equal(a.On, b.On) && a.PerTryTimeout == b.PerTryTimeout && a.BudgetPercent == b.BudgetPercent &&
		intsEqual(a.MinConcurrency, b.MinConcurrency) && a.MaxReplayBytes == b.MaxReplayBytes
}

// equalThrough compares two pointers: both nil, or both set to equal values.
func equalThrough[T any](a, b *T, equal func(a, b *T) bool) bool {
	if a == nil || b == nil {
		return a == b
	}
	return equal(a, b)
}

func boolsEqual(a, b *bool) bool {
	return equalThrough(a, b, func(a, b *bool) bool { return *a == *b })
}

func breakerConfigsEqual(a, b *CircuitBreakerConfig) bool {
	return boolsEqual(a.Disabled, b.Disabled) && a.FailureThreshold == b.FailureThreshold &&
		a.FailureRateThreshold == b.FailureRateThreshold &&
		a.FailureExecutionThreshold == b.FailureExecutionThreshold &&
		a.FailureThresholdingPeriod == b.FailureThresholdingPeriod &&
		a.ResetTimeout == b.ResetTimeout && a.HalfOpenRequests == b.HalfOpenRequests &&
		slices.Equal(a.FailureStatuses, b.FailureStatuses) && a.FallbackStrategy == b.FallbackStrategy
}

func healthConfigsEqual(a, b *HealthCheckConfig) bool {
	return boolsEqual(a.Enabled, b.Enabled) && a.Interval == b.Interval && a.Timeout == b.Timeout &&
		a.UnhealthyThreshold == b.UnhealthyThreshold && a.HealthyThreshold == b.HealthyThreshold
}

func fallbacksEqual(a, b *FallbackConfig) bool {
	return a.Strategy == b.Strategy && a.Status == b.Status && maps.Equal(a.Headers, b.Headers) &&
		a.Body == b.Body && a.Endpoint == b.Endpoint
}
