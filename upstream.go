package orchestrator

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
)

// This file is the gateway's own proxy path, used for every request that
// does not ask for a protocol upgrade. It does what httputil.ReverseProxy
// does, header for header, with less per request:
//
//   - one shallow copy of the inbound request (httputil makes three: the
//     Clone, and two WithContext), with the URL and the body wrapper kept in
//     the per-request state instead of separate allocations;
//   - the outbound header built in one pass that leaves out hop-by-hop and
//     client-sent forwarding headers, instead of a full clone and deletes;
//   - the gateway's header values backed by arrays in the per-request state;
//   - response header values handed to the client's header map without
//     copying (the transport's map is never used again);
//   - no ProxyRequest, no mime.ParseMediaType to spot an event stream, and a
//     copy buffer from a per-CPU pool.
//
// Upgrade requests (WebSocket, h2c) keep going through httputil, whose
// hijack-and-copy handling of a switched connection is long proven; that
// path is rare and its cost is per connection, not per message.

// errUnrequestedUpgrade answers a 101 to a request that asked for no upgrade.
var errUnrequestedUpgrade = errors.New("upstream switched protocols without an Upgrade request")

// send forwards in to st.route and copies the response to w. in carries
// st as its context.
func (o *Orchestrator) send(w http.ResponseWriter, in *http.Request, st *proxyState) {
	// 1xx responses (103 Early Hints, 100 Continue sent by the upstream)
	// are relayed as they arrive, as httputil does.
	st.w = w
	st.trace.Got1xxResponse = st.got1xx
	out := in.WithContext(httptrace.WithClientTrace(st, &st.trace))
	out.RequestURI = ""
	out.Close = false
	st.setUpstreamURL(&st.url, in.URL)
	out.URL = &st.url
	out.Header = outboundHeader(in.Header)
	o.setOutboundFields(st, in, out)
	if in.ContentLength == 0 {
		out.Body = nil // a nil body lets the transport retry on a reused connection
	}
	out.Body = o.limitBody(w, out.Body)
	if out.Body != nil {
		st.body = timedBody{rc: out.Body, st: st}
		out.Body = &st.body
		// The transport's writer goroutine may outlive this handler.
		defer st.body.Close()
	}

	res, err := o.transport.RoundTrip(out)
	st.mu.Lock()
	st.roundTripDone = true
	st.mu.Unlock()
	if res, err = st.received(res, err); err == nil && res.StatusCode == http.StatusSwitchingProtocols {
		res.Body.Close()
		res, err = nil, errUnrequestedUpgrade
	}
	if err != nil {
		o.proxyError(w, out, err)
		return
	}

	removeHopByHopHeaders(res.Header)
	h := w.Header()
	for k, vv := range res.Header {
		// The transport's header map is not used again: its value slices
		// can be shared. A key the gateway (or a middleware) already set on
		// the response gets the upstream's values appended, as Header.Add
		// would.
		if prior := h[k]; len(prior) > 0 {
			h[k] = append(prior, vv...)
		} else {
			h[k] = vv
		}
	}
	// The Trailer header is not part of the transport's response: build it
	// from the announced trailer keys.
	announcedTrailers := len(res.Trailer)
	if announcedTrailers > 0 {
		keys := make([]string, 0, announcedTrailers)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		h.Add("Trailer", strings.Join(keys, ", "))
	}

	w.WriteHeader(res.StatusCode)
	if err := o.copyResponse(w, res, st); err != nil {
		defer res.Body.Close()
		// Mid-body, all that is left is to abort the response, which the
		// server does for http.ErrAbortHandler (the client sees a cut
		// connection, not a clean end). Outside a server there is nobody
		// to recover the panic.
		if in.Context().Value(http.ServerContextKey) != nil {
			panic(http.ErrAbortHandler)
		}
		return
	}
	res.Body.Close() // closing now, not deferred, fills res.Trailer

	if len(res.Trailer) > 0 {
		// Trailers force a chunked response: without the flush, a short
		// body would go out with a Content-Length and no trailers.
		http.NewResponseController(w).Flush()
	}
	if len(res.Trailer) == announcedTrailers {
		for k, vv := range res.Trailer {
			h[k] = append(h[k], vv...)
		}
		return
	}
	for k, vv := range res.Trailer {
		k = http.TrailerPrefix + k
		h[k] = append(h[k], vv...)
	}
}

