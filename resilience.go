package orchestrator

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/common"
)

// This file composes an endpoint's resilience policies into one failsafe-go
// executor around the try (one upstream round trip, see proxy.go). The
// executor runs inside the ReverseProxy's Transport, so whatever the
// policies do (refuse, and later retry or hedge), httputil writes exactly
// one response to the client.
//
// Two policies are the gateway's own, built on failsafe-go's policy
// interface and its bulkhead and circuit breaker, because a proxied
// request outlives its round trip:
//   - concurrencyLimit (max_concurrent) holds its permit until the
//     response body is closed, not only until the headers arrive:
//     failsafe-go's bulkhead policy returns it when the try returns, which
//     for a gateway would let a slow download escape the limit.
//   - breakerPolicy records an attempt whose client went away as neither
//     success nor failure (see breaker.abandon); failsafe-go's breaker
//     policy must call it one or the other.
//
// Both refuse before the try runs, with errors the ErrorHandler turns into
// 503 answers (or the endpoint's fallback).

// endpointPolicies are one route's policies and the executor composed of
// them. The executor is built on the route's first request: most of
// 10,000 endpoints may see none between two reloads.
type endpointPolicies struct {
	limit    *concurrencyLimit // nil without max_concurrent
	breaker  *breaker
	executor atomic.Pointer[failsafeExecutor]
	// extra are policies composed outside the gateway's own (tests use
	// them to stand for the retries and hedges still to come).
	extra []failsafe.Policy[*http.Response]
}

// failsafeExecutor boxes the executor for an atomic pointer.
type failsafeExecutor struct {
	failsafe.Executor[*http.Response]
}

func newEndpointPolicies(maxConcurrent int, b *breaker, extra []failsafe.Policy[*http.Response]) *endpointPolicies {
	p := &endpointPolicies{breaker: b, extra: extra}
	if maxConcurrent > 0 {
		p.limit = &concurrencyLimit{bulkhead: bulkhead.New[any](uint(maxConcurrent))}
	}
	return p
}

// get returns the executor, composing it on first use: the extra policies
// outermost, then the concurrency limit, then the breaker. The limit is
// asked before the breaker so that a request it refuses never takes one of
// the breaker's half-open trial permits.
func (p *endpointPolicies) get() failsafe.Executor[*http.Response] {
	if e := p.executor.Load(); e != nil {
		return e.Executor
	}
	policies := make([]failsafe.Policy[*http.Response], 0, len(p.extra)+2)
	policies = append(policies, p.extra...)
	if p.limit != nil {
		policies = append(policies, p.limit)
	}
	if !p.breaker.disabled {
		policies = append(policies, breakerPolicy{p.breaker})
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
		if resp := result.Result; result.Error == nil && resp != nil && resp.Body != nil {
			resp.Body = onClose(resp.Body, l.bulkhead.ReleasePermit)
		} else {
			l.bulkhead.ReleasePermit()
		}
		return result
	}
}

// breakerPolicy admits attempts through the endpoint's circuit breaker and
// records each one's outcome.
type breakerPolicy struct{ b *breaker }

// ToExecutor makes the breaker a failsafe-go policy; it is its own executor.
func (p breakerPolicy) ToExecutor(*http.Response) any { return p }

// Apply asks the breaker for a permit, runs the attempt and records it: a
// transport error, a timeout or a failure status is a failure; an attempt
// whose client went away (or sent too much) proves nothing and gives its
// permit back unrecorded.
func (p breakerPolicy) Apply(attempt attemptFunc) attemptFunc {
	return func(exec failsafe.Execution[*http.Response]) *common.PolicyResult[*http.Response] {
		if ok, wait := p.b.allow(); !ok {
			return refused(&circuitOpenError{retryAfter: wait})
		}
		result := attempt(exec)
		switch attemptOutcome(stateOf(exec.Context()), p.b, result.Result, result.Error) {
		case outcomeSuccess:
			p.b.record(false)
		case outcomeFailure:
			p.b.record(true)
		default:
			p.b.abandon()
		}
		return result
	}
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
	return errors.As(err, &open) || errors.Is(err, bulkhead.ErrFull)
}
