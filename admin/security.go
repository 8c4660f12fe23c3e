package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// ErrForbidden is the error, or wrapped in the error, that an
// Options.Authorize hook returns to deny a caller it knows but does not
// allow: the admin API answers 403. Any other error answers 401.
var ErrForbidden = errors.New("admin: forbidden")

// bearerRealm starts the WWW-Authenticate value of a 401 (RFC 6750 §3).
const bearerRealm = `Bearer realm="orchestrator-admin"`

// corsAllowHeaders are the request headers an allowed origin may send.
const corsAllowHeaders = "Authorization, Content-Type, If-Match, X-Request-ID"

// corsExposeHeaders are the response headers an allowed origin may read.
const corsExposeHeaders = "ETag, Location, Allow, WWW-Authenticate, Accept, X-Request-ID"

// guard runs the security checks of one request, before the route does
// anything: the Origin check and, on a write, the Sec-Fetch-Site check for
// every route; then, unless the route is open, Options.Authorize (when it is
// set), the bearer token (when one is configured) or the loopback checks
// (when neither is); last, when body is not nil, the media type of a write's
// body. The media type comes after authentication so that a caller who is
// not allowed learns nothing but 401 or 403.
func (h *Handler) guard(w http.ResponseWriter, r *http.Request, open bool, body *bodyRule) error {
	if err := h.checkOrigin(w, r); err != nil {
		return err
	}
	if err := h.checkFetchSite(r); err != nil {
		return err
	}
	if !open {
		if err := h.authenticate(r); err != nil {
			return err
		}
	}
	if body != nil {
		return body.checkMediaType(r)
	}
	return nil
}

