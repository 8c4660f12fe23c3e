package admin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/orchestrator-go/orchestrator"
)

// registryStats is the body of GET /registry/stats.
type registryStats struct {
	Total          int                               `json:"total"`
	BySource       map[orchestrator.Source]int       `json:"by_source"`
	ByStatus       map[orchestrator.HealthStatus]int `json:"by_status"`
	ByBreakerState map[orchestrator.BreakerState]int `json:"by_circuit_breaker_state"`
	Routes         int                               `json:"routes"`
}

// etag is the entity tag of an endpoint at a revision.
func etag(revision uint64) string {
	return `"` + strconv.FormatUint(revision, 10) + `"`
}

// checkIfMatch enforces an If-Match precondition (RFC 9110 §13.1.1) against
// the endpoint's current revision. No If-Match means unconditional. Weak
// tags never match: If-Match uses the strong comparison.
//
// It returns the revision the change must still find (0: unconditional), so
// that the check and the change are one step in the orchestrator
// (UpdateIf, DeregisterIf): a writer slipping in between gets a 412 too.
func checkIfMatch(r *http.Request, cur orchestrator.RegisteredEndpoint) (uint64, error) {
	values := r.Header.Values("If-Match")
	if len(values) == 0 {
		return 0, nil
	}
	want := etag(cur.Revision)
	for _, v := range values {
		for _, tag := range strings.Split(v, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "*" {
				return 0, nil
			}
			if tag == want {
				return cur.Revision, nil
			}
		}
	}
	return 0, &apiError{status: http.StatusPreconditionFailed, kind: "precondition-failed", title: "Precondition failed",
		detail: fmt.Sprintf("If-Match %s does not match endpoint %q's current ETag %s; GET it again and retry", strings.Join(values, ", "), cur.ID, want)}
}

// ifMatchRevision evaluates If-Match: the revision a conditional change
// must still find, or 0. A single tag goes to the registry as it is, which
// checks it in the same step as the write: comparing it with this
// gateway's view first would refuse a revision another gateway wrote and
// this one has not followed yet. Several tags are matched against the
// view, since the store checks one revision.
func (h *Handler) ifMatchRevision(r *http.Request, id string) (uint64, error) {
	var tags []string
	for _, v := range r.Header.Values("If-Match") {
		for _, tag := range strings.Split(v, ",") {
			if tag = strings.TrimSpace(tag); tag == "*" {
				return 0, nil
			} else if tag != "" {
				tags = append(tags, tag)
			}
		}
	}
	if len(tags) == 0 {
		return 0, nil
	}
	if len(tags) == 1 {
		if rev, err := strconv.ParseUint(strings.Trim(tags[0], `"`), 10, 64); err == nil && rev > 0 && tags[0] == etag(rev) {
			return rev, nil
		}
	}
	cur, err := h.o.Endpoint(id)
	if err != nil {
		return 0, err
	}
	return checkIfMatch(r, cur)
}

// endpointLocation is the URL path of an endpoint, with the prefix the
// admin API is mounted under (http.StripPrefix keeps the original
// RequestURI, so the prefix is what the routed path lacks of it).
func endpointLocation(r *http.Request, id string) string {
	return mountPrefix(r) + "/registry/endpoints/" + url.PathEscape(id)
}

// mountPrefix returns the path prefix stripped before the request reached
// the Handler, or "" when it is mounted at the root.
func mountPrefix(r *http.Request) string {
	orig, err := url.ParseRequestURI(r.RequestURI)
	if err != nil {
		return ""
	}
	full, routed := orig.EscapedPath(), r.URL.EscapedPath()
	if len(full) > len(routed) && strings.HasSuffix(full, routed) {
		return full[:len(full)-len(routed)]
	}
	return ""
}

// getRegistryEndpoints lists endpoints, optionally filtered by ?source=
// (config, api) and ?status= (healthy, unhealthy, unknown, disabled).
func (h *Handler) getRegistryEndpoints(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	source, status := q.Get("source"), q.Get("status")
	switch orchestrator.Source(source) {
	case "", orchestrator.SourceConfig, orchestrator.SourceAPI:
	default:
		return badParam("source", fmt.Sprintf("%q is not a source; want config or api", source))
	}
	switch orchestrator.HealthStatus(status) {
	case "", orchestrator.StatusHealthy, orchestrator.StatusUnhealthy, orchestrator.StatusUnknown, orchestrator.StatusDisabled:
	default:
		return badParam("status", fmt.Sprintf("%q is not a status; want healthy, unhealthy, unknown or disabled", status))
	}
	eps := filter(h.o.Endpoints(), func(ep orchestrator.RegisteredEndpoint) bool {
		return (source == "" || ep.Source == orchestrator.Source(source)) &&
			(status == "" || ep.Status == orchestrator.HealthStatus(status))
	})
	return writeJSON(w, http.StatusOK, listOf(eps))
}

