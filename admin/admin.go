package admin

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/config"
	"github.com/orchestrator-go/orchestrator/internal/requestid"
)

// ConfigStatus is the body of GET /config/status: where the applied
// configuration came from and how its reloads went.
type ConfigStatus struct {
	// Path is the config file's path; empty when there is no file.
	Path string `json:"path"`
	// Version identifies the applied file's content, such as a short
	// sha256 of its bytes; empty when nothing is applied.
	Version string `json:"version"`
	// LoadedAt is when the applied config was loaded; nil when never.
	LoadedAt *time.Time `json:"loaded_at"`
	// ReloadCount counts successful reloads since start.
	ReloadCount int64 `json:"reload_count"`
	// LastError is the last failed load's error, nil when the last load
	// succeeded. The admin API removes the admin token from it.
	LastError *string `json:"last_error"`
	// LastErrorAt is when LastError happened.
	LastErrorAt *time.Time `json:"last_error_at"`
	// Watching is true while the file is watched for changes.
	Watching bool `json:"watching"`
}

// ConfigManager is what the admin API needs from whoever owns the config
// file; the reference server implements it. Implementations must be safe
// for concurrent use. Options.Config may be nil: then /config/status answers
// a status with an empty path and /config/reload, /registry/sync and a
// bodyless /config/validate answer 409 "no config file". A manager that
// also implements ConfigFileValidator lets POST /config/validate check the
// file without applying it.
type ConfigManager interface {
	// Status reports the file's path, version and reload history.
	Status() ConfigStatus
	// Reload re-reads the file and applies it as one change. A
	// *config.Error (or *orchestrator.ValidationError) means the
	// file is invalid and nothing changed: the admin API answers 400 listing
	// every error.
	Reload(ctx context.Context) error
	// Sync re-applies the applied file's endpoints to the orchestrator,
	// undoing any drift (POST /registry/sync).
	Sync(ctx context.Context) error
	// Config returns the applied configuration. GET /config/endpoints lists
	// its Endpoints; the admin API only ever shows it Redacted.
	Config() config.Config
}

// ConfigFileValidator is implemented by a ConfigManager that can check its
// file without applying it, as the reference server's does: POST
// /config/validate with an empty body calls it. A manager without it
// answers that request 409, as one without a file does. Implementations
// must be safe for concurrent use.
type ConfigFileValidator interface {
	// ValidateFile reads and parses the file exactly as Reload does, and
	// applies nothing. It returns the parsed config, a *config.Error
	// naming the file and listing every problem when it is invalid, or an
	// error wrapping ErrNoConfigFile when there is no file.
	ValidateFile(ctx context.Context) (*config.Config, error)
}

