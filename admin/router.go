package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/orchestrator-go/orchestrator"
)

// routeList is the body of GET /router/routes and POST /router/refresh.
type routeList struct {
	Prefix string                   `json:"prefix"`
	Routes []orchestrator.RouteInfo `json:"routes"`
	Count  int                      `json:"count"`
}

// resolution is orchestrator.Resolution with every field always present.
type resolution struct {
	Matched     bool   `json:"matched"`
	EndpointID  string `json:"endpoint_id"`
	UpstreamURL string `json:"upstream_url"`
	Reason      string `json:"reason"`
}

// routeTest is the body of GET /router/test/{id}.
type routeTest struct {
	resolution
	// Path is the gateway path of the endpoint's own route.
	Path                string                    `json:"path"`
	Status              orchestrator.HealthStatus `json:"status"`
	CircuitBreakerState orchestrator.BreakerState `json:"circuit_breaker_state"`
	// Reachable is true when at least one target answered over HTTP.
	Reachable bool `json:"reachable"`
	// Targets holds one connectivity test per target.
	Targets []orchestrator.TargetCheck `json:"targets"`
}

func resolutionOf(r orchestrator.Resolution) resolution {
	return resolution{Matched: r.Matched, EndpointID: r.EndpointID, UpstreamURL: r.UpstreamURL, Reason: r.Reason}
}

func (h *Handler) routeList() routeList {
	routes := h.o.Routes()
	for i := range routes {
		if routes[i].Methods == nil {
			routes[i].Methods = []string{} // empty means all; never null
		}
	}
	return routeList{Prefix: h.o.Prefix(), Routes: routes, Count: len(routes)}
}

func (h *Handler) getRoutes(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, h.routeList())
}

// getRouteTest resolves the endpoint's own route ({prefix}/{name}[/{version}])
// and tests each target's connectivity (Orchestrator.CheckTargets): the
// route resolving says nothing of whether anything listens behind it.
func (h *Handler) getRouteTest(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ep, err := h.o.Endpoint(id)
	if err != nil {
		return err
	}
	path := "/" + url.PathEscape(ep.Config.Name)
	if ep.Config.Version != "" {
		path += "/" + url.PathEscape(ep.Config.Version)
	}
	res := resolutionOf(h.o.Resolve(path))
	if res.EndpointID != id && res.Reason == "" {
		res.Reason = fmt.Sprintf("the route is served by endpoint %q, which claimed it first", res.EndpointID)
	}
	checks, err := h.o.CheckTargets(r.Context(), id)
	if err != nil {
		return err
	}
	reachable := false
	for _, c := range checks {
		reachable = reachable || c.Reachable
	}
	return writeJSON(w, http.StatusOK, routeTest{
		resolution:          res,
		Path:                h.o.Prefix() + path,
		Status:              ep.Status,
		CircuitBreakerState: ep.CircuitBreakerState,
		Reachable:           reachable,
		Targets:             checks,
	})
}

// getRouteDebug resolves {path...} as if it followed the gateway prefix.
// It works on the escaped path, so that %2F and encoded dot segments reach
// the resolver as a proxied request's would; the query is kept verbatim.
func (h *Handler) getRouteDebug(w http.ResponseWriter, r *http.Request) error {
	// The mux matched "/router/debug/{path...}" segment by segment on the
	// escaped path; drop those two segments, however they were escaped.
	parts := strings.SplitN(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/", 3)
	rest := ""
	if len(parts) == 3 {
		rest = parts[2]
	}
	target := "/" + rest
	if r.URL.RawQuery != "" || r.URL.ForceQuery {
		target += "?" + r.URL.RawQuery
	}
	return writeJSON(w, http.StatusOK, resolutionOf(h.o.Resolve(target)))
}

func (h *Handler) postRouterRefresh(w http.ResponseWriter, r *http.Request) error {
	if err := h.o.Refresh(r.Context()); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, h.routeList())
}
