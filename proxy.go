package orchestrator

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/adaptivelimiter"
	"github.com/failsafe-go/failsafe-go/policy"

	"github.com/orchestrator-go/orchestrator/internal/balance"
	"github.com/orchestrator-go/orchestrator/internal/netguard"
	"github.com/orchestrator-go/orchestrator/internal/replay"
)

// This file is the gateway's one forwarding path: httputil.ReverseProxy,
// shared by every route, with Rewrite (the outbound URL and headers: see
// headers.go), a Transport that runs the try inside the endpoint's
// failsafe-go executor (upstreamTransport; the policies are in
// resilience.go), an ErrorHandler that answers a refusal, 502, 504 or the
// endpoint's fallback (proxyError), and a BufferPool of per-CPU copy
// buffers. httputil writes every response, upgrades (WebSocket, h2c),
// 1xx responses, trailers and event streams included. The request's
// proxyState is its context, so that the hooks find it without a
// context.WithValue.

// proxyState is the per-request state of one forwarded request. It is the
// request's context (so that the shared ReverseProxy's hooks find it without
// a context.WithValue).
type proxyState struct {
	context.Context
	cancel context.CancelCauseFunc
	// permit is the adaptive limiter's, until the answer's headers give
	// it back (releasePermit); finish drops one still held.
	permit        adaptivelimiter.Permit
	route         *route
	rest          string
	ids           reqIDs
	in            *http.Request
	allowFallback bool

	// target is the upstream the current attempt goes to; tried holds the
	// targets earlier attempts went to, and attempts counts them.
	target   *upstream
	tried    balance.Exclude
	attempts int
	// replay keeps the request body for retries (routes with retries and
	// a body only); lastAttempt is the latest attempt that may be retried.
	replay      *replay.Body
	lastAttempt *retryableAttempt
	// inFlight counts the current attempt in its target's in-flight
	// requests until its body is closed (routes with a target set).
	inFlight inFlightBody

	// status is the upstream's status.
	status int
	// resp is the response the try handed to httputil, whose body httputil
	// closes; finish closes it too, in case httputil's error paths did not.
	resp *http.Response
	// answered is the status the client got when the gateway answered
	// itself after a failed round trip (error response or fallback).
	answered int
	// bodyTooLarge is set (by the transport's writer goroutine) when the
	// client's body passed the max_body_bytes cap.
	bodyTooLarge atomic.Bool
	// bodyBroken is set when reading the client's body failed otherwise:
	// malformed chunked framing (a bare LF), or a client that hung up.
	bodyBroken atomic.Bool

	body timedBody

	// Backing arrays for the header values set on every request, so that
	// setting them allocates nothing.
	reqIDValue [1]string
	xffValue   [1]string
	xfhValue   [1]string
	traceValue [1]string

	timeout *headerTimeout
}

type proxyStateKey struct{}

// Value returns the state itself for proxyStateKey.
func (st *proxyState) Value(key any) any {
	if key == (proxyStateKey{}) {
		return st
	}
	return st.Context.Value(key)
}

func stateOf(ctx context.Context) *proxyState {
	if st, ok := ctx.(*proxyState); ok {
		return st
	}
	st, _ := ctx.Value(proxyStateKey{}).(*proxyState)
	return st
}

func (st *proxyState) finish() {
	if st.permit != nil {
		st.permit.Drop()
		st.permit = nil
	}
	st.timeout.release()
	if st.resp != nil {
		// Closing twice is harmless; a body httputil left open (an upgrade
		// it refused) would keep the concurrency permit it carries.
		st.resp.Body.Close()
	}
	st.cancel(context.Canceled)
}

type outcome uint8

// clientFault reports whether a failed round trip was the client's doing:
// it went away, or its body was too large or could not be read. Such a
// failure says nothing about the upstream.
func (st *proxyState) clientFault(err error) bool {
	if st.in.Context().Err() != nil || st.bodyTooLarge.Load() || st.bodyBroken.Load() {
		return true
	}
	if err == nil {
		return false
	}
	var tooLarge *http.MaxBytesError
	return errors.As(err, &tooLarge)
}

// timedBody restarts the header timeout on every chunk of request body read.
type timedBody struct {
	rc     io.ReadCloser
	st     *proxyState
	closed atomic.Bool
}

func (b *timedBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errReadAfterClose
	}
	n, err := b.rc.Read(p)
	if n > 0 || err == io.EOF {
		b.st.timeout.progress()
	}
	if err != nil && err != io.EOF {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			b.st.bodyTooLarge.Store(true)
		} else {
			b.st.bodyBroken.Store(true)
		}
	}
	return n, err
}