// Options configures New. The zero value is usable: no token and no
// Authorize hook (loopback clients only), no browser origins, no config
// file, no metrics.
type Options struct {
	// Token, when not empty, is required as "Authorization: Bearer <token>"
	// on every route that is not open (see Route.Open); it is compared in
	// constant time and never logged or shown. Default: the Orchestrator's
	// (orchestrator.WithAdminToken), which the gateway also keeps from
	// reaching a backend, so it is configured once; set it here only to
	// override that. With no token at all, every route that is not open
	// answers loopback clients with a loopback Host header only. When
	// Authorize is set, Token is not checked, but it is still kept out of
	// every answer and log line.
	Token string
	// Authorize, when not nil, replaces the built-in authentication, so
	// that a host service can put the admin API behind its own (a session
	// cookie, mTLS, a header its SSO proxy verified): neither Token nor the
	// loopback rule applies then (an Authorize that wants the token as well
	// checks it itself). It is called once for every request to a route
	// that is not open (see Route.Open; /health, /health/live, /metrics,
	// /openapi.json, /docs and /redoc stay open to everyone), unknown paths
	// and /debug/pprof/ included, after the Origin and Sec-Fetch-Site
	// checks and before the body's media type is checked or the route
	// runs; a CORS preflight from an allowed origin is answered without it.
	// It sees the request as the admin API does (behind http.StripPrefix,
	// without the prefix) and must not read the body. It must be safe for
	// concurrent use.
	//
	// A nil error allows the request. An error refuses it with a problem
	// document whose detail is the error's message, which must therefore
	// hold no secret (the admin tokens are redacted from it): 403
	// "forbidden" when the error is or wraps ErrForbidden, for a caller the
	// host knows but does not allow (fmt.Errorf("%w: role viewer",
	// admin.ErrForbidden)); 401 "unauthorized", with WWW-Authenticate:
	// Bearer realm="orchestrator-admin", for any other error, a caller the
	// host does not know. Default nil: the token, or loopback clients only,
	// as Token says.
	Authorize func(*http.Request) error
	// AllowedOrigins lists the browser origins ("https://ops.example.com",
	// scheme://host[:port], compared case-insensitively) allowed to call the
	// admin API; they also get CORS headers and preflight answers. A request
	// with any other Origin gets 403, except the admin's own origin
	// ("http://" or "https://" followed by the request's Host), so that
	// /docs can call the API. "*" has no special meaning. Default none.
	AllowedOrigins []string
	// Config is the owner of the config file. Default nil: no config file.
	Config ConfigManager
	// Metrics serves GET /metrics (Prometheus text). Default nil: /metrics
	// answers a 404 problem.
	Metrics http.Handler
	// Draining reports whether the server is shutting down; while it returns
	// true /health answers 503 {"status":"draining"}. Default nil: never.
	Draining func() bool
	// Logger receives one line per admin request (debug for reads, info for
	// changes, warn for refusals, error for failures) with the attribute
	// logger=orchestrator.admin. Headers are never logged. Default: the
	// Orchestrator's (its ComponentLogger, so WithLogger and WithLoggerKey
	// apply), so it is configured once; set it to send admin lines
	// elsewhere.
	Logger *slog.Logger
	// Version is the gateway's version, shown by /health/status. Default "".
	Version string
	// Pprof, when not nil, serves /debug/pprof/ and every path under it:
	// the Go runtime's profiles (heap, goroutines, CPU), as net/http/pprof's
	// handlers answer them. The routes sit behind the same guard as every
	// protected route (Authorize, the token, or loopback only) and are not
	// listed by Routes nor by /openapi.json: they are a diagnostic aid, not
	// part of the API. Default nil: /debug/pprof/ answers 404 like any
	// unknown path. The admin package does not import net/http/pprof
	// itself, whose init registers the handlers on http.DefaultServeMux;
	// orchestratord builds this handler when admin.pprof is true.
	Pprof http.Handler
	// MaxConfigBytes caps the body of POST /config/validate (413 past it),
	// which takes a whole config file: the server passes its
	// server.max_config_bytes, so that any file it would load can be
	// validated first and none bigger is read into memory. 0 (or less)
	// means config.DefaultMaxConfigBytes. The other routes take small
	// JSON bodies and keep a fixed 1 MiB cap.
	MaxConfigBytes int64
}

// Route describes one route the Handler serves.
type Route struct {
	// Method is the HTTP method: GET (which also answers HEAD), POST, PUT
	// or DELETE.
	Method string
	// Pattern is the path pattern as net/http.ServeMux spells it, such as
	// "/health/endpoints/{id}" or "/router/debug/{path...}".
	Pattern string
	// Summary says in one line what the route does.
	Summary string
	// Open is true for routes that need no authentication, neither the
	// token, the loopback rule nor Options.Authorize: /health, /health/live
	// and /metrics, and /openapi.json and the /docs and /redoc pages, which
	// hold no data (the API calls /docs makes are authenticated as any
	// other). The Origin and Sec-Fetch-Site checks still apply to them.
	Open bool
}

