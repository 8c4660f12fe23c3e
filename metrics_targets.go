package orchestrator

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// This file is the metrics of several targets per endpoint and of retries.
// They are written only for the endpoints that have them (a targets list,
// load_balancing or outlier_detection; a retry section), so an endpoint
// with one url and no retries shows exactly the series it always did. The
// target label is bounded by configuration (an endpoint lists at most 1024
// targets), never by traffic.

// The families of targets and retries.
const (
	metricTargetRequests = "orchestrator_target_requests_total"
	metricTargetErrors   = "orchestrator_target_upstream_errors_total"
	metricTargetEject    = "orchestrator_target_ejections_total"
	metricTargetEligible = "orchestrator_target_eligible"
	metricTargetInFlight = "orchestrator_target_requests_in_flight"
	metricRetryAttempts  = "orchestrator_retry_attempts_total"
	metricRetried        = "orchestrator_retried_requests_total"
	metricRetryBudget    = "orchestrator_retry_budget_exceeded_total"
	metricRateLimited    = "orchestrator_rate_limited_total"
	metricAdaptiveLimit  = "orchestrator_adaptive_concurrency_limit"
	metricLoadShed       = "orchestrator_load_shed_total"
)

func init() {
	for name, f := range map[string]family{
		metricTargetRequests: {"counter", "Attempts sent to a target of an endpoint (its selections, retries included), by endpoint and target."},
		metricTargetErrors:   {"counter", "Attempts to a target that failed before a response, by endpoint, target and kind (timeout, refused, reset, dns, tls, other)."},
		metricTargetEject:    {"counter", "Times outlier detection ejected a target of an endpoint."},
		metricTargetEligible: {"gauge", "Whether a target can take a new request: 1 eligible, 0 drained, unhealthy, ejected or breaker open."},
		metricTargetInFlight: {"gauge", "Attempts a target is serving at the moment of the scrape."},
		metricRetryAttempts:  {"counter", "Retries sent, by endpoint and the target they went to."},
		metricRetried:        {"counter", "Requests that were retried, by endpoint and outcome: succeeded (the final answer was not a retry condition) or exhausted (it still was)."},
		metricRetryBudget:    {"counter", "Retries the retry budget refused, by endpoint."},
		metricRateLimited:    {"counter", "Requests an endpoint's rate limit refused (answered 429), by endpoint; only for endpoints with a rate limit."},
		metricAdaptiveLimit:  {"gauge", "The adaptive concurrency limit of an endpoint now; only for endpoints with adaptive_concurrency."},
		metricLoadShed:       {"counter", "Requests an endpoint's adaptive concurrency limit shed (503 load-shed), by endpoint; only for endpoints with adaptive_concurrency."},
	} {
		gatewayFamilies[name] = f
	}
}

// targetStats are one target's counters. They carry over a config change
// that keeps the target, as its other state does.
type targetStats struct {
	requests atomic.Uint64
	retries  atomic.Uint64
	errors   [len(upstreamErrorKinds)]atomic.Uint64
	timeline lazyTimeline // attempts of the last 15 minutes (targets lists only)
}

// retryStats are an endpoint's retry counters. They live on its retry plan
// and carry over a config change that keeps retries on.
type retryStats struct {
	succeeded, exhausted, budget atomic.Uint64
}

// countAttempt counts an attempt to up, a retry when retry is set, and its
// failure kind when err is a failure of the upstream's.
func (up *upstream) countAttempt(retry bool, err error, failed bool) {
	s := up.stats()
	if s == nil {
		return
	}
	s.requests.Add(1)
	if retry {
		s.retries.Add(1)
	}
	if err != nil && failed {
		s.errors[classifyUpstreamError(err, false)].Add(1)
	}
}

// countRetried counts a request's retry outcome.
func (st *proxyState) countRetried(budgetRefused bool, resp *http.Response, err error) {
	r := st.route.retry.stats
	if budgetRefused {
		r.budget.Add(1)
	}
	if st.attempts <= 1 {
		return
	}
	if err == nil && !st.route.retry.statuses.has(resp.StatusCode) {
		r.succeeded.Add(1)
	} else {
		r.exhausted.Add(1)
	}
}

// writeTargetFamilies writes the retry and target families of the routes
// that have them, in family name order (they fall between
// orchestrator_requests_total and orchestrator_upstream_errors_total).
func (g *gatewayMetrics) writeTargetFamilies(e *expositionWriter, routes []*route) {
	var multi, retrying []*route
	for _, rt := range routes {
		if rt.set != nil {
			multi = append(multi, rt)
		}
		if rt.retry != nil {
			retrying = append(retrying, rt)
		}
	}
	if len(retrying) > 0 {
		e.describe(metricRetried)
		for _, rt := range retrying {
			r := rt.retry.stats
			e.uint(metricRetried, "", rt.ep.ID, r.exhausted.Load(), `,outcome="exhausted"`)
			e.uint(metricRetried, "", rt.ep.ID, r.succeeded.Load(), `,outcome="succeeded"`)
		}
	}
	targets := func(family string, list []*route, write func(rt *route, i int, up *upstream, target string)) {
		if len(list) == 0 {
			return
		}
		e.describe(family)
		for _, rt := range list {
			for i, up := range rt.targets {
				write(rt, i, up, strconv.Quote(up.id))
			}
			e.flushIfFull()
		}
	}
	targets(metricRetryAttempts, retrying, func(rt *route, _ int, up *upstream, target string) {
		e.uint(metricRetryAttempts, "", rt.ep.ID, up.stats().retries.Load(), `,target=`, target)
	})
	if len(retrying) > 0 {
		e.describe(metricRetryBudget)
		for _, rt := range retrying {
			e.uint(metricRetryBudget, "", rt.ep.ID, rt.retry.stats.budget.Load())
		}
	}
	targets(metricTargetEligible, multi, func(rt *route, _ int, up *upstream, target string) {
		v := uint64(0)
		if up.Weight() > 0 && up.Eligible() {
			v = 1
		}
		e.uint(metricTargetEligible, "", rt.ep.ID, v, `,target=`, target)
	})
	now := time.Now()
	targets(metricTargetEject, multi, func(rt *route, i int, up *upstream, target string) {
		var n uint64
		if d := rt.set.outlier; d != nil {
			n = d.State(i, now).Ejections
		}
		e.uint(metricTargetEject, "", rt.ep.ID, n, `,target=`, target)
	})
	targets(metricTargetInFlight, multi, func(rt *route, _ int, up *upstream, target string) {
		e.uint(metricTargetInFlight, "", rt.ep.ID, uint64(max(up.inFlight.Load(), 0)), `,target=`, target)
	})
	targets(metricTargetRequests, multi, func(rt *route, _ int, up *upstream, target string) {
		e.uint(metricTargetRequests, "", rt.ep.ID, up.stats().requests.Load(), `,target=`, target)
	})
	targets(metricTargetErrors, multi, func(rt *route, _ int, up *upstream, target string) {
		for _, k := range upstreamErrorOrder {
			e.uint(metricTargetErrors, "", rt.ep.ID, up.stats().errors[k].Load(), `,kind="`, upstreamErrorKinds[k], `",target=`, target)
		}
	})
}