// postRegistryEndpoint registers an API-owned endpoint: 201 with Location
// and ETag, routable at once. A JSON array registers several instead, all
// or none (postRegistryEndpoints).
func (h *Handler) postRegistryEndpoint(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err // a *http.MaxBytesError, or a client that went away
	}
	if isJSONArray(body) {
		return h.postRegistryEndpoints(w, r, body)
	}
	var ep orchestrator.Endpoint
	if err := decodeJSONBody(body, &ep); err != nil {
		return err
	}
	reg, err := h.o.Register(r.Context(), ep)
	if err != nil {
		return err
	}
	w.Header().Set("Location", endpointLocation(r, reg.ID))
	w.Header().Set("ETag", etag(reg.Revision))
	return writeJSON(w, http.StatusCreated, reg)
}

// postRegistryEndpoints registers the endpoints of a JSON array as one
// change (Orchestrator.RegisterAll): 201 with the list of them, each
// routable at once, or a problem and none registered. A 400 names each
// invalid field by the endpoint's index ("[2].url"); a 409 names each id
// or route already taken. There is no Location: the answer lists several
// resources, each with its revision.
func (h *Handler) postRegistryEndpoints(w http.ResponseWriter, r *http.Request, body []byte) error {
	var eps endpointArray
	if err := decodeJSONBody(body, &eps); err != nil {
		return err
	}
	if len(eps) == 0 {
		return badBody("", "the request body is an empty array; send one endpoint object, or an array of at least one")
	}
	regs, err := h.o.RegisterAll(r.Context(), []orchestrator.Endpoint(eps))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, listOf(regs))
}

// isJSONArray reports whether body holds a JSON array: its first byte
// after JSON's whitespace is '['. Anything else is decoded as one object,
// whose decoder then names what is wrong.
func isJSONArray(body []byte) bool {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	return len(trimmed) > 0 && trimmed[0] == '['
}

func (h *Handler) getRegistryEndpoint(w http.ResponseWriter, r *http.Request) error {
	ep, err := h.o.Endpoint(r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(ep.Revision))
	return writeJSON(w, http.StatusOK, ep)
}

// putRegistryEndpoint replaces an API-owned endpoint's config. The body is
// an orchestrator.Endpoint whose id is the path's or empty.
func (h *Handler) putRegistryEndpoint(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	revision, err := h.ifMatchRevision(r, id)
	if err != nil {
		return err
	}
	var ep orchestrator.Endpoint
	if err := decodeJSON(r, &ep); err != nil {
		return err
	}
	switch ep.ID {
	case "":
		ep.ID = id
	case id:
	default:
		return &orchestrator.ValidationError{Errors: []orchestrator.FieldError{{
			Field: "id", Message: fmt.Sprintf("%q differs from the id in the path %q; omit it or make them equal (an id cannot be renamed)", ep.ID, id),
		}}}
	}
	reg, err := h.o.UpdateIf(r.Context(), ep, revision)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(reg.Revision))
	return writeJSON(w, http.StatusOK, reg)
}

func (h *Handler) deleteRegistryEndpoint(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	revision, err := h.ifMatchRevision(r, id)
	if err != nil {
		return err
	}
	if err := h.o.DeregisterIf(r.Context(), id, revision); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) getRegistryStats(w http.ResponseWriter, r *http.Request) error {
	eps := h.o.Endpoints()
	sum := summarize(eps)
	st := registryStats{
		Total:          sum.Total,
		BySource:       map[orchestrator.Source]int{orchestrator.SourceConfig: 0, orchestrator.SourceAPI: 0},
		ByStatus:       sum.ByStatus,
		ByBreakerState: sum.ByBreakerState,
		Routes:         len(h.o.Routes()),
	}
	for _, ep := range eps {
		st.BySource[ep.Source]++
	}
	return writeJSON(w, http.StatusOK, st)
}

// postRegistrySync re-applies the config file's endpoints and answers the
// config-owned endpoints afterwards.
func (h *Handler) postRegistrySync(w http.ResponseWriter, r *http.Request) error {
	if h.opts.Config == nil {
		return noConfigFile()
	}
	if err := h.opts.Config.Sync(r.Context()); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, listOf(filter(h.o.Endpoints(), func(ep orchestrator.RegisteredEndpoint) bool {
		return ep.Source == orchestrator.SourceConfig
	})))
}

// endpointArray is the body of a bulk POST /registry/endpoints. Its
// Validate lets checkJSON report each endpoint's validation problems (a bad
// url, an empty name) beside the body's decoding problems, each field
// prefixed by the endpoint's index, as RegisterAll names them. Problems
// between endpoints (a shared id or route) are RegisterAll's, once the body
// decodes.
type endpointArray []orchestrator.Endpoint

// Validate validates every endpoint on its own.
func (a endpointArray) Validate() error {
	var all orchestrator.ValidationError
	for i, ep := range a {
		var ve *orchestrator.ValidationError
		if !errors.As(ep.Validate(), &ve) {
			continue
		}
		for _, fe := range ve.Errors {
			fe.Field = fmt.Sprintf("[%d].%s", i, fe.Field)
			if len(all.Errors) < orchestrator.MaxReportedErrors {
				all.Errors = append(all.Errors, fe)
			} else {
				all.Omitted++
			}
		}
		all.Omitted += ve.Omitted
	}
	if all.Total() == 0 {
		return nil
	}
	return &all
}
