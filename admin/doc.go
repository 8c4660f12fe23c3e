// Package admin is the gateway's admin REST API as an http.Handler that any
// program can mount next to (never under) the gateway prefix:
//
//	token := os.Getenv("ORCHESTRATOR_ADMIN_TOKEN")
//	o, _ := orchestrator.New(orchestrator.WithAdminToken(token), ...)
//	adm := admin.New(o, admin.Options{Token: token})
//	mux := http.NewServeMux()
//	mux.Handle(o.Prefix()+"/", o)
//	mux.Handle("/", adm)
//
// (WithAdminToken keeps the token from reaching a backend.) The admin API
// can also sit under a path of its own, with http.StripPrefix, and behind
// the host service's own authentication instead of the token
// (Options.Authorize): see the example of New.
//
// It serves the routes listed by Handler.Routes: health and status views,
// the config file's status, reload and validation, the endpoint registry
// (create, replace, delete with ETag/If-Match), circuit-breaker levers, route
// debugging, Prometheus metrics, an OpenAPI 3.1 document (/openapi.json), an
// interactive API page that works offline (/docs), a read-only reference of
// the document rendered by the server without script (/redoc) and a
// self-refreshing HTML status page (/status).
//
// # Responses
//
// Successful answers are JSON (application/json); lists are
// {"endpoints": [...], "count": N}. Every error is an RFC 9457 problem
// document (application/problem+json) whose type is
// "urn:orchestrator:problem:<kind>", with title, status, detail, instance,
// request_id and, for rejected input, an "errors" list naming each offending field (with
// line and column for config files): every one, or the first 100 and an
// "omitted" count of the rest. Request bodies are capped at 1 MiB (413 past
// it), but for POST /config/validate's, capped at Options.MaxConfigBytes
// (server.max_config_bytes, default 8 MiB) as the config file is; JSON
// bodies are decoded strictly: an unknown field, a wrong type or trailing
// data is a 400 that names the problem. Every answer carries X-Request-ID,
// as the gateway's do: the client's when it is acceptable, else a new UUID
// (or the id a handler in front already put on the response); it is also
// the problem's request_id and the request log line's.
//
// # Security
//
// /health, /health/live and /metrics are open to everyone, and so are
// /openapi.json and the /docs and /redoc pages, which hold no data: the
// document is the same for every gateway of this version. Every other route, unknown paths
// included, requires "Authorization: Bearer <token>"
// when Options.Token is set (401 otherwise); with no token they answer
// loopback clients only (403 otherwise), judged by the connection's address
// alone (X-Forwarded-For is never believed), and only when the Host header
// is a loopback name, which defeats DNS rebinding. When Options.Authorize is
// set, it replaces both: the host service's hook decides every request to a
// route that is not open, and its error chooses 401, or 403 when it wraps
// ErrForbidden. The browser checks below hold in every mode.
//
// A request whose Origin header is neither listed in Options.AllowedOrigins
// nor the admin's own origin is refused with 403, which stops a web page from
// driving a local admin API with "simple" cross-origin requests. Two more
// checks cover browsers that send no Origin: a write (POST, PUT, PATCH,
// DELETE) the browser marks "Sec-Fetch-Site: cross-site" gets 403 however it
// is authenticated, unless its Origin is allowed; and a write with a body
// must label it application/json or an application/*+json type (POST
// /config/validate also takes YAML types), else 415 with an Accept header,
// since text/plain, form and multipart bodies are what a page can send
// cross-site without a CORS preflight. A write without a body (a reload, a
// breaker lever, a DELETE) needs no Content-Type. The token is never logged
// nor shown by any route.
//
// A reverse proxy running on the same host makes every client it forwards
// look like a loopback client: put a token on the admin API in that setup.
//
// A browser opens /docs and /redoc whatever the mode, since they are open.
// /redoc only shows the document; the requests /docs sends need the token
// like any other, and the page has a token field for them, whose value
// stays in its memory and goes out as "Authorization: Bearer". With a
// token, /status needs the Authorization header like every other protected
// route, and a browser's address bar cannot send one: open it over a
// loopback listener without token (admin.listen on 127.0.0.1), or through
// a proxy that adds the header. An Options.Authorize that accepts the host
// service's session cookie lets a browser open it directly; the Origin,
// Sec-Fetch-Site and media-type checks are what keep other sites' pages
// from riding on that cookie.
package admin
