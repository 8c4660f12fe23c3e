package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/failsafe-go/failsafe-go/adaptivelimiter"
	"github.com/orchestrator-go/orchestrator/internal/framing"
	"github.com/orchestrator-go/orchestrator/internal/problem"
	"github.com/orchestrator-go/orchestrator/internal/requestid"
	"github.com/orchestrator-go/orchestrator/internal/urlpath"
)

// errUpstreamTimeout is the cancellation cause when an upstream has not
// answered within its endpoint's timeout.
var errUpstreamTimeout = errors.New("upstream did not answer within the endpoint timeout")

// ServeHTTP routes a request under the prefix; anything else gets a 404
// problem document. Mounted in a mux, it expects the full path
// (mux.Handle("/orchestrator/", o)), not one stripped by http.StripPrefix.
func (o *Orchestrator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Request smuggling guard: a request whose framing another parser may
	// read differently closes its connection after the response, so
	// nothing a front proxy framed otherwise is read as a next request,
	// whether this one is routed or answered 404.
	w = framing.CloseAfter(w, r)
	if o.closed.Load() {
		// Checked per request, not per connection: a request already past
		// this point when Close runs is served to the end.
		o.serveClosed(w, r)
		return
	}
	rest, ok := o.stripPrefix(r.URL.EscapedPath())
	if !ok {
		start := time.Now()
		reqID := requestID(r)
		w.Header()["X-Request-Id"] = []string{reqID}
		o.writeProblem(w, r, reqID, nil, http.StatusNotFound, "no-route", "Not Found", "no endpoint matches this path", 0)
		o.observe(r, nil, reqIDs{request: reqID}, http.StatusNotFound, start)
		return
	}
	o.serve(w, r, rest)
}

// stripPrefix returns the escaped path after the prefix, which is empty or
// starts with "/".
func (o *Orchestrator) stripPrefix(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, o.prefix)
	if !ok || (rest != "" && rest[0] != '/') {
		return "", false
	}
	return rest, true
}

func requestID(r *http.Request) string {
	if v := r.Header["X-Request-Id"]; len(v) == 1 && requestid.Valid(v[0]) {
		return v[0]
	}
	return requestid.New()
}

// serve answers one request under the prefix and observes it (metrics and
// access log) however it ends, panics included: httputil aborts a response
// whose upstream body broke mid-copy with panic(http.ErrAbortHandler). Its
// callers have applied the smuggling guard (framing.CloseAfter).
func (o *Orchestrator) serve(w http.ResponseWriter, r *http.Request, rest string) {
	start := time.Now()
	ids := o.requestIDs(r)
	if o.maxHeaderCount > 0 {
		if n := framing.FieldLines(r); n > o.maxHeaderCount {
			o.tooManyHeaders(w, r, ids, n, start)
			return
		}
	}
	rt, upstreamRest := o.table.Load().lookup(rest)
	if rt != nil {
		rt.traffic.inFlight.Add(1)
		defer rt.traffic.inFlight.Add(-1)
	}
	defer func() {
		// A response aborted mid-body unwinds as abortedResponse, which
		// carries the status the client already got.
		if v := recover(); v != nil {
			a, ok := v.(abortedResponse)
			if !ok {
				panic(v)
			}
			o.observe(r, rt, ids, a.status, start)
			panic(a.cause)
		}
	}()
	status := o.dispatch(w, r, rt, upstreamRest, ids)
	o.observe(r, rt, ids, status, start)
}

// tooManyHeaders answers 431 to a request with more header field lines
// than the limit, and closes the connection: a client that sends that many
// is broken or hostile, and Go's server closes after its own 431 too.
func (o *Orchestrator) tooManyHeaders(w http.ResponseWriter, r *http.Request, ids reqIDs, n int, start time.Time) {
	h := w.Header()
	h["X-Request-Id"] = []string{ids.request}
	h["Connection"] = []string{"close"}
	o.writeProblem(w, r, ids.request, nil, http.StatusRequestHeaderFieldsTooLarge, "too-many-headers", "Request Header Fields Too Large",
		"the request has "+strconv.Itoa(n)+" header field lines; at most "+strconv.Itoa(o.maxHeaderCount)+" are accepted", 0)
	o.observe(r, nil, ids, http.StatusRequestHeaderFieldsTooLarge, start)
}

// abortedResponse wraps the panic with which httputil aborts a response
// whose upstream body failed mid-copy (http.ErrAbortHandler), adding the
// status already sent, so that the abort is still counted and logged.
// reqIDs identify a request: its X-Request-ID, and the traceparent the
// gateway started for it (empty when the client sent one or tracing is off).
type reqIDs struct {
	request     string
	traceparent string
}

func (o *Orchestrator) requestIDs(r *http.Request) reqIDs {
	ids := reqIDs{request: requestID(r)}
	if o.startTraces && traceID(r.Header) == "" {
		ids.traceparent = newTraceparent()
	}
	return ids
}

