package orchestrator

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/budget"
	"github.com/failsafe-go/failsafe-go/retrypolicy"

	"github.com/orchestrator-go/orchestrator/internal/netguard"
	"github.com/orchestrator-go/orchestrator/internal/replay"
)

// This file is retries: failsafe-go's retry policy with a budget, composed
// into the endpoint's executor around the try (resilience.go), and the
// gateway's rules for when an attempt may be tried again. The try decides
// (it knows the request): an attempt that may be retried comes back to the
// policy wrapped in a retryableAttempt, which is the only failure the
// policy handles. Whatever happens, httputil gets one response: the last
// attempt's as it came, or the error that makes the gateway's problem
// document.
//
// The endpoint's timeout bounds the whole request up to the final
// response's headers: the header timeout keeps counting across attempts
// and back-offs. retry.per_try_timeout bounds one attempt.

// retryPlan is an endpoint's retry section, resolved.
type retryPlan struct {
	attempts  int
	perTry    time.Duration // 0: the whole request's timeout bounds it alone
	maxReplay int64
	onConnect bool
	onReset   bool
	onTimeout bool
	statuses  statusSet
	policy    failsafe.Policy[*http.Response]
	budget    budget.Budget
	stats     *retryStats // the endpoint's retry counters
}

// newRetryPlan resolves cfg (validated) for a route whose whole-request
// timeout is timeout; nil when retries are off.
func newRetryPlan(cfg *RetryConfig, timeout time.Duration) *retryPlan {
	if cfg == nil || cfg.Attempts <= 0 {
		return nil
	}
	p := &retryPlan{attempts: cfg.Attempts, perTry: cfg.PerTryTimeout.Std(), maxReplay: cfg.MaxReplayBytes, stats: &retryStats{}}
	if p.perTry >= timeout {
		p.perTry = 0
	}
	if p.maxReplay == 0 {
		p.maxReplay = DefaultMaxReplayBytes
	}
	on := cfg.On
	if len(on) == 0 {
		on = DefaultRetryOn
	}
	for _, c := range on {
		switch c {
		case RetryOnConnectError:
			p.onConnect = true
		case RetryOnReset:
			p.onReset = true
		case RetryOnTimeout:
			p.onTimeout = true
		default:
			code, _ := strconv.Atoi(c)
			p.statuses.add(code)
		}
	}
	backoff, maxBackoff := cfg.Backoff, cfg.MaxBackoff
	if backoff == 0 {
		backoff = DefaultRetryBackoff
	}
	if maxBackoff == 0 {
		maxBackoff = max(DefaultRetryMaxBackoff, backoff)
	}
	percent := cfg.BudgetPercent
	if percent == 0 {
		percent = DefaultRetryBudgetPercent
	}
	minConcurrency := DefaultRetryMinConcurrency
	if cfg.MinConcurrency != nil {
		minConcurrency = *cfg.MinConcurrency
	}
	p.budget = budget.NewBuilder().WithMaxRate(float64(percent) / 100).WithMinConcurrency(uint(minConcurrency)).Build()
	p.policy = retrypolicy.NewBuilder[*http.Response]().
		HandleIf(func(_ *http.Response, err error) bool {
			// The try returns the wrapper itself, never wrapped again; a
			// type assertion costs no allocation, unlike errors.As.
			_, again := err.(*retryableAttempt)
			return again
		}).
		WithMaxRetries(cfg.Attempts).
		WithBackoff(backoff.Std(), maxBackoff.Std()).
		// Full jitter's gentler cousin: each delay is its back-off ±50%,
		// so that clients retrying after one outage do not stay in step.
		WithJitterFactor(0.5).
		WithBudget(p.budget).
		ReturnLastFailure().
		Build()
	return p
}

// retryableAttempt is the try's answer for an attempt the gateway may try
// again: the response (whose body is still unread) or the error it got.
type retryableAttempt struct {
	resp *http.Response
	err  error
}

func (a *retryableAttempt) Error() string {
	if a.err != nil {
		return "retryable attempt: " + a.err.Error()
	}
	return "retryable attempt: upstream answered " + strconv.Itoa(a.resp.StatusCode)
}

// errPerTryTimeout ends one attempt that passed retry.per_try_timeout.
var errPerTryTimeout = errors.New("upstream did not answer within the retry's per_try_timeout")

// idempotent reports whether a request with method may be sent twice
// (RFC 9110 §9.2.2).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return true
	}
	return false
}

// neverReached reports whether an attempt's error shows the request never
// reached a backend: the connection was not made, the guard refused the
// address, or the target's breaker refused the attempt.
func neverReached(err error) bool {
	var (
		op      *net.OpError
		blocked *netguard.BlockedError
		open    *circuitOpenError
	)
	return errors.As(err, &open) || errors.As(err, &blocked) || (errors.As(err, &op) && op.Op == "dial")
}