// Handler is the admin API, an http.Handler. Create it with New. It is safe
// for concurrent use.
type Handler struct {
	o       *orchestrator.Orchestrator
	opts    Options
	log     *slog.Logger
	routes  []route
	mux     *http.ServeMux
	started time.Time

	tokenHash [sha256.Size]byte
	origins   map[string]bool

	// jsonBody is the body rule of every API route but POST
	// /config/validate; configBody is that route's, with YAML types and
	// the MaxConfigBytes cap.
	jsonBody, configBody bodyRule

	pages pages
}

// route is one row of the route table that both Routes and the mux are
// built from, so that they cannot disagree.
type route struct {
	Route
	fn handlerFunc
}

// handlerFunc serves one admin request. It writes a success response and
// returns nil, or writes nothing and returns the error that writeError turns
// into a problem document.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// maxBodyBytes caps every request body.
const maxBodyBytes = 1 << 20

// New returns the admin API for o. It panics if o is nil: that is a
// programming error, not a runtime condition.
func New(o *orchestrator.Orchestrator, opts Options) *Handler {
	if o == nil {
		panic("admin: New(nil orchestrator)")
	}
	h := &Handler{
		o:       o,
		opts:    opts,
		started: time.Now(),
		origins: make(map[string]bool, len(opts.AllowedOrigins)),
	}
	h.opts.AllowedOrigins = slices.Clone(opts.AllowedOrigins)
	if h.opts.MaxConfigBytes <= 0 {
		h.opts.MaxConfigBytes = config.DefaultMaxConfigBytes
	}
	h.jsonBody = bodyRule{types: jsonTypes, limit: maxBodyBytes}
	h.configBody = bodyRule{types: configTypes, limit: h.opts.MaxConfigBytes, setting: "server.max_config_bytes"}
	for _, origin := range opts.AllowedOrigins {
		h.origins[normalizeOrigin(origin)] = true
	}
	if h.opts.Token == "" {
		h.opts.Token = o.AdminToken()
	}
	if h.opts.Token != "" {
		h.tokenHash = sha256.Sum256([]byte(h.opts.Token))
	}
	if opts.Logger != nil {
		h.log = opts.Logger.With(slog.String("logger", "orchestrator.admin"))
	} else {
		h.log = o.ComponentLogger("orchestrator.admin")
	}
	h.pages = mustLoadPages()

	h.routes = []route{
		{Route{http.MethodGet, "/health", "Liveness of the gateway itself", true}, h.getHealth},
		{Route{http.MethodGet, "/health/live", "Process liveness: 200 while the process serves, draining included", true}, h.getHealthLive},
		{Route{http.MethodGet, "/health/status", "Gateway status, version, uptime and endpoint counts", false}, h.getHealthStatus},
		{Route{http.MethodGet, "/health/endpoints", "Every endpoint with its health", false}, h.getHealthEndpoints},
		{Route{http.MethodGet, "/health/endpoints/{id}", "One endpoint with its health", false}, h.getEndpoint},
		{Route{http.MethodGet, "/health/unhealthy", "The unhealthy endpoints", false}, h.getUnhealthy},
		{Route{http.MethodGet, "/health/summary", "Endpoint counts by status and by circuit-breaker state", false}, h.getHealthSummary},
		{Route{http.MethodPost, "/health/check/{id}", "Probe an endpoint now", false}, h.postHealthCheck},

		{Route{http.MethodGet, "/config/status", "Config file path, version and reload history", false}, h.getConfigStatus},
		{Route{http.MethodGet, "/config/endpoints", "The endpoints of the applied config", false}, h.getConfigEndpoints},
		{Route{http.MethodPost, "/config/reload", "Re-read and apply the config file", false}, h.postConfigReload},
		{Route{http.MethodPost, "/config/validate", "Validate a YAML or JSON config, or the config file, without applying it", false}, h.postConfigValidate},

		{Route{http.MethodGet, "/registry/endpoints", "List registered endpoints", false}, h.getRegistryEndpoints},
		{Route{http.MethodPost, "/registry/endpoints", "Register an endpoint, or an array of them (all or none)", false}, h.postRegistryEndpoint},
		{Route{http.MethodGet, "/registry/endpoints/{id}", "Get a registered endpoint", false}, h.getRegistryEndpoint},
		{Route{http.MethodPut, "/registry/endpoints/{id}", "Replace an API-owned endpoint's config", false}, h.putRegistryEndpoint},
		{Route{http.MethodDelete, "/registry/endpoints/{id}", "Deregister an API-owned endpoint", false}, h.deleteRegistryEndpoint},
		{Route{http.MethodGet, "/registry/stats", "Endpoint counts by source, status and circuit-breaker state", false}, h.getRegistryStats},
		{Route{http.MethodPost, "/registry/sync", "Re-apply the config file's endpoints", false}, h.postRegistrySync},
		{Route{http.MethodPost, "/registry/endpoints/{id}/targets/{target}/drain", "Take one target of an endpoint out of balancing: no new requests, in-flight ones finish (an operator override, stored in the registry)", false}, h.postDrainTarget},
		{Route{http.MethodPost, "/registry/endpoints/{id}/targets/{target}/restore", "Return a drained target to balancing", false}, h.postRestoreTarget},

		{Route{http.MethodGet, "/circuit-breaker/status", "Every endpoint's circuit breaker", false}, h.getBreakers},
		{Route{http.MethodGet, "/circuit-breaker/endpoints/{id}", "One endpoint's circuit breaker", false}, h.getBreaker},
		{Route{http.MethodGet, "/circuit-breaker/open", "The open circuit breakers", false}, h.getOpenBreakers},
		{Route{http.MethodPost, "/circuit-breaker/reset/{id}", "Close an endpoint's circuit breaker", false}, h.postResetBreaker},
		{Route{http.MethodPost, "/circuit-breaker/trip/{id}", "Hold an endpoint's circuit breaker open until reset (an operator override, stored in the registry)", false}, h.postTripBreaker},
		{Route{http.MethodPost, "/circuit-breaker/reset-all", "Close every circuit breaker", false}, h.postResetAllBreakers},

		{Route{http.MethodGet, "/router/routes", "The current route table", false}, h.getRoutes},
		{Route{http.MethodGet, "/router/test/{id}", "Resolve an endpoint's own route and test each target's connectivity", false}, h.getRouteTest},
		{Route{http.MethodGet, "/router/debug/{path...}", "Resolve a path as if it followed the gateway prefix", false}, h.getRouteDebug},
		{Route{http.MethodPost, "/router/refresh", "Rebuild the route table from the registry", false}, h.postRouterRefresh},

		{Route{http.MethodGet, "/metrics", "Prometheus metrics", true}, h.getMetrics},
		// The document and the pages that show it are open: they are the
		// same for every gateway of this version and hold none of its data,
		// and a browser's address bar cannot send the token. The API calls
		// the /docs page makes still need it.
		{Route{http.MethodGet, "/openapi.json", "This API's OpenAPI 3.1 document; open, as it describes the API and holds no data", true}, h.getOpenAPI},
		{Route{http.MethodGet, "/docs", "Interactive API page; open, as the page holds no data", true}, h.getDocs},
		{Route{http.MethodGet, "/redoc", "Read-only reference page of the OpenAPI document; open, as it holds no data", true}, h.getRedoc},
		{Route{http.MethodGet, "/status", "HTML status page", false}, h.getStatusPage},
	}
	h.mux = h.buildMux()
	return h
}