// authenticate asks Options.Authorize when it is set; otherwise it requires
// the token when one is configured, and a loopback client addressed by a
// loopback name when none is.
func (h *Handler) authenticate(r *http.Request) error {
	if h.opts.Authorize != nil {
		return authorizeError(h.opts.Authorize(r))
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

// isWrite reports whether a method changes state. Only these can do harm
// through a forged request: a page can make a browser send a GET, but
// cannot read its answer without CORS.
func isWrite(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// checkFetchSite refuses a write that a browser marks Sec-Fetch-Site:
// cross-site, with or without the token. Origin alone is not enough: some
// browsers omit it (older ones on form POSTs, some extensions), and a
// request without Origin passes checkOrigin, as scripts must. Pages cannot
// set Sec-Fetch-* headers, so the browser's verdict is trustworthy; clients
// that are not browsers do not send it and are not refused.
//
// same-site passes: a sibling host (ops.example.com calling
// admin.example.com) still sends Origin, which checkOrigin has refused
// unless it is allowed, and the typical allowed origin is such a sibling.
// same-origin (the /docs page) and none (typed into the address bar) pass.
// A cross-site write from an origin listed in AllowedOrigins passes too:
// listing it is the operator's consent, it has passed a CORS preflight (its
// JSON body and Authorization header are not "simple"), and refusing it
// would make allowed_origins read-only for a dashboard on another domain.
func (h *Handler) checkFetchSite(r *http.Request) error {
	if !isWrite(r.Method) {
		return nil
	}
	crossSite := slices.ContainsFunc(r.Header.Values("Sec-Fetch-Site"), func(v string) bool {
		return strings.EqualFold(strings.TrimSpace(v), "cross-site")
	})
	if !crossSite {
		return nil
	}
	if origins := r.Header.Values("Origin"); len(origins) == 1 && h.origins[normalizeOrigin(origins[0])] {
		return nil
	}
	return forbidden("cross-site", fmt.Sprintf("the browser marks this %s Sec-Fetch-Site: cross-site; the admin API refuses writes from other sites' pages (CSRF) unless their origin is in the admin allowed_origins", r.Method))
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

// authorizeError turns an Options.Authorize error into the admin API's
// answer: nil allows, ErrForbidden (wrapped or not) is 403, anything else
// 401. The error's message is the detail; problemFor redacts it.
func authorizeError(err error) error {
	if err == nil {
		return nil
	}
	detail := err.Error()
	if errors.Is(err, ErrForbidden) {
		if detail == "" {
			detail = "the admin API's authorization does not allow this caller"
		}
		return forbidden("forbidden", detail)
	}
	if detail == "" {
		detail = "the admin API's authorization does not know this caller"
	}
	return unauthorized("", detail)
}

func unauthorized(challengeParams, detail string) error {
	return &apiError{status: http.StatusUnauthorized, kind: "unauthorized", title: "Unauthorized", detail: detail,
		header: http.Header{"Www-Authenticate": {bearerRealm + challengeParams}}}
}

func forbidden(kind, detail string) error {
	return &apiError{status: http.StatusForbidden, kind: kind, title: "Forbidden", detail: detail}
}

// Media types of request bodies. A write that carries a body must label it
// with one of them: text/plain, application/x-www-form-urlencoded and
// multipart/form-data are the types a page can make a browser send to
// another origin without a CORS preflight, so accepting only JSON (and
// YAML, equally not "simple") means a forged body never reaches a route,
// even from a browser that sends no Origin.
var (
	// jsonTypes are accepted on every write; any application/*+json type
	// is too (see acceptsMediaType).
	jsonTypes = []string{"application/json"}
	// configTypes are accepted by POST /config/validate, which parses YAML
	// (of which JSON is a subset) as the config file loader does.
	configTypes = []string{"application/json", "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}
)

// bodyRule is what one route accepts as a request body.
type bodyRule struct {
	// types lists the media types a write's body may have, besides any
	// application/*+json; nil means any (pprof's symbol lookup posts
	// application/octet-stream and changes nothing; an unknown path answers
	// 404 whatever the body).
	types []string
	// limit caps the body's bytes.
	limit int64
	// setting names the config setting that sets limit, for the 413; empty
	// when limit is the fixed maxBodyBytes.
	setting string
}

// checkMediaType answers 415 to a write whose body is not in one of the
// rule's media types. A write has a body when it declares a length or is
// chunked (r.ContentLength != 0); a missing Content-Type on such a write is
// refused too, since it is what curl -T or a bare fetch of a string sends
// and nothing tells it apart from a forged text/plain. Bodyless writes,
// such as POST /config/reload and the breaker levers, need no Content-Type.
func (b *bodyRule) checkMediaType(r *http.Request) error {
	if b.types == nil || !isWrite(r.Method) || r.ContentLength == 0 {
		return nil
	}
	got := r.Header.Get("Content-Type")
	// ParseMediaType lower-cases the type; a malformed parameter still
	// yields the type with ErrInvalidMediaParameter, and only the type
	// matters here.
	mediaType, _, err := mime.ParseMediaType(got)
	if (err == nil || errors.Is(err, mime.ErrInvalidMediaParameter)) && acceptsMediaType(b.types, mediaType) {
		return nil
	}
	return unsupportedMediaType(r, got, b.types)
}

// tooLarge is the 413 of a body past the rule's limit. The fixed cap
// answers the generic *http.MaxBytesError; a configurable one names its
// setting, so that the operator knows what to raise.
func (b *bodyRule) tooLarge() error {
	if b.setting == "" {
		return &http.MaxBytesError{Limit: b.limit}
	}
	return &apiError{status: http.StatusRequestEntityTooLarge, kind: "body-too-large", title: "Request body too large",
		detail: fmt.Sprintf("the request body exceeds %d bytes, the limit %s sets", b.limit, b.setting)}
}

// acceptsMediaType reports whether mediaType, lower-cased and without
// parameters, is one of types or a JSON-based application type (RFC 6839
// +json suffix, such as application/merge-patch+json).
func acceptsMediaType(types []string, mediaType string) bool {
	if slices.Contains(types, mediaType) {
		return true
	}
	sub, ok := strings.CutPrefix(mediaType, "application/")
	return ok && strings.HasSuffix(sub, "+json") && len(sub) > len("+json")
}

// unsupportedMediaType is the 415 of a body in another media type. Its
// Accept header lists what the route takes, as RFC 9110 §15.5.16 suggests;
// Accept rather than Accept-Post because the answer also serves PUT and
// DELETE. Accept cannot express "+json", so only the detail mentions it.
func unsupportedMediaType(r *http.Request, got string, types []string) error {
	received := "no Content-Type"
	if got != "" {
		if len(got) > 100 {
			got = got[:100] + "…"
		}
		received = fmt.Sprintf("Content-Type %q", got)
	}
	accept := strings.Join(types, ", ")
	return &apiError{status: http.StatusUnsupportedMediaType, kind: "unsupported-media-type", title: "Unsupported media type",
		detail: fmt.Sprintf("the body of this %s has %s; %s %s takes %s (or an application/*+json type); a write without a body needs no Content-Type",
			r.Method, received, r.Method, r.URL.EscapedPath(), accept),
		header: http.Header{"Accept": {accept}}}
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