// got1xx relays an informational response while the round trip is still
// on. After it, the response writer's header belongs to the final response.
func (st *proxyState) got1xx(code int, header textproto.MIMEHeader) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.roundTripDone {
		return nil
	}
	h := st.w.Header()
	for k, vv := range header {
		h[k] = append(h[k], vv...)
	}
	st.w.WriteHeader(code)
	// A 1xx header is not cleared by WriteHeader.
	clear(h)
	return nil
}

// copyResponse streams the response body with a pooled buffer. A response
// of unknown length or an event stream is flushed as it comes, its header
// at once; anything else is left to the server's buffering.
func (o *Orchestrator) copyResponse(w http.ResponseWriter, res *http.Response, st *proxyState) error {
	var rc *http.ResponseController
	if res.ContentLength == -1 || isEventStream(res.Header["Content-Type"]) {
		rc = http.NewResponseController(w)
		rc.Flush()
	}
	cb := copyBuffers.Get().(*copyBuffer)
	defer copyBuffers.Put(cb)
	buf := cb[:]
	for {
		n, rerr := res.Body.Read(buf)
		if rerr != nil && rerr != io.EOF && rerr != context.Canceled {
			o.routerLog.LogAttrs(st, slog.LevelWarn, "reading the upstream response body failed",
				slog.String("request_id", st.ids.request), slog.String("endpoint_id", st.route.id),
				slog.String("error", rerr.Error()))
		}
		if n > 0 {
			written, werr := w.Write(buf[:n])
			if werr != nil {
				return werr
			}
			if written != n {
				return io.ErrShortWrite
			}
			if rc != nil {
				rc.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// isEventStream reports whether a Content-Type is text/event-stream
// (parameters and case aside), without parsing it into a map.
func isEventStream(values []string) bool {
	if len(values) == 0 {
		return false
	}
	v := values[0]
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	return strings.EqualFold(strings.TrimSpace(v), "text/event-stream")
}

// hopHeaders are removed in both directions (RFC 9110 §7.6.1), whether or
// not Connection names them; the list is httputil's.
func isHopHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// isForwardingHeader names the forwarding headers a client may not set:
// the gateway writes its own (keeping a trusted proxy's, see
// setOutboundFields).
func isForwardingHeader(k string) bool {
	switch k {
	case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		return true
	}
	return false
}

// Shared read-only values for headers set on the outbound request.
var (
	teTrailers     = []string{"trailers"}
	emptyUserAgent = []string{""}
)

// outboundHeader copies the inbound header for the upstream in one pass:
// without hop-by-hop headers, the headers the client's Connection names and
// client-sent forwarding headers. Like Header.Clone it backs every value
// with one array; the map has room for the headers the gateway adds.
func outboundHeader(in http.Header) http.Header {
	connection := in["Connection"]
	values := 0
	for _, vv := range in {
		values += len(vv)
	}
	backing := make([]string, values)
	out := make(http.Header, len(in)+6)
	for k, vv := range in {
		if vv == nil || isHopHeader(k) || isForwardingHeader(k) || (len(connection) > 0 && headerHasToken(connection, k)) {
			continue
		}
		n := copy(backing, vv)
		out[k] = backing[:n:n]
		backing = backing[n:]
	}
	// Tell an upstream that cares that trailers are supported, when the
	// client said it supports them (httputil's behaviour).
	if headerHasToken(in["Te"], "trailers") {
		out["Te"] = teTrailers
	}
	// Without one, the transport would send Go's default User-Agent.
	if _, ok := out["User-Agent"]; !ok {
		out["User-Agent"] = emptyUserAgent
	}
	return out
}

// removeHopByHopHeaders deletes the hop-by-hop headers of a response and
// those its Connection header names.
func removeHopByHopHeaders(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for k := range h {
		if isHopHeader(k) {
			delete(h, k)
		}
	}
}

// headerHasToken reports whether a comma-separated header (Connection, TE)
// lists token, compared case-insensitively.
func headerHasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var item string
			item, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(textproto.TrimString(item), token) {
				return true
			}
		}
	}
	return false
}

// wantsUpgrade reports whether a request asks for a protocol switch, which
// goes through httputil (see send).
func wantsUpgrade(h http.Header) bool {
	return len(h["Upgrade"]) > 0 && headerHasToken(h["Connection"], "Upgrade")
}