// Routes returns every route the Handler serves, in a stable order. The
// slice is a copy.
func (h *Handler) Routes() []Route {
	out := make([]Route, len(h.routes))
	for i, rt := range h.routes {
		out[i] = rt.Route
	}
	return out
}

// ServeHTTP serves one admin request and logs it. Every answer carries
// X-Request-ID, as the gateway's own do: the id an outer handler already
// put on the response (a host's middleware), else the client's when it is
// acceptable by the gateway's rule (1 to 128 letters, digits and
// -_.:+/=@), else a new UUID. The same id is the request_id of a problem
// document and of the request's log line, so that a client reporting a
// failure and the operator reading the log name the same request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := adminRequestID(w, r)
	w.Header()["X-Request-Id"] = []string{id}
	rec := &statusRecorder{ResponseWriter: w, requestID: id}
	h.mux.ServeHTTP(rec, r)
	h.logRequest(r, rec, time.Since(start))
}

// adminRequestID picks the request's X-Request-ID. An id already on the
// response wins, so that a handler in front of the admin API that answers
// with its own id (and logs it) is not contradicted by a second one.
func adminRequestID(w http.ResponseWriter, r *http.Request) string {
	if v := w.Header()["X-Request-Id"]; len(v) == 1 && requestid.Valid(v[0]) {
		return v[0]
	}
	if v := r.Header["X-Request-Id"]; len(v) == 1 && requestid.Valid(v[0]) {
		return v[0]
	}
	return requestid.New()
}