// mayRetry reports whether the attempt that got resp or err may be tried
// again under plan: a condition of retry.on holds, and it is safe.
func (st *proxyState) mayRetry(plan *retryPlan, resp *http.Response, err error, perTryTimedOut bool) bool {
	if st.attempts > plan.attempts || err == errNoEligibleTarget {
		return false
	}
	if st.clientFault(err) || st.timeout.timedOut() {
		return false // the client is gone, or the whole request's time is up
	}
	reached, cond := true, false
	switch {
	case err == nil:
		cond = plan.statuses.has(resp.StatusCode)
	case perTryTimedOut:
		cond = plan.onTimeout
	case neverReached(err):
		reached, cond = false, plan.onConnect
	default:
		cond = plan.onReset
	}
	if !cond {
		return false
	}
	if reached && !idempotent(st.in.Method) && len(st.in.Header["Idempotency-Key"]) == 0 {
		return false
	}
	// A body is replayed from the tee, which holds it only up to
	// max_replay_bytes and never while an attempt is still reading it.
	return st.replay == nil || st.replay.Replayable()
}

// startRetryAttempt readies req for a retry: the previous attempt's
// response is closed and the body is the tee's replay. It returns false
// when the body cannot be replayed after all (an attempt of the previous
// try still read it).
func (st *proxyState) startRetryAttempt(req *http.Request) (*http.Request, bool) {
	if prev := st.lastAttempt; prev != nil && prev.resp != nil {
		// Closed unread: draining it would wait on a backend that sends its
		// body slowly, or never. The transport drops that connection; a
		// retry is rare enough for that not to matter.
		prev.resp.Body.Close()
	}
	st.lastAttempt = nil
	if st.replay == nil {
		return req, true
	}
	body, ok := st.replay.Replay()
	if !ok {
		return nil, false
	}
	again := *req
	again.Body = body
	return &again, true
}

// withPerTryTimeout gives req a context that passed per_try_timeout
// cancels. stop ends the timer once the attempt has its answer; done
// releases the context (at the body's close for a response).
func withPerTryTimeout(req *http.Request, d time.Duration) (_ *http.Request, timedOut func() bool, stop func(), done func()) {
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(d, func() { cancel(errPerTryTimeout) })
	return req.WithContext(ctx),
		func() bool { return context.Cause(ctx) == errPerTryTimeout },
		func() { timer.Stop() },
		func() { cancel(context.Canceled) }
}

// retried runs one attempt of a route with retries: try with the
// per-try timeout, and the answer wrapped when it may be tried again.
func (t *upstreamTransport) retried(st *proxyState, plan *retryPlan, req *http.Request) (*http.Response, error) {
	if st.attempts > 0 {
		var ok bool
		if req, ok = st.startRetryAttempt(req); !ok {
			return nil, errNotReplayable
		}
	}
	timedOut := func() bool { return false }
	if plan.perTry > 0 {
		var stop, done func()
		req, timedOut, stop, done = withPerTryTimeout(req, plan.perTry)
		defer stop()
		resp, err := t.attempt(st, req)
		if err == nil {
			resp.Body = onClose(resp.Body, done)
		} else {
			done()
		}
		return st.wrapRetryable(plan, resp, err, timedOut())
	}
	resp, err := t.attempt(st, req)
	return st.wrapRetryable(plan, resp, err, timedOut())
}

// wrapRetryable returns the attempt's answer, wrapped when it may be tried
// again.
func (st *proxyState) wrapRetryable(plan *retryPlan, resp *http.Response, err error, perTryTimedOut bool) (*http.Response, error) {
	if perTryTimedOut && err != nil {
		err = errPerTryTimeout
	}
	if !st.mayRetry(plan, resp, err, perTryTimedOut) {
		return resp, err
	}
	st.lastAttempt = &retryableAttempt{resp: resp, err: err}
	return nil, st.lastAttempt
}

// errNotReplayable ends a retry whose body the tee cannot give again.
var errNotReplayable = errors.New("the request body cannot be replayed for a retry")

// finalAnswer turns the executor's answer of a route with retries into
// the one httputil gets: the last attempt's response as it came, or its
// error. The budget refusing a retry leaves the last attempt's answer too.
// The header timeout, which counted across attempts, stops here.
func (st *proxyState) finalAnswer(resp *http.Response, err error) (*http.Response, error) {
	last, _ := err.(*retryableAttempt)
	budgetRefused := err != nil && last == nil && errors.Is(err, budget.ErrExceeded)
	if budgetRefused {
		last = st.lastAttempt
	}
	if last != nil {
		resp, err = last.resp, last.err
		st.lastAttempt = nil
	}
	st.countRetried(budgetRefused, resp, err)
	if err == nil && !st.timeout.gotHeaders() {
		resp.Body.Close()
		return nil, errUpstreamTimeout
	}
	return resp, err
}

// teeBody makes the request body of a route with retries replayable: the
// first max_replay_bytes are kept as the first attempt reads them.
func (st *proxyState) teeBody(plan *retryPlan, out *http.Request) {
	st.replay = replay.New(out.Body, plan.maxReplay)
	out.Body, _ = st.replay.Replay()
	out.GetBody = st.replay.GetBody
}
