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