// buildMux registers every route of the table, plus, for each path, a
// method-less pattern answering 405 with Allow (and CORS preflights), and a
// catch-all answering 404, so that every answer is a problem document.
func (h *Handler) buildMux() *http.ServeMux {
	mux := http.NewServeMux()
	var paths []string
	allow := map[string][]string{}
	open := map[string]bool{}
	for _, rt := range h.routes {
		body := &h.jsonBody
		if rt.Method == http.MethodPost && rt.Pattern == "/config/validate" {
			body = &h.configBody
		}
		mux.Handle(rt.Method+" "+rt.Pattern, h.wrap(rt.Open, body, rt.fn))
		if _, seen := allow[rt.Pattern]; !seen {
			paths = append(paths, rt.Pattern)
			open[rt.Pattern] = true
		}
		allow[rt.Pattern] = append(allow[rt.Pattern], rt.Method)
		if rt.Method == http.MethodGet {
			allow[rt.Pattern] = append(allow[rt.Pattern], http.MethodHead)
		}
		open[rt.Pattern] = open[rt.Pattern] && rt.Open
	}
	for _, p := range paths {
		methods := allow[p]
		mux.Handle(p, h.wrapFallback(open[p], methods))
	}
	// Any media type for these two: go tool pprof posts
	// application/octet-stream to /debug/pprof/symbol, a lookup that
	// changes nothing, and an unknown path answers 404 whatever its body.
	anyBody := &bodyRule{limit: maxBodyBytes}
	if pprof := h.opts.Pprof; pprof != nil {
		mux.Handle("/debug/pprof/", h.wrap(false, anyBody, func(w http.ResponseWriter, r *http.Request) error {
			pprof.ServeHTTP(w, r)
			return nil
		}))
	}
	mux.Handle("/", h.wrap(false, anyBody, func(w http.ResponseWriter, r *http.Request) error {
		return notFoundRoute(r)
	}))
	return mux
}

// wrap applies the security checks and the body rule, then runs fn and
// turns its error into a problem document.
func (h *Handler) wrap(open bool, body *bodyRule, fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h.guard(w, r, open, body); err != nil {
			h.writeError(w, r, err)
			return
		}
		// A declared length past the cap is refused before reading a byte;
		// MaxBytesReader catches a chunked body as it streams.
		if r.ContentLength > body.limit {
			h.writeError(w, r, body.tooLarge())
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, body.limit)
		// Admin answers describe live state and may be sensitive: never cache.
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if err := fn(w, r); err != nil {
			h.writeError(w, r, err)
		}
	})
}

// wrapFallback answers a known path with a method it does not serve: a CORS
// preflight from an allowed origin gets 204, anything else 405 with Allow.
func (h *Handler) wrapFallback(open bool, methods []string) http.Handler {
	allow := strings.Join(methods, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.preflight(w, r, allow) {
			return
		}
		// No body rule: the method is refused whatever the body is.
		if err := h.guard(w, r, open, nil); err != nil {
			h.writeError(w, r, err)
			return
		}
		h.writeError(w, r, methodNotAllowed(r, allow))
	})
}