type abortedResponse struct {
	status int
	cause  any
}

// dispatch runs the gateway's checks and forwards; it returns the status the
// client got.
func (o *Orchestrator) dispatch(w http.ResponseWriter, r *http.Request, rt *route, upstreamRest string, ids reqIDs) int {
	if rt == nil {
		w.Header()["X-Request-Id"] = []string{ids.request}
		o.writeProblem(w, r, ids.request, nil, http.StatusNotFound, "no-route", "Not Found", "no endpoint matches this path", 0)
		return http.StatusNotFound
	}
	if urlpath.HasDotSegment(upstreamRest) {
		w.Header()["X-Request-Id"] = []string{ids.request}
		o.writeProblem(w, r, ids.request, rt, http.StatusBadRequest, "dot-segment", "Bad Request", "the path must not contain . or .. segments", 0)
		return http.StatusBadRequest
	}
	if strings.IndexByte(r.RequestURI, '#') >= 0 {
		// A fragment is never part of a request target (RFC 9112 §3.2), but
		// Go's server accepts one and keeps it in the path or the query:
		// refuse it (as Envoy does) rather than forward it upstream.
		w.Header()["X-Request-Id"] = []string{ids.request}
		o.writeProblem(w, r, ids.request, rt, http.StatusBadRequest, "fragment", "Bad Request", "the request target must not contain a #fragment", 0)
		return http.StatusBadRequest
	}
	if !rt.allows(r.Method) {
		h := w.Header()
		h["X-Request-Id"] = []string{ids.request}
		allow := rt.allowHeader()
		h["Allow"] = []string{allow}
		o.writeProblem(w, r, ids.request, rt, http.StatusMethodNotAllowed, "method-not-allowed", "Method Not Allowed", "method "+r.Method+" is not allowed; allowed: "+allow, 0)
		return http.StatusMethodNotAllowed
	}
	if rt.ep.Disabled {
		w.Header()["X-Request-Id"] = []string{ids.request}
		o.writeProblem(w, r, ids.request, rt, http.StatusServiceUnavailable, "endpoint-disabled", "Service Unavailable", "endpoint is disabled", 0)
		return http.StatusServiceUnavailable
	}
	if plan := rt.rateLimitPlan(); plan != nil {
		// First in the admission order; a 429 never falls back.
		v := plan.admit(o, r, time.Now())
		h := w.Header()
		setRateLimitHeaders(h, v)
		if !v.allowed {
			plan.limited.Add(1)
			h["X-Request-Id"] = []string{ids.request}
			wait := max(int((v.worst.RetryAfter+time.Second-1)/time.Second), 1)
			o.writeProblem(w, r, ids.request, rt, http.StatusTooManyRequests, "rate-limited", "Too Many Requests",
				"the endpoint's rate limit is exhausted; retry after "+strconv.Itoa(wait)+"s", wait)
			return http.StatusTooManyRequests
		}
	}
	if o.maxBodyBytes > 0 && r.ContentLength > o.maxBodyBytes {
		w.Header()["X-Request-Id"] = []string{ids.request}
		w.Header()["Connection"] = []string{"close"}
		o.writeProblem(w, r, ids.request, rt, http.StatusRequestEntityTooLarge, "body-too-large", "Content Too Large", "the request body exceeds "+strconv.FormatInt(o.maxBodyBytes, 10)+" bytes", 0)
		return http.StatusRequestEntityTooLarge
	}
	// Second in the admission order: the adaptive limit. Its permit goes
	// back at the upstream's response headers (releasePermit).
	var permit adaptivelimiter.Permit
	if plan := rt.adaptivePlan(); plan != nil {
		p, ok := plan.limiter.TryAcquirePermit()
		if !ok {
			plan.shed.Add(1)
			return o.unavailable(w, r, rt, upstreamRest, ids, true, http.StatusServiceUnavailable, "load-shed",
				"the endpoint's adaptive concurrency limit is reached: its upstream is answering slower than it takes more requests", 1, false)
		}
		permit = p
	}
	return o.forward(w, r, rt, upstreamRest, ids, true, permit)
}

// dropPermit gives back an adaptive permit whose request never reached the
// upstream.
func dropPermit(p adaptivelimiter.Permit) {
	if p != nil {
		p.Drop()
	}
}

