package orchestrator

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"slices"
	"strings"

	"github.com/orchestrator-go/orchestrator/internal/urlpath"
)

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

// setUpstreamURL points u at an upstream: its scheme, host and base path
// joined with the rest of the inbound path, and the inbound query.
func setUpstreamURL(u *url.URL, scheme, host, basePath, rest string, in *url.URL) {
	joined := urlpath.Join(basePath, rest)
	*u = url.URL{
		Scheme: scheme,
		Host:   host,
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

// Shared read-only header values; the transport never modifies them.
var (
	protoHTTP  = []string{"http"}
	protoHTTPS = []string{"https"}
)
