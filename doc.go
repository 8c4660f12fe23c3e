// Package orchestrator is a transparent API gateway for Go programs.
//
// New returns an *Orchestrator, an http.Handler that forwards
// {prefix}/{name}/{version}/{rest} (prefix "/orchestrator" by default) to
// {endpoint url}/{rest} of a registered endpoint. Credentials
// (Authorization, X-API-Key, Cookie) and every other end-to-end header pass
// through untouched: each backend authenticates its own callers.
//
//	o, err := orchestrator.New(
//		orchestrator.WithEndpoints(orchestrator.Endpoint{
//			Name: "users", Version: "v1", URL: "http://127.0.0.1:9001/api",
//		}),
//	)
//	if err != nil { ... }
//	defer o.Close()
//	http.ListenAndServe(":8000", o)                 // the whole server
//	mux.Handle("/orchestrator/", o)                  // inside an existing mux
//	http.ListenAndServe(":8000", o.Middleware(app))  // in front of an existing handler
//
// # Desired state and observed state
//
// A Registry holds endpoint configurations (what should exist); the default
// is an in-memory MemoryRegistry and WithRegistry plugs in another (etcd, a
// database). The Orchestrator follows the registry's Watch events and
// rebuilds an immutable route table that it publishes with an atomic
// pointer swap, so a request never takes a lock to find its route and a
// change never cuts a request in flight.
//
// Health, circuit breakers and counters are observed state: they belong to
// the Orchestrator, never to the registry, so two gateways sharing one
// registry each keep their own. Endpoint and Endpoints report them as
// RegisteredEndpoint values.
//
// Sync replaces the endpoints of one source in one change; Apply installs a
// Desired state (the global breaker and health-check defaults and the
// config-owned endpoints) the same way. The library reads no file:
// orchestratord's config file is package
// github.com/orchestrator-go/orchestrator/config, which hands a parsed file
// to New (Config.Options) and to Apply (Config.Desired).
//
// # Failing fast
//
// Endpoints with a health_check_path are probed by a Prober (HTTP GET by
// default) right after registration and then every interval, on a bounded
// pool of workers started as probes need them; a custom Prober is called
// for every endpoint whose checks are on, with the upstream's host and port. An endpoint that fails unhealthy_threshold probes in a
// row is unhealthy: its requests get 503 at once, without touching the
// backend. Each endpoint also has a failsafe-go circuit breaker that opens
// after failure_threshold consecutive failures (transport errors, timeouts,
// 5xx) and refuses requests with 503 and Retry-After until reset_timeout
// lets trial requests through. A FallbackConfig can replace the error with
// a static response or another endpoint.
//
// # Errors
//
// Errors the gateway produces itself are application/problem+json (RFC
// 9457) documents whose type is "urn:orchestrator:problem:<kind>":
// no-route (404), dot-segment and fragment (400), method-not-allowed (405
// with Allow; CONNECT and TRACE only where an endpoint lists them),
// too-many-headers (431, past WithMaxHeaderCount), endpoint-disabled, endpoint-unhealthy and circuit-open (503),
// upstream-unreachable (502) and upstream-timeout (504). Each carries
// request_id and, where known, endpoint_id.
//
// # Headers
//
// Hop-by-hop headers and those named in Connection are removed both ways.
// X-Forwarded-For, X-Forwarded-Host and X-Forwarded-Proto are set from the
// connection; a client's own values are kept (and appended to) only when it
// is a trusted proxy (WithTrustedProxies). X-Request-ID is kept when the
// client sent a sane one, generated otherwise, and echoed on the response.
// Bodies are streamed both ways; server-sent events and chunked responses
// are flushed as they arrive; WebSocket upgrades are proxied.
package orchestrator