// Close does not close the client's body: the transport closes a request
// body when it cannot connect, and closing the server's body then would
// consume it, which hangs on a client waiting for 100 Continue (the reason
// httputil wraps the body the same way). The server closes it after the
// handler returns.
func (b *timedBody) Close() error {
	b.closed.Store(true)
	return nil
}

// errReadAfterClose is what a transport goroutine that outlived the handler
// gets instead of reading a body the server may be reusing.
var errReadAfterClose = errors.New("read of a request body after the proxy closed it")

func (o *Orchestrator) newReverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        o.rewrite,
		ModifyResponse: modifyResponse,
		Transport:      &upstreamTransport{base: o.transport},
		ErrorHandler:   o.proxyError,
		BufferPool:     bufferPool{},
		ErrorLog:       slog.NewLogLogger(o.routerLog.Handler(), slog.LevelWarn),
	}
}

// rewrite builds the outbound request: httputil has already removed
// hop-by-hop headers, the ones named in Connection and any client-sent
// X-Forwarded-*/Forwarded from it, and dropped unparsable query
// parameters. The URL is rebuilt from the inbound one (the raw query and
// escaped path as the client sent them) and the forwarding headers from
// the inbound ones, so that a trusted proxy's chain is kept.
func (o *Orchestrator) rewrite(pr *httputil.ProxyRequest) {
	st := stateOf(pr.In.Context())
	in, out := pr.In, pr.Out
	st.target.setURL(out.URL, st.rest, in.URL)
	o.setOutboundFields(st, in, out)
	if plan := st.route.headerPlan(); plan != nil && plan.request != nil {
		plan.request.apply(out.Header)
		if plan.request.setHost {
			out.Host = plan.request.host
		}
	}
	if out.Body != nil {
		st.body = timedBody{rc: out.Body, st: st}
		out.Body = &st.body
		if plan := st.route.retry; plan != nil && in.Body != http.NoBody {
			st.teeBody(plan, out)
		}
	}
}

// modifyResponse applies the route's response_headers to the upstream's
// response, after httputil has removed its hop-by-hop headers.
func modifyResponse(res *http.Response) error {
	if st := stateOf(res.Request.Context()); st != nil {
		st.route.applyResponseRules(res.Header)
	}
	return nil
}

// upstreamTransport is the ReverseProxy's Transport. It runs the try (one
// round trip on the shared transport) inside the endpoint's failsafe-go
// executor (resilience.go), so whatever its policies do, httputil gets one
// response or one error.
type upstreamTransport struct {
	base http.RoundTripper
}

func (t *upstreamTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	st := stateOf(req.Context())
	if st == nil {
		return t.base.RoundTrip(req)
	}
	if st.route.policies.none() {
		resp, err := t.try(st, req, nil)
		if err == nil {
			st.resp = resp
		}
		st.releasePermit(resp, err)
		return resp, err
	}
	resp, err := st.route.policies.get().WithContext(st).GetWithExecution(func(exec failsafe.Execution[*http.Response]) (*http.Response, error) {
		return t.try(st, req, exec)
	})
	if st.route.retry != nil {
		resp, err = st.finalAnswer(resp, err)
	}
	if err == nil {
		st.resp = resp
	}
	st.releasePermit(resp, err)
	return resp, err
}

// releasePermit gives the request's adaptive permit back at its final
// answer's headers.
func (st *proxyState) releasePermit(resp *http.Response, err error) {
	if st.permit != nil {
		releasePermit(st.permit, resp, err)
		st.permit = nil
	}
}

// try is one attempt: it chooses the target (another one on a retry), asks
// the target's breaker, makes the round trip (which stops the header
// timeout and records the upstream's status) and counts the outcome for
// the breaker, outlier detection and the endpoint's traffic. exec is nil
// when the route has no policies.
func (t *upstreamTransport) try(st *proxyState, req *http.Request, exec failsafe.Execution[*http.Response]) (*http.Response, error) {
	var endAttempt func()
	if exec != nil {
		if ctx := exec.Context(); ctx != context.Context(st) {
			// A policy (a timeout, a hedge) gave this attempt a context of its
			// own, which failsafe-go cancels when the execution ends: it must
			// last until the response body is closed, so that the attempt that
			// won streams to the end. The 1xx trace httputil set is kept.
			if trace := httptrace.ContextClientTrace(req.Context()); trace != nil {
				ctx = httptrace.WithClientTrace(ctx, trace)
			}
			req = req.WithContext(ctx)
			if ei, ok := exec.(policy.ExecutionInternal[*http.Response]); ok {
				endAttempt = ei.DeferCancel()
			}
		}
	}
	var (
		resp *http.Response
		err  error
	)
	if plan := st.route.retry; plan != nil {
		resp, err = t.retried(st, plan, req)
	} else {
		resp, err = t.attempt(st, req)
	}
	if endAttempt != nil {
		// The response handed on, or kept for the retry policy to judge.
		kept := resp
		var again *retryableAttempt
		if errors.As(err, &again) {
			kept = again.resp
		}
		if kept != nil {
			kept.Body = onClose(kept.Body, endAttempt)
		} else {
			endAttempt()
		}
	}
	return resp, err
}

