package orchestrator

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orchestrator-go/orchestrator/internal/framing"
	"github.com/orchestrator-go/orchestrator/internal/netguard"
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
		h["Allow"] = []string{rt.allow}
		o.writeProblem(w, r, ids.request, rt, http.StatusMethodNotAllowed, "method-not-allowed", "Method Not Allowed", "method "+r.Method+" is not allowed; allowed: "+rt.allow, 0)
		return http.StatusMethodNotAllowed
	}
	if rt.ep.Disabled {
		w.Header()["X-Request-Id"] = []string{ids.request}
		o.writeProblem(w, r, ids.request, rt, http.StatusServiceUnavailable, "endpoint-disabled", "Service Unavailable", "endpoint is disabled", 0)
		return http.StatusServiceUnavailable
	}
	if o.maxBodyBytes > 0 && r.ContentLength > o.maxBodyBytes {
		w.Header()["X-Request-Id"] = []string{ids.request}
		w.Header()["Connection"] = []string{"close"}
		o.writeProblem(w, r, ids.request, rt, http.StatusRequestEntityTooLarge, "body-too-large", "Content Too Large", "the request body exceeds "+strconv.FormatInt(o.maxBodyBytes, 10)+" bytes", 0)
		return http.StatusRequestEntityTooLarge
	}
	return o.forward(w, r, rt, upstreamRest, ids, true)
}

// forward sends r to rt unless its health or breaker says no. allowFallback
// is false when rt is itself serving as a fallback: fallbacks do not chain.
func (o *Orchestrator) forward(w http.ResponseWriter, r *http.Request, rt *route, rest string, ids reqIDs, allowFallback bool) int {
	if rt.healthActive && rt.healthState.current() == StatusUnhealthy {
		wait := time.Until(time.Unix(0, rt.healthState.nextProbe.Load()))
		return o.unavailable(w, r, rt, rest, ids, allowFallback, http.StatusServiceUnavailable, "endpoint-unhealthy", "endpoint is unhealthy", retryAfterSeconds(wait), false)
	}
	// The bulkhead is asked before the breaker so that a request it refuses
	// never takes one of the breaker's half-open trial permits.
	if rt.bulkhead != nil {
		if !rt.bulkhead.TryAcquirePermit() {
			return o.unavailable(w, r, rt, rest, ids, allowFallback, http.StatusServiceUnavailable, "bulkhead-full", "the endpoint's max_concurrent requests are already in flight", 0, false)
		}
		defer rt.bulkhead.ReleasePermit()
	}
	if ok, wait := rt.breaker.allow(); !ok {
		return o.unavailable(w, r, rt, rest, ids, allowFallback, http.StatusServiceUnavailable, "circuit-open", "circuit breaker is open", retryAfterSeconds(wait), false)
	}

	st := &proxyState{route: rt, rest: rest, ids: ids, in: r, allowFallback: allowFallback}
	var cancel context.CancelCauseFunc
	st.Context, cancel = context.WithCancelCause(r.Context())
	st.cancel = cancel
	st.timeout = startHeaderTimeout(rt.timeout, cancel)
	defer func() {
		// Runs on panics too (httputil aborts a response whose upstream body
		// failed mid-copy with panic(http.ErrAbortHandler)), so the breaker's
		// permit is always returned.
		aborted := recover()
		st.finish()
		switch st.outcome() {
		case outcomeSuccess:
			rt.breaker.record(false)
			rt.traffic.record(false)
		case outcomeFailure:
			rt.breaker.record(true)
			rt.traffic.record(true)
		case outcomeUnknown:
			rt.breaker.abandon()
		}
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
	if wantsUpgrade(r.Header) {
		out := r.WithContext(st)
		out.Body = o.limitBody(w, out.Body)
		o.proxy.ServeHTTP(w, out)
	} else {
		o.send(w, r, st)
	}
	if st.answered != 0 {
		return st.answered
	}
	return st.status
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
					slog.String("request_id", ids.request), slog.String("endpoint_id", rt.id), slog.String("fallback_endpoint_id", fb.id))
				return o.forward(w, r, fb, rest, ids, false)
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
		d.EndpointID = rt.id
	}
	problem.Write(w, d, retryAfter)
}

// proxyState is the per-request state of one forwarded request. It is the
// request's context (so that the shared ReverseProxy's hooks find it without
// a context.WithValue).
type proxyState struct {
	context.Context
	cancel        context.CancelCauseFunc
	route         *route
	rest          string
	ids           reqIDs
	in            *http.Request
	allowFallback bool

	// status is the upstream's status; err is set when no response came.
	status int
	err    error
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

	// The lean proxy path's outbound URL, and its relay of 1xx responses:
	// w is the client's writer; roundTripDone (under mu) ends the relay.
	url           url.URL
	trace         httptrace.ClientTrace
	w             http.ResponseWriter
	mu            sync.Mutex
	roundTripDone bool

	// Backing arrays for the header values set on every request, so that
	// setting them allocates nothing.
	reqIDValue [1]string
	xffValue   [1]string
	xfhValue   [1]string
	traceValue [1]string

	timeout  *headerTimeout
	clientGo bool
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
	st.timeout.release()
	st.cancel(context.Canceled)
}

