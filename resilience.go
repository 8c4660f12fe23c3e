package orchestrator

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/budget"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/common"
)

// This file composes an endpoint's resilience policies into one failsafe-go
// executor around the try (one upstream round trip, see proxy.go). The
// executor runs inside the ReverseProxy's Transport, so whatever the
// policies do (refuse, and later retry or hedge), httputil writes exactly
// one response to the client.
//
// concurrencyLimit (max_concurrent) is the gateway's own policy, built on
// failsafe-go's policy interface and its bulkhead, because a proxied
// request outlives its round trip: it holds its permit until the response
// body is closed, not only until the headers arrive (failsafe-go's bulkhead
// policy returns it when the try returns, which for a gateway would let a
// slow download escape the limit). It refuses before the try runs, with an
// error the ErrorHandler turns into a 503 (or the endpoint's fallback).
//
// The circuit breakers are per target, so they are not a policy around the
// try: each attempt asks the breaker of the target it chose (see
// upstreamTransport.try), and records an attempt whose client went away as
// neither success nor failure (breaker.abandon). A route without policies
// has no executor at all: its try runs directly.

// endpointPolicies are one route's policies and the executor composed of
// them. The executor is built on the route's first request: most of
// 10,000 endpoints may see none between two reloads.
type endpointPolicies struct {
	limit    *concurrencyLimit // nil without max_concurrent
	retry    failsafe.Policy[*http.Response]
	executor atomic.Pointer[failsafeExecutor]
	// extra are policies composed outside the gateway's own (tests use
	// them to stand for the retries and hedges still to come).
	extra []failsafe.Policy[*http.Response]
}

// failsafeExecutor boxes the executor for an atomic pointer.
type failsafeExecutor struct {
	failsafe.Executor[*http.Response]
}

// noPolicies is the policies of every route that has none: its try runs
// without an executor.
var noPolicies = &endpointPolicies{}

func newEndpointPolicies(maxConcurrent int, retry *retryPlan, extra []failsafe.Policy[*http.Response]) *endpointPolicies {
	if maxConcurrent <= 0 && retry == nil && len(extra) == 0 {
		return noPolicies
	}
	p := &endpointPolicies{extra: extra}
	if retry != nil {
		p.retry = retry.policy
	}
	if maxConcurrent > 0 {
		p.limit = &concurrencyLimit{bulkhead: bulkhead.New[any](uint(maxConcurrent))}
	}
	return p
}

// none reports whether there is no policy to run the try in.
func (p *endpointPolicies) none() bool { return p.limit == nil && p.retry == nil && len(p.extra) == 0 }

// get returns the executor, composing it on first use: the extra policies
// outermost, then the concurrency limit, then retries. The limit is asked before any
// target's breaker (in the try) so that a request it refuses never takes
// one of a breaker's half-open trial permits.
func (p *endpointPolicies) get() failsafe.Executor[*http.Response] {
	if e := p.executor.Load(); e != nil {
		return e.Executor
	}
	policies := make([]failsafe.Policy[*http.Response], 0, len(p.extra)+2)
	policies = append(policies, p.extra...)
	if p.limit != nil {
		policies = append(policies, p.limit)
	}
	if p.retry != nil {
		// Inside the limit: a request holds one permit across its retries.
		policies = append(policies, p.retry)
	}
	// Two first requests at once may both compose one; the first stored
	// is kept.
	p.executor.CompareAndSwap(nil, &failsafeExecutor{failsafe.With(policies...)})
	return p.executor.Load().Executor
}

type (
	attemptFunc = func(failsafe.Execution[*http.Response]) *common.PolicyResult[*http.Response]
)

// refused is the result of a policy that did not let the try run.
func refused(err error) *common.PolicyResult[*http.Response] {
	return &common.PolicyResult[*http.Response]{Error: err, Done: true}
}

// concurrencyLimit is max_concurrent: at most that many requests to the
// endpoint in flight, counted from before the round trip until the
// response body is closed (an upgraded connection's, until it ends).
type concurrencyLimit struct {
	bulkhead bulkhead.Bulkhead[any]
}

// ToExecutor makes the limit a failsafe-go policy; it is its own executor.
func (l *concurrencyLimit) ToExecutor(*http.Response) any { return l }

// Apply runs the attempt when a permit is free and hands the permit to the
// response body.
func (l *concurrencyLimit) Apply(attempt attemptFunc) attemptFunc {
	return func(exec failsafe.Execution[*http.Response]) *common.PolicyResult[*http.Response] {
		if !l.bulkhead.TryAcquirePermit() {
			return refused(bulkhead.ErrFull)
		}
		result := attempt(exec)
		if resp := clientAnswer(exec, result); resp != nil && resp.Body != nil {
			resp.Body = onClose(resp.Body, l.bulkhead.ReleasePermit)
		} else {
			l.bulkhead.ReleasePermit()
		}
		return result
	}
}

// clientAnswer is the upstream response the client will get from result,
// which holds a permit while it streams: the result's own, or when the
// retry policy ends with a failure, the last attempt's that finalAnswer
// hands on (retries ran out, or the budget refused one).
func clientAnswer(exec failsafe.Execution[*http.Response], result *common.PolicyResult[*http.Response]) *http.Response {
	if result.Error == nil {
		return result.Result
	}
	if last, ok := result.Error.(*retryableAttempt); ok {
		return last.resp
	}
	if errors.Is(result.Error, budget.ErrExceeded) {
		if st := stateOf(exec.Context()); st != nil && st.lastAttempt != nil {
			return st.lastAttempt.resp
		}
	}
	return nil
}

// circuitOpenError is the breaker's refusal.
type circuitOpenError struct {
	retryAfter time.Duration // until trial requests are let through
}

func (e *circuitOpenError) Error() string { return "circuit breaker is open" }

// attemptOutcome says how an attempt counts: for the breaker and the
// endpoint's traffic counters.
func attemptOutcome(st *proxyState, b *breaker, resp *http.Response, err error) outcome {
	if err != nil {
		if st != nil && st.clientFault(err) {
			return outcomeUnknown
		}
		return outcomeFailure
	}
	if b.isFailure(resp.StatusCode) {
		return outcomeFailure
	}
	return outcomeSuccess
}

// onClose returns body with fn run once when it is first closed. An
// upgraded connection's body (an io.ReadWriteCloser, which httputil needs
// to write to) stays one.
func onClose(body io.ReadCloser, fn func()) io.ReadCloser {
	if rwc, ok := body.(io.ReadWriteCloser); ok {
		return &closeHookConn{closeHookBody{ReadCloser: rwc, fn: fn}, rwc}
	}
	return &closeHookBody{ReadCloser: body, fn: fn}
}

type closeHookBody struct {
	io.ReadCloser
	fn   func()
	done atomic.Bool
}

func (b *closeHookBody) Close() error {
	err := b.ReadCloser.Close()
	if b.done.CompareAndSwap(false, true) {
		b.fn()
	}
	return err
}

type closeHookConn struct {
	closeHookBody
	w io.Writer
}

func (c *closeHookConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// isRefusal reports whether err is a policy's refusal, which never reached
// the upstream.
func isRefusal(err error) bool {
	var open *circuitOpenError
	return errors.As(err, &open) || errors.Is(err, bulkhead.ErrFull) || err == errNoEligibleTarget
}