// forward sends r to rt unless its health says no; the endpoint's policies
// (breaker, max_concurrent) decide inside the proxy's transport. allowFallback
// is false when rt is itself serving as a fallback: fallbacks do not chain.
//
// permit is the request's adaptive-limiter permit, or nil: it goes back
// with a latency sample at the response headers, or without one when no
// response comes.
func (o *Orchestrator) forward(w http.ResponseWriter, r *http.Request, rt *route, rest string, ids reqIDs, allowFallback bool, permit adaptivelimiter.Permit) int {
	target := rt.targets[0]
	if set := rt.set; set != nil {
		i := set.first(r)
		if i < 0 {
			dropPermit(permit)
			return o.noEligibleTarget(w, r, rt, rest, ids, allowFallback)
		}
		target = rt.targets[i]
	} else if rt.healthActive && target.health.current() == StatusUnhealthy {
		dropPermit(permit)
		wait := time.Until(time.Unix(0, target.health.nextProbe.Load()))
		return o.unavailable(w, r, rt, rest, ids, allowFallback, http.StatusServiceUnavailable, "endpoint-unhealthy", "endpoint is unhealthy", retryAfterSeconds(wait), false)
	} else if target.drained.Load() {
		dropPermit(permit)
		return o.noEligibleTarget(w, r, rt, rest, ids, allowFallback)
	}
	st := &proxyState{route: rt, rest: rest, ids: ids, in: r, allowFallback: allowFallback, target: target, permit: permit}
	var cancel context.CancelCauseFunc
	st.Context, cancel = context.WithCancelCause(r.Context())
	st.cancel = cancel
	st.timeout = startHeaderTimeout(rt.headerTimeout(), cancel)
	defer func() {
		// Runs on panics too: httputil aborts a response whose upstream
		// body failed mid-copy with panic(http.ErrAbortHandler).
		aborted := recover()
		st.finish()
		if aborted != nil {
			if _, wrapped := aborted.(abortedResponse); wrapped {
				panic(aborted) // a fallback endpoint's abort, already wrapped
			}
			status := st.status
			if st.answered != 0 {
				status = st.answered
			}
			panic(abortedResponse{status: status, cause: aborted})
		}
	}()
	out := r.WithContext(st)
	out.Body = o.limitBody(w, out.Body)
	o.proxy.ServeHTTP(w, out)
	if st.answered != 0 {
		return st.answered
	}
	return st.status
}

// noEligibleTarget answers a request none of the endpoint's targets can
// take (each unhealthy, ejected, drained or with its breaker open): 503
// endpoint-unhealthy, or the fallback. Nothing was sent upstream, so an
// endpoint fallback can take the request.
func (o *Orchestrator) noEligibleTarget(w http.ResponseWriter, r *http.Request, rt *route, rest string, ids reqIDs, allowFallback bool) int {
	return o.unavailable(w, r, rt, rest, ids, allowFallback, http.StatusServiceUnavailable, "endpoint-unhealthy",
		"no target of the endpoint is eligible: each is unhealthy, ejected, drained or has its circuit breaker open", 0, false)
}

// limitBody enforces max_body_bytes on a request body being forwarded.
func (o *Orchestrator) limitBody(w http.ResponseWriter, body io.ReadCloser) io.ReadCloser {
	if o.maxBodyBytes > 0 && body != nil && body != http.NoBody {
		return http.MaxBytesReader(w, body, o.maxBodyBytes)
	}
	return body
}

// unavailable answers when rt cannot serve: with the fallback when one is
// configured, otherwise with a problem document.
func (o *Orchestrator) unavailable(w http.ResponseWriter, r *http.Request, rt *route, rest string, ids reqIDs, allowFallback bool, status int, kind, detail string, retryAfter int, bodyConsumed bool) int {
	if allowFallback {
		switch plan := rt.fallback; plan.strategy {
		case FallbackStaticResponse:
			h := w.Header()
			for k, v := range plan.header {
				h[k] = v
			}
			h["X-Request-Id"] = []string{ids.request}
			rt.applyResponseRules(h)
			if len(plan.body) > 0 || h.Get("Content-Length") == "" {
				h.Del("Content-Length")
			}
			w.WriteHeader(plan.status)
			w.Write(plan.body)
			return plan.status
		case FallbackEndpoint:
			// A request whose body was already (partly) sent upstream cannot
			// be replayed: it gets the error response instead.
			if fb := o.table.Load().route(plan.endpointID); fb != nil && !fb.ep.Disabled && !bodyConsumed && fb.allows(r.Method) {
				o.routerLog.LogAttrs(r.Context(), slog.LevelDebug, "serving from fallback endpoint",
					slog.String("request_id", ids.request), slog.String("endpoint_id", rt.ep.ID), slog.String("fallback_endpoint_id", fb.ep.ID))
				return o.forward(w, r, fb, rest, ids, false, nil)
			}
		}
	}
	h := w.Header()
	h["X-Request-Id"] = []string{ids.request}
	title := http.StatusText(status)
	o.writeProblem(w, r, ids.request, rt, status, kind, title, detail, retryAfter)
	return status
}

func (o *Orchestrator) writeProblem(w http.ResponseWriter, r *http.Request, reqID string, rt *route, status int, kind, title, detail string, retryAfter int) {
	d := problem.Details{
		Type:      problem.TypePrefix + kind,
		Title:     title,
		Status:    status,
		Detail:    detail,
		Instance:  r.URL.EscapedPath(),
		RequestID: reqID,
	}
	if rt != nil {
		d.EndpointID = rt.ep.ID
		rt.applyResponseRules(w.Header())
	}
	problem.Write(w, d, retryAfter)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
