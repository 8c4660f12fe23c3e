package orchestrator

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/orchestrator-go/orchestrator/internal/routeindex"
	"github.com/orchestrator-go/orchestrator/internal/urlpath"
)

// route is everything the hot path needs about one endpoint, computed once
// when the endpoint's config is applied. Routes are immutable; a config
// change builds a new one. The observed state (healthState, breaker) is
// shared by pointer.
type route struct {
	reg registration // the registry's bookkeeping; the config is ep (whose ID is the route's id)
	ep  Endpoint

	// path is the route path it serves under the prefix: "/name/version",
	// or "/name" for an unversioned endpoint.
	path string

	// targets are the upstreams requests go to: one for the url
	// shorthand. set chooses among them; nil when there is nothing to
	// choose (the url shorthand without load_balancing or
	// outlier_detection), so such a route pays for no selection.
	targets []*upstream
	set     *targetSet
	retry   *retryPlan // nil without retries

	allowAll     bool // no methods listed (the list is ep.Methods)
	healthActive bool // probed: checks on, not disabled, and a health_check_path or a custom prober

	policies *endpointPolicies
	traffic  *trafficState
	metrics  *endpointMetrics // nil when metrics are off

	health *HealthCheckConfig // merged; shared by routes without an override

	fallback *fallbackPlan // never nil; shared by routes without their own

	// extra holds what only some endpoints configure (header rules, rate
	// limits, adaptive concurrency); nil for the others, which pay one pointer for all of them
	// and keep the route in its size class.
	extra *routeExtra

	// timeline is the last 15 minutes of traffic, for the status page.
	// It lives here rather than in traffic, whose 48 bytes it would push
	// a size class up, and every rebuilt route carries it over.
	timeline lazyTimeline
}

// routeExtra is a route's optional plans.
type routeExtra struct {
	headers    *headerPlan    // request_headers and response_headers; nil without
	rateLimits *rateLimitPlan // rate_limit (the endpoint's, else the global); nil without
	adaptive   *adaptivePlan  // adaptive_concurrency; nil without
}

// adaptivePlan returns the route's adaptive limiter, or nil.
func (rt *route) adaptivePlan() *adaptivePlan {
	if rt.extra == nil {
		return nil
	}
	return rt.extra.adaptive
}

// headerTimeout is the endpoint's timeout, or the default. Computed, not
// stored: the route stays in its size class.
func (rt *route) headerTimeout() time.Duration {
	if d := rt.ep.Timeout.Std(); d > 0 {
		return d
	}
	return DefaultTimeout
}

// headerPlan returns the route's header rules, or nil.
func (rt *route) headerPlan() *headerPlan {
	if rt.extra == nil {
		return nil
	}
	return rt.extra.headers
}

// applyResponseRules applies the route's response_headers to an answer
// the gateway writes itself for the endpoint (a problem document, a
// static fallback): an HSTS or CORS header set by a rule is on every
// answer of the endpoint, as Caddy's and Traefik's header rules are.
func (rt *route) applyResponseRules(h http.Header) {
	if plan := rt.headerPlan(); plan != nil && plan.response != nil {
		plan.response.apply(h)
	}
}

// rateLimitPlan returns the route's rate limits, or nil.
func (rt *route) rateLimitPlan() *rateLimitPlan {
	if rt.extra == nil {
		return nil
	}
	return rt.extra.rateLimits
}

// fallbackPlan is what a route answers with when it cannot serve. Few
// endpoints have a fallback section, so the plan sits behind a pointer and
// the routes without one share a plan per strategy: each route is 64
// bytes smaller for it, one size class down.
type fallbackPlan struct {
	strategy   FallbackStrategy
	endpointID string      // FallbackEndpoint
	status     int         // FallbackStaticResponse
	header     http.Header // FallbackStaticResponse
	body       []byte      // FallbackStaticResponse
}

// sharedFallbacks are the plans of routes without a fallback section: the
// strategy alone, and a bodiless 503 for a static response.
var sharedFallbacks = map[FallbackStrategy]*fallbackPlan{
	"":                     {status: http.StatusServiceUnavailable},
	FallbackErrorResponse:  {strategy: FallbackErrorResponse, status: http.StatusServiceUnavailable},
	FallbackStaticResponse: {strategy: FallbackStaticResponse, status: http.StatusServiceUnavailable},
	FallbackEndpoint:       {strategy: FallbackEndpoint, status: http.StatusServiceUnavailable},
}