// attempt chooses the attempt's target and makes the round trip.
func (t *upstreamTransport) attempt(st *proxyState, req *http.Request) (*http.Response, error) {
	up, req, err := st.attemptTarget(req)
	if err != nil {
		return nil, err
	}
	return t.roundTrip(st, up, req)
}

// roundTrip sends req to up through its breaker and counts the outcome.
func (t *upstreamTransport) roundTrip(st *proxyState, up *upstream, req *http.Request) (*http.Response, error) {
	b := up.breaker
	if !b.disabled {
		if ok, wait := b.allow(); !ok {
			return nil, &circuitOpenError{retryAfter: wait}
		}
	}
	set := st.route.set
	if set != nil {
		up.inFlight.Add(1)
	}
	base := t.base
	if t := up.transport(); t != nil {
		base = t
	}
	var start time.Time
	if set != nil {
		start = time.Now() // for the target's timeline
	}
	resp, err := st.received(base.RoundTrip(req))
	outcome := attemptOutcome(st, b, resp, err)
	up.countAttempt(st.attempts > 1, err, outcome == outcomeFailure)
	switch o := outcome; o {
	case outcomeSuccess, outcomeFailure:
		failed := o == outcomeFailure
		if set != nil {
			if s := up.stats(); s != nil {
				now := time.Now()
				s.timeline.record(now, now.Sub(start), failed)
			}
		}
		st.route.traffic.record(failed)
		if !b.disabled {
			b.record(failed)
		}
		if set != nil && set.outlier != nil {
			set.outlier.Record(int(up.index), failed)
		}
	default:
		if !b.disabled {
			b.abandon()
		}
	}
	if set != nil {
		if err == nil {
			resp.Body = st.trackInFlight(resp.Body, up)
		} else {
			up.inFlight.Add(-1)
		}
	}
	return resp, err
}

// attemptTarget returns the target of this attempt and req pointed at it.
// The first attempt goes to the target forward chose; a later one (a
// retry) to another eligible target where there is one, else to any
// eligible target, the same one included.
func (st *proxyState) attemptTarget(req *http.Request) (*upstream, *http.Request, error) {
	st.attempts++
	set := st.route.set
	if st.attempts == 1 || set == nil {
		return st.target, req, nil
	}
	st.tried.Add(int(st.target.index))
	i := set.pick(st.in, st.tried)
	if i < 0 {
		i = set.pick(st.in, balance.Exclude{})
	}
	if i < 0 {
		return nil, nil, errNoEligibleTarget
	}
	up := st.route.targets[i]
	if up != st.target {
		moved := *req
		moved.URL = new(url.URL)
		up.setURL(moved.URL, st.rest, st.in.URL)
		req = &moved
		st.target = up
	}
	return up, req, nil
}

// errNoEligibleTarget refuses a request (or a retry) when none of the
// endpoint's targets can take it.
var errNoEligibleTarget = errors.New("no target of the endpoint is eligible")

// received stops the header timeout, records the upstream's status and
// echoes the request id on the response. A response that arrived after the
// timeout fired is discarded: the client gets the 504 it was promised.
func (st *proxyState) received(resp *http.Response, err error) (*http.Response, error) {
	// With retries, the header timeout bounds the whole request up to the
	// final response: it stops in finalAnswer, not at each attempt's.
	if st.route.retry != nil && st.timeout.timedOut() || st.route.retry == nil && !st.timeout.gotHeaders() {
		if err == nil {
			resp.Body.Close()
		}
		return nil, errUpstreamTimeout
	}
	if err != nil {
		return nil, err
	}
	st.status = resp.StatusCode
	if resp.Header == nil {
		resp.Header = make(http.Header)
	}
	resp.Header["X-Request-Id"] = st.reqIDValue[:1:1]
	if set := st.route.set; set != nil && set.sticky != nil && !set.sticky.Has(st.in, int(st.target.index)) {
		// Pin the client to the target that answered (Traefik's and
		// Caddy's sticky cookie).
		resp.Header["Set-Cookie"] = append(resp.Header["Set-Cookie"], set.sticky.SetCookie(int(st.target.index)))
	}
	return resp, nil
}

