package orchestrator

import (
	"net/http"

	"github.com/failsafe-go/failsafe-go"
)

// WithPoliciesForTest composes policies around every endpoint's own, as the
// retries and hedges still to come will be: tests use it to check that the
// try and the executor hold for them.
func WithPoliciesForTest(policies ...failsafe.Policy[*http.Response]) Option {
	return func(o *options) error {
		o.extraPolicies = append(o.extraPolicies, policies...)
		return nil
	}
}

// OpenBreakerForTest opens the endpoint's breakers (each target's) as
// failures would: unlike TripBreaker (an operator's hold), it lets trials
// through after reset_timeout. Tests of the half-open state use it.
func OpenBreakerForTest(o *Orchestrator, id string) {
	for _, u := range o.table.Load().route(id).targets {
		u.breaker.get().Open()
	}
}