// newFallbackPlan is the plan of an endpoint whose circuit breaker
// settings name strategy and whose own fallback section is f (or nil).
func newFallbackPlan(strategy FallbackStrategy, f *FallbackConfig) *fallbackPlan {
	if f == nil {
		if plan := sharedFallbacks[strategy]; plan != nil {
			return plan
		}
		return &fallbackPlan{strategy: strategy, status: http.StatusServiceUnavailable}
	}
	plan := &fallbackPlan{strategy: strategy, endpointID: f.Endpoint, status: f.Status, body: []byte(f.Body)}
	if f.Strategy != "" {
		plan.strategy = f.Strategy
	}
	if len(f.Headers) > 0 {
		plan.header = make(http.Header, len(f.Headers))
		for k, v := range f.Headers {
			plan.header.Set(k, v)
		}
	}
	if plan.status == 0 {
		plan.status = http.StatusServiceUnavailable
	}
	return plan
}

// registration is a Registration without its Endpoint, which the route
// holds normalized as ep: one copy of the config per route, not two.
type registration struct {
	Source       Source
	Revision     uint64
	RegisteredAt time.Time
}

// allowHeader is the Allow header of the route's 405 answers: built when
// one is sent, not kept, since few requests get one.
func (rt *route) allowHeader() string {
	if rt.allowAll {
		return allowAllHeader
	}
	return allowHeader(rt.ep.Methods)
}

func (rt *route) allows(method string) bool {
	if rt.allowAll {
		// CONNECT would turn the gateway into a tunnel to wherever the
		// backend lets it reach, and TRACE echoes the request back,
		// credentials included (cross-site tracing). Neither is what an
		// endpoint with no methods list means by "all": it gets them only
		// by listing them.
		return method != http.MethodConnect && method != http.MethodTrace
	}
	for _, m := range rt.ep.Methods {
		if m == method {
			return true
		}
	}
	return false
}

// status combines configuration, probes and breakers into the one status a
// user reads. Without an active health check the breaker decides. Of
// several targets, the best eligible one's status is the endpoint's: it is
// unhealthy only when no target can take a request.
func (rt *route) status() HealthStatus {
	if rt.ep.Disabled {
		return StatusDisabled
	}
	if len(rt.targets) == 1 && rt.set == nil {
		if rt.targets[0].drained.Load() {
			return StatusUnhealthy
		}
		return rt.targets[0].status(rt.healthActive)
	}
	best := StatusUnhealthy
	for _, u := range rt.targets {
		if u.Weight() == 0 || !u.usable() {
			continue
		}
		switch u.status(rt.healthActive) {
		case StatusHealthy:
			return StatusHealthy
		case StatusUnknown:
			best = StatusUnknown
		}
	}
	return best
}

// breakerState is the endpoint's breaker state: its target's, or of
// several targets the most open one's when none is closed.
func (rt *route) breakerState() BreakerState {
	if len(rt.targets) == 1 {
		return rt.targets[0].breaker.state()
	}
	worst := BreakerClosed
	for _, u := range rt.targets {
		switch s := u.breaker.state(); s {
		case BreakerClosed, BreakerDisabled:
			return s
		case BreakerOpen:
			worst = BreakerOpen
		case BreakerHalfOpen:
			if worst != BreakerOpen {
				worst = BreakerHalfOpen
			}
		}
	}
	return worst
}

// routeTable is an immutable snapshot of every route, published with an
// atomic pointer swap. Lookups take no lock and do not allocate. Its
// indexes are copy-on-write (internal/routeindex): a registration among
// 10,000 endpoints copies about 1/64 of them.
type routeTable struct {
	ids routeindex.Index[*route]
	// paths maps each served route path, "/name/version" or "/name", to the
	// route serving it. A request's first two segments are looked up as
	// they stand in its path: one hash, one slot and the key's bytes, and
	// no other object is read until the route is found, so that a lookup
	// among 10,000 endpoints touches as little memory as among 10.
	paths routeindex.Index[*route]
}

var emptyTable = &routeTable{ids: routeindex.New[*route](), paths: routeindex.New[*route]()}

// route returns the route of endpoint id, or nil.
func (t *routeTable) route(id string) *route { return t.ids.Get(id) }

// lookup resolves the escaped path after the prefix ("/name/v1/rest") to a
// route and the rest to forward. An endpoint named a with version b wins;
// otherwise an unversioned endpoint a gets "/b/rest".
func (t *routeTable) lookup(p string) (*route, string) {
	name, afterName, ok := urlpath.NextSegment(p)
	if !ok || name == "" {
		return nil, ""
	}
	if version, afterVersion, ok := urlpath.NextSegment(afterName); ok && version != "" {
		// p up to the end of the version segment is "/name/version".
		if rt := t.paths.Get(p[:len(p)-len(afterVersion)]); rt != nil {
			return rt, afterVersion
		}
	}
	if rt := t.paths.Get(p[:len(p)-len(afterName)]); rt != nil {
		return rt, afterName
	}
	return nil, ""
}