type outcome uint8

const (
	outcomeSuccess outcome = iota
	outcomeFailure
	// outcomeUnknown: the client went away (or sent too much) before the
	// upstream answered, which says nothing about the upstream.
	outcomeUnknown
)

// outcome says how the request counts for the breaker: a transport error,
// a timeout or a failure status is a failure.
func (st *proxyState) outcome() outcome {
	if st.err != nil {
		if st.clientGo {
			return outcomeUnknown
		}
		return outcomeFailure
	}
	if st.route.breaker.isFailure(st.status) {
		return outcomeFailure
	}
	return outcomeSuccess
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
		Rewrite:      o.rewrite,
		Transport:    &upstreamTransport{base: o.transport},
		ErrorHandler: o.proxyError,
		BufferPool:   bufferPool{},
		ErrorLog:     slog.NewLogLogger(o.routerLog.Handler(), slog.LevelWarn),
	}
}

// rewrite builds the outbound request of an upgrade request, which goes
// through httputil: httputil has already removed hop-by-hop headers, the
// ones named in Connection and any client-sent X-Forwarded-*/Forwarded.
func (o *Orchestrator) rewrite(pr *httputil.ProxyRequest) {
	st := stateOf(pr.In.Context())
	in, out := pr.In, pr.Out
	st.setUpstreamURL(out.URL, in.URL)
	o.setOutboundFields(st, in, out)
	if out.Body != nil {
		st.body = timedBody{rc: out.Body, st: st}
		out.Body = &st.body
	}
}

// setUpstreamURL points u at the route's upstream: its scheme, host and base
// path joined with the rest of the inbound path, and the inbound query.
func (st *proxyState) setUpstreamURL(u, in *url.URL) {
	rt := st.route
	joined := urlpath.Join(rt.basePath, st.rest)
	*u = url.URL{
		Scheme: rt.scheme,
		Host:   rt.host,
		// Byte for byte: httputil re-encodes queries it considers
		// unparsable.
		RawQuery:   in.RawQuery,
		ForceQuery: in.ForceQuery,
	}
	// RawPath always: url.URL re-encodes sub-delims such as ' ( ) * ! in
	// Path alone, and the upstream must get the path byte for byte.
	if p, err := url.PathUnescape(joined); err == nil {
		u.Path, u.RawPath = p, joined
	} else {
		u.Path, u.RawPath = joined, ""
	}
}

// setOutboundFields sets Host, trailers and the headers the gateway adds:
// X-Forwarded-*, Forwarded, X-Request-ID and traceparent. out.Header must
// already be free of hop-by-hop and client-sent forwarding headers.
func (o *Orchestrator) setOutboundFields(st *proxyState, in, out *http.Request) {
	// Request trailers: the server fills in.Trailer when the body reaches
	// EOF, but a clone of the map keeps only the declared keys with nil
	// values, so none would be sent. Share the inbound map: the transport
	// reads it only after it has read the body to EOF.
	out.Trailer = in.Trailer
	if st.route.ep.PreserveHost {
		out.Host = in.Host
	} else {
		out.Host = ""
	}

	clientIP, _, err := net.SplitHostPort(in.RemoteAddr)
	if err != nil {
		clientIP = in.RemoteAddr
	}
	trusted := o.trusted(clientIP)
	h := out.Header
	// A forwarding header the client named in Connection was meant for its
	// hop only (RFC 9110 §7.6.1): even a trusted proxy's is not kept.
	keep := func(name string) []string {
		if !trusted || headerHasToken(in.Header["Connection"], name) {
			return nil
		}
		return in.Header[name]
	}
	if prior := keep("X-Forwarded-For"); len(prior) > 0 {
		st.xffValue[0] = strings.Join(prior, ", ") + ", " + clientIP
		h["X-Forwarded-For"] = st.xffValue[:]
	} else if clientIP != "" {
		st.xffValue[0] = clientIP
		h["X-Forwarded-For"] = st.xffValue[:]
	}
	if prior := keep("X-Forwarded-Host"); len(prior) > 0 {
		h["X-Forwarded-Host"] = prior
	} else {
		st.xfhValue[0] = in.Host
		h["X-Forwarded-Host"] = st.xfhValue[:]
	}
	if prior := keep("X-Forwarded-Proto"); len(prior) > 0 {
		h["X-Forwarded-Proto"] = prior
	} else if in.TLS != nil {
		h["X-Forwarded-Proto"] = protoHTTPS
	} else {
		h["X-Forwarded-Proto"] = protoHTTP
	}
	if prior := keep("Forwarded"); len(prior) > 0 {
		// RFC 7239: a trusted proxy's elements are kept and this hop's is
		// appended. (From an untrusted client the header is dropped; the
		// X-Forwarded-* above describe this hop.)
		proto := "http"
		if in.TLS != nil {
			proto = "https"
		}
		forClient := clientIP
		if strings.Contains(clientIP, ":") {
			forClient = `"[` + clientIP + `]"`
		}
		h["Forwarded"] = []string{strings.Join(prior, ", ") + ", for=" + forClient + ";proto=" + proto}
	}
	st.reqIDValue[0] = st.ids.request
	h["X-Request-Id"] = st.reqIDValue[:]
	if st.ids.traceparent != "" {
		// The trace the gateway started (WithTraceStart) for a request
		// without a valid traceparent: the backend must see its id.
		st.traceValue[0] = st.ids.traceparent
		h["Traceparent"] = st.traceValue[:]
	}
	if o.adminAuth != "" {
		if v := h["Authorization"]; len(v) > 0 && slices.ContainsFunc(v, o.isAdminAuth) {
			delete(h, "Authorization")
		}
	}
}

