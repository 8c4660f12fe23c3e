package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// bearerRealm starts the WWW-Authenticate value of a 401 (RFC 6750 §3).
const bearerRealm = `Bearer realm="orchestrator-admin"`

// corsAllowHeaders are the request headers an allowed origin may send.
const corsAllowHeaders = "Authorization, Content-Type, If-Match"

// corsExposeHeaders are the response headers an allowed origin may read.
const corsExposeHeaders = "ETag, Location, Allow, WWW-Authenticate"

// guard runs the security checks of one request: the Origin check for
// every route, then, unless the route is open, the bearer token (when one
// is configured) or the loopback checks (when none is).
func (h *Handler) guard(w http.ResponseWriter, r *http.Request, open bool) error {
	if err := h.checkOrigin(w, r); err != nil {
		return err
	}
	if open {
		return nil
	}
	if h.opts.Token != "" {
		return h.checkToken(r)
	}
	// Only the connection's address counts: X-Forwarded-For and friends are
	// written by the client and would let anyone look local.
	if !loopbackAddr(r.RemoteAddr) {
		return forbidden("not-loopback", "the admin API has no token configured and answers loopback clients only; set a token to allow remote clients")
	}
	// A page that rebinds its own DNS name to 127.0.0.1 reaches us from a
	// loopback browser, but with its own name in Host.
	if !loopbackHost(r.Host) {
		return forbidden("host-not-allowed", "the admin API has no token configured and answers requests addressed to a loopback name (localhost, 127.0.0.1, [::1]) only")
	}
	return nil
}

// checkOrigin refuses a browser request from an origin that is neither
// allowed nor the admin's own, and adds CORS headers for allowed ones.
// Requests without Origin (curl, scripts, same-origin GETs) pass.
func (h *Handler) checkOrigin(w http.ResponseWriter, r *http.Request) error {
	origins := r.Header.Values("Origin")
	if len(origins) == 0 {
		return nil
	}
	w.Header().Add("Vary", "Origin")
	if len(origins) > 1 {
		return forbidden("origin-not-allowed", "the request carries more than one Origin header")
	}
	origin := normalizeOrigin(origins[0])
	if h.sameOrigin(r, origin) {
		return nil
	}
	if !h.origins[origin] {
		return forbidden("origin-not-allowed", "requests from this browser origin are not allowed; list it in the admin allowed_origins")
	}
	w.Header().Set("Access-Control-Allow-Origin", origins[0])
	w.Header().Set("Access-Control-Expose-Headers", corsExposeHeaders)
	return nil
}

// sameOrigin reports whether origin is the admin's own, as the /docs page
// sends on its POST, PUT and DELETE requests.
func (h *Handler) sameOrigin(r *http.Request, origin string) bool {
	if r.Host == "" {
		return false
	}
	host := strings.ToLower(r.Host)
	return origin == "http://"+host || origin == "https://"+host
}

// preflight answers a CORS preflight from an allowed origin. It reports
// whether it answered.
func (h *Handler) preflight(w http.ResponseWriter, r *http.Request, allow string) bool {
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	origins := r.Header.Values("Origin")
	if len(origins) != 1 || !h.origins[normalizeOrigin(origins[0])] {
		return false
	}
	hdr := w.Header()
	hdr.Add("Vary", "Origin")
	hdr.Set("Access-Control-Allow-Origin", origins[0])
	hdr.Set("Access-Control-Allow-Methods", allow)
	hdr.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	hdr.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return true
}

// checkToken requires "Authorization: Bearer <token>". The comparison runs
// on fixed-length hashes in constant time, so neither the token's bytes nor
// its length leak through timing.
func (h *Handler) checkToken(r *http.Request) error {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return unauthorized("", "this admin route needs Authorization: Bearer <admin token>")
	}
	scheme, cred, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return unauthorized(`, error="invalid_request"`, "the Authorization header must use the Bearer scheme")
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(cred)))
	if subtle.ConstantTimeCompare(got[:], h.tokenHash[:]) != 1 {
		return unauthorized(`, error="invalid_token"`, "the bearer token is not the admin token")
	}
	return nil
}

func unauthorized(challengeParams, detail string) error {
	return &apiError{status: http.StatusUnauthorized, kind: "unauthorized", title: "Unauthorized", detail: detail,
		header: http.Header{"Www-Authenticate": {bearerRealm + challengeParams}}}
}

func forbidden(kind, detail string) error {
	return &apiError{status: http.StatusForbidden, kind: kind, title: "Forbidden", detail: detail}
}

// normalizeOrigin lower-cases an origin and drops a trailing slash, so that
// configured origins compare as browsers serialise them.
func normalizeOrigin(origin string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(origin)), "/")
}

// loopbackAddr reports whether a connection's remote address ("ip:port",
// as http.Request.RemoteAddr holds it) is a loopback address. Anything it
// cannot parse (a Unix socket's "@", an empty string) is not loopback.
func loopbackAddr(remote string) bool {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap().IsLoopback()
	}
	if a, err := netip.ParseAddr(remote); err == nil {
		return a.Unmap().IsLoopback()
	}
	return false
}

// loopbackHost reports whether a Host header names this machine's loopback:
// localhost, *.localhost (RFC 6761), 127.0.0.0/8 or ::1, with any port.
func loopbackHost(host string) bool {
	if hostname, _, err := net.SplitHostPort(host); err == nil {
		host = hostname
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Zone() == "" {
		return a.Unmap().IsLoopback()
	}
	return false
}