// proxyError answers when no upstream response arrived: 504 for a timeout,
// 502 otherwise, or the fallback. A client that went away gets nothing.
func (o *Orchestrator) proxyError(w http.ResponseWriter, outreq *http.Request, err error) {
	st := stateOf(outreq.Context())
	if st == nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	if isRefusal(err) {
		st.status = http.StatusServiceUnavailable
		st.answered = o.refusal(w, st, err)
		return
	}
	if st.in.Context().Err() != nil {
		// The client cancelled or disconnected: nobody reads an answer, and
		// nginx's 499 is what the access log will show.
		st.status = 499
		return
	}
	var tooLarge *http.MaxBytesError
	if st.bodyTooLarge.Load() || errors.As(err, &tooLarge) {
		// The client's fault, not the upstream's.
		st.status = http.StatusRequestEntityTooLarge
		w.Header()["X-Request-Id"] = []string{st.ids.request}
		w.Header()["Connection"] = []string{"close"}
		o.writeProblem(w, st.in, st.ids.request, st.route, st.status, "body-too-large", "Content Too Large", "the request body exceeds "+strconv.FormatInt(o.maxBodyBytes, 10)+" bytes", 0)
		st.answered = st.status
		return
	}
	if st.bodyBroken.Load() {
		// The client's body could not be read (malformed chunked framing,
		// or the client went away mid-upload): the client's fault, not the
		// upstream's, so 400 and nothing counted against the breaker.
		st.status = http.StatusBadRequest
		w.Header()["X-Request-Id"] = []string{st.ids.request}
		w.Header()["Connection"] = []string{"close"}
		o.writeProblem(w, st.in, st.ids.request, st.route, st.status, "bad-request-body", "Bad Request", "the request body could not be read: malformed or cut short", 0)
		st.answered = st.status
		return
	}
	st.status = http.StatusBadGateway
	kind, detail := "upstream-unreachable", "the upstream could not be reached or answered badly"
	var blocked *netguard.BlockedError
	if errors.As(err, &blocked) {
		kind, detail = "upstream-forbidden", blocked.Reason
	}
	if st.timeout.timedOut() || errors.Is(err, errUpstreamTimeout) {
		st.status = http.StatusGatewayTimeout
		kind, detail = "upstream-timeout", "the upstream did not answer within "+st.route.headerTimeout().String()
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		st.status = http.StatusGatewayTimeout
		kind, detail = "upstream-timeout", "the upstream timed out"
	}
	o.routerLog.LogAttrs(st.in.Context(), slog.LevelWarn, "upstream request failed",
		slog.String("request_id", st.ids.request), slog.String("endpoint_id", st.route.ep.ID),
		slog.Int("status_code", st.status), slog.String("error", err.Error()))
	if m := st.route.metrics; m != nil {
		m.upstreamError[classifyUpstreamError(err, st.timeout.timedOut())].Inc()
	}
	bodyConsumed := outreq.Body != nil && st.body.rc != nil
	st.answered = o.unavailable(w, st.in, st.route, st.rest, st.ids, st.allowFallback, st.status, kind, detail, 0, bodyConsumed)
}

// refusal answers a request a policy refused before any round trip: 503,
// or the endpoint's fallback (the body is unread, so an endpoint fallback
// can take the request).
func (o *Orchestrator) refusal(w http.ResponseWriter, st *proxyState, err error) int {
	var open *circuitOpenError
	if errors.As(err, &open) {
		return o.unavailable(w, st.in, st.route, st.rest, st.ids, st.allowFallback, http.StatusServiceUnavailable,
			"circuit-open", "circuit breaker is open", retryAfterSeconds(open.retryAfter), false)
	}
	if err == errNoEligibleTarget {
		return o.noEligibleTarget(w, st.in, st.route, st.rest, st.ids, st.allowFallback)
	}
	return o.unavailable(w, st.in, st.route, st.rest, st.ids, st.allowFallback, http.StatusServiceUnavailable,
		"bulkhead-full", "the endpoint's max_concurrent requests are already in flight", 0, false)
}

// copyBuffer is the buffer a response body is copied through.
type copyBuffer = [32 << 10]byte

// copyBuffers recycles copy buffers. A sync.Pool keeps per-CPU caches, so
// no request waits on another's lock, and it holds pointers to arrays:
// putting one back allocates nothing (a []byte would need its header
// boxed on every Put).
var copyBuffers = sync.Pool{New: func() any { return new(copyBuffer) }}

// bufferPool adapts copyBuffers to httputil.BufferPool.
type bufferPool struct{}

func (bufferPool) Get() []byte { return copyBuffers.Get().(*copyBuffer)[:] }

func (bufferPool) Put(b []byte) {
	if len(b) == len(copyBuffer{}) {
		copyBuffers.Put((*copyBuffer)(b))
	}
}

const (
	outcomeSuccess outcome = iota
	outcomeFailure
	// outcomeUnknown: the client went away (or sent too much) before the
	// upstream answered, which says nothing about the upstream.
	outcomeUnknown
)