// Shared read-only header values; the transport never modifies them.
var (
	protoHTTP  = []string{"http"}
	protoHTTPS = []string{"https"}
)

// isAdminAuth compares in constant time, as the admin API does.
func (o *Orchestrator) isAdminAuth(v string) bool {
	return len(v) == len(o.adminAuth) && subtle.ConstantTimeCompare([]byte(v), []byte(o.adminAuth)) == 1
}

func (o *Orchestrator) trusted(ip string) bool {
	if len(o.trustedProxies) == 0 || ip == "" {
		return false
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range o.trustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// upstreamTransport wraps the shared transport to stop the header timeout,
// record the upstream's status and echo the request id.
type upstreamTransport struct {
	base http.RoundTripper
}

func (t *upstreamTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	st := stateOf(req.Context())
	resp, err := t.base.RoundTrip(req)
	if st == nil {
		return resp, err
	}
	return st.received(resp, err)
}

// received stops the header timeout, records the upstream's status and
// echoes the request id on the response. A response that arrived after the
// timeout fired is discarded: the client gets the 504 it was promised.
func (st *proxyState) received(resp *http.Response, err error) (*http.Response, error) {
	if !st.timeout.gotHeaders() {
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
	st.err = err
	if st.in.Context().Err() != nil {
		// The client cancelled or disconnected: nobody reads an answer, and
		// nginx's 499 is what the access log will show.
		st.clientGo = true
		st.status = 499
		return
	}
	var tooLarge *http.MaxBytesError
	if st.bodyTooLarge.Load() || errors.As(err, &tooLarge) {
		// The client's fault, not the upstream's.
		st.clientGo = true
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
		st.clientGo = true
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
		kind, detail = "upstream-timeout", "the upstream did not answer within "+st.route.timeout.String()
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		st.status = http.StatusGatewayTimeout
		kind, detail = "upstream-timeout", "the upstream timed out"
	}
	o.routerLog.LogAttrs(st.in.Context(), slog.LevelWarn, "upstream request failed",
		slog.String("request_id", st.ids.request), slog.String("endpoint_id", st.route.id),
		slog.Int("status_code", st.status), slog.String("error", err.Error()))
	if m := st.route.metrics; m != nil {
		m.upstreamError[classifyUpstreamError(err, st.timeout.timedOut())].Inc()
	}
	bodyConsumed := outreq.Body != nil && st.body.rc != nil
	st.answered = o.unavailable(w, st.in, st.route, st.rest, st.ids, st.allowFallback, st.status, kind, detail, 0, bodyConsumed)
}

// copyBuffer is the buffer a response body is copied through.
type copyBuffer = [32 << 10]byte

// copyBuffers recycles copy buffers. A sync.Pool keeps per-CPU caches, so
// no request waits on another's lock, and it holds pointers to arrays:
// putting one back allocates nothing (a []byte would need its header
// boxed on every Put).
var copyBuffers = sync.Pool{New: func() any { return new(copyBuffer) }}

// bufferPool adapts copyBuffers to httputil.BufferPool for upgrade
// requests, which go through httputil.
type bufferPool struct{}

func (bufferPool) Get() []byte { return copyBuffers.Get().(*copyBuffer)[:] }

func (bufferPool) Put(b []byte) {
	if len(b) == len(copyBuffer{}) {
		copyBuffers.Put((*copyBuffer)(b))
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