// servingRoutes picks the route serving each route path. When two routes
// claim the same name and version (possible only with an external registry
// written by others), the earlier registration wins and the later is
// returned in shadowed, left out of routing.
func servingRoutes(routes map[string]*route) (byPath map[string]*route, shadowed []*route) {
	byPath = make(map[string]*route, len(routes))
	for _, rt := range routes {
		cur := byPath[rt.path]
		switch {
		case cur == nil:
			byPath[rt.path] = rt
		case earlier(cur, rt):
			shadowed = append(shadowed, rt)
		default:
			shadowed = append(shadowed, cur)
			byPath[rt.path] = rt
		}
	}
	return byPath, shadowed
}

// buildTable indexes every route afresh.
func buildTable(routes map[string]*route) (*routeTable, []*route) {
	byPath, shadowed := servingRoutes(routes)
	ids := emptyTable.ids.Edit()
	for id, rt := range routes {
		ids.Set(id, rt)
	}
	paths := emptyTable.paths.Edit()
	for path, rt := range byPath {
		paths.Set(path, rt)
	}
	return &routeTable{ids: ids.Index(), paths: paths.Index()}, shadowed
}

func earlier(a, b *route) bool {
	if !a.reg.RegisteredAt.Equal(b.reg.RegisteredAt) {
		return a.reg.RegisteredAt.Before(b.reg.RegisteredAt)
	}
	return a.ep.ID < b.ep.ID
}

// RouteInfo describes one route of the current table, for the admin API.
type RouteInfo struct {
	// EndpointID is the endpoint's id.
	EndpointID string `json:"endpoint_id"`
	// Path is the gateway path prefix that reaches it, such as
	// "/orchestrator/users/v1".
	Path string `json:"path"`
	// Upstream is the upstream base URL.
	Upstream string `json:"upstream"`
	// Methods lists the allowed methods; empty means all.
	Methods []string `json:"methods"`
	// Disabled is true for a disabled endpoint.
	Disabled bool `json:"disabled"`
	// Status is the endpoint's current status.
	Status HealthStatus `json:"status"`
}

// Routes lists the current routes sorted by path. Safe for concurrent use.
func (o *Orchestrator) Routes() []RouteInfo {
	t := o.table.Load()
	out := make([]RouteInfo, 0, t.ids.Len())
	for _, rt := range t.paths.All() {
		out = append(out, RouteInfo{
			EndpointID: rt.ep.ID,
			Path:       o.prefix + rt.path,
			Upstream:   rt.ep.URL,
			Methods:    slices.Clone(rt.ep.Methods),
			Disabled:   rt.ep.Disabled,
			Status:     rt.status(),
		})
	}
	slices.SortFunc(out, func(a, b RouteInfo) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// Resolution is the answer to "where would this path go?".
type Resolution struct {
	// Matched is true when an endpoint serves the path.
	Matched bool `json:"matched"`
	// EndpointID is the matched endpoint's id.
	EndpointID string `json:"endpoint_id,omitempty"`
	// UpstreamURL is the URL the request would be sent to.
	UpstreamURL string `json:"upstream_url,omitempty"`
	// Reason explains a miss or a refusal (disabled, unhealthy, dot segment).
	Reason string `json:"reason,omitempty"`
}

// Resolve reports how a path that follows the prefix ("/svc/v1/users?x=1" or
// "svc/v1/users") would be routed, without sending anything. Safe for
// concurrent use.
func (o *Orchestrator) Resolve(pathAndQuery string) Resolution {
	if !strings.HasPrefix(pathAndQuery, "/") {
		pathAndQuery = "/" + pathAndQuery
	}
	p, query, hasQuery := strings.Cut(pathAndQuery, "?")
	rt, rest := o.table.Load().lookup(p)
	if rt == nil {
		return Resolution{Reason: "no endpoint matches " + o.prefix + p}
	}
	res := Resolution{Matched: true, EndpointID: rt.ep.ID}
	if urlpath.HasDotSegment(rest) {
		return Resolution{EndpointID: rt.ep.ID, Reason: "the path holds a dot segment and would be answered 400"}
	}
	up := rt.targets[0]
	u := url.URL{Scheme: up.scheme(), Host: up.host}
	u.RawPath = urlpath.Join(up.basePath, rest)
	u.Path, _ = url.PathUnescape(u.RawPath)
	if hasQuery {
		u.RawQuery = query
		u.ForceQuery = query == ""
	}
	res.UpstreamURL = u.String()
	switch st := rt.status(); {
	case st == StatusDisabled:
		res.Reason = "endpoint is disabled: requests get 503"
	case st == StatusUnhealthy:
		res.Reason = "endpoint is unhealthy: requests get 503"
	case rt.breakerState() == BreakerOpen:
		res.Reason = "circuit breaker is open: requests get 503"
	}
	return res
}
