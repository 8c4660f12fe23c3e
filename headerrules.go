package orchestrator

import (
	"fmt"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
)

// HeaderRules edits headers on one side of an endpoint: request_headers on
// the way to the upstream, response_headers on the way back to the client.
// They run after the gateway's own header handling (hop-by-hop removal,
// X-Forwarded-*, X-Request-Id, the admin token's removal), in the order
// remove, set, add, so a rule sees and may override what the gateway set
// (an X-Forwarded-Host the backend should not see, say).
//
// Rules cannot touch what keeps the hop itself correct: hop-by-hop headers
// (Connection and the headers it lists, Keep-Alive, Proxy-*, TE, Trailer,
// Transfer-Encoding, Upgrade) and Content-Length are refused by
// validation, so no rule can re-add a hop-by-hop header, break an
// upgrade, or strip the "TE: trailers" a gRPC request needs. A value that
// holds the admin token is refused too (the token never leaves the
// gateway). Response rules apply to every answer of the endpoint: the
// upstream's, and the gateway's own (problem documents, static
// fallbacks), so that a header such as HSTS is never missing from an error
// page.
type HeaderRules struct {
	// Set replaces every value of each named header with the one given.
	// In request_headers, Host sets the Host the upstream sees (as
	// preserve_host does with the client's).
	Set map[string]string `json:"set,omitempty" yaml:"set,omitempty"`
	// Add appends a value to each named header, keeping those it has.
	Add map[string]string `json:"add,omitempty" yaml:"add,omitempty"`
	// Remove deletes the named headers.
	Remove []string `json:"remove,omitempty" yaml:"remove,omitempty"`
}

// ruleRefusedHeaders are the canonical names no rule may set, add or
// remove: the hop-by-hop headers of RFC 9110 §7.6.1 (and the older ones
// httputil also strips), which belong to one connection, and
// Content-Length, which frames the body the gateway streams.
var ruleRefusedHeaders = map[string]string{
	"Connection":          "hop-by-hop",
	"Proxy-Connection":    "hop-by-hop",
	"Keep-Alive":          "hop-by-hop",
	"Proxy-Authenticate":  "hop-by-hop",
	"Proxy-Authorization": "hop-by-hop",
	"Te":                  "hop-by-hop",
	"Trailer":             "hop-by-hop",
	"Transfer-Encoding":   "hop-by-hop",
	"Upgrade":             "hop-by-hop",
	"Content-Length":      "framing",
}

// validate checks the rules of one side; request says which, for Host.
func (h *HeaderRules) validate(path string, request bool, errs *ValidationError) {
	checkName := func(field, name, verb string) bool {
		if !isToken(name) {
			errs.add(field, fmt.Sprintf("%q is not a valid header name", name))
			return false
		}
		canon := textproto.CanonicalMIMEHeaderKey(name)
		if kind, refused := ruleRefusedHeaders[canon]; refused {
			if kind == "framing" {
				errs.add(field, fmt.Sprintf("%s is set by the gateway from the body it forwards; a rule cannot %s it", name, verb))
			} else {
				errs.add(field, fmt.Sprintf("%s is a hop-by-hop header, which belongs to one connection; a rule cannot %s it", name, verb))
			}
			return false
		}
		if canon == "Host" && (!request || verb != "set") {
			if request {
				errs.add(field, "Host can only be set (it names the upstream's virtual host)")
			} else {
				errs.add(field, "Host is a request header")
			}
			return false
		}
		return true
	}
	checkValue := func(field, value string) {
		for i := 0; i < len(value); i++ {
			if c := value[i]; c < ' ' && c != '\t' || c == 0x7f {
				errs.add(field, fmt.Sprintf("value holds a control character (%q at byte %d)", c, i))
				return
			}
		}
	}
	for _, name := range sortedKeys(h.Set) {
		field := path + ".set." + name
		if checkName(field, name, "set") {
			checkValue(field, h.Set[name])
		}
	}
	for _, name := range sortedKeys(h.Add) {
		field := path + ".add." + name
		if checkName(field, name, "add") {
			checkValue(field, h.Add[name])
		}
	}
	for i, name := range h.Remove {
		checkName(fmt.Sprintf("%s.remove[%d]", path, i), name, "remove")
	}
}

// sortedKeys returns m's keys in order, so that errors come in a stable
// order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// FieldsHolding returns the rules (as "set.NAME" or "add.NAME") whose value
// holds secret, in a stable order, or nil. The gateway refuses a rule that
// holds its admin token (a credential for its own admin hop only, never
// sent to an upstream or a client); a config source that knows the token
// before the gateway starts checks a file with it.
func (h *HeaderRules) FieldsHolding(secret string) []string {
	if h == nil || secret == "" {
		return nil
	}
	var fields []string
	for _, name := range sortedKeys(h.Set) {
		if strings.Contains(h.Set[name], secret) {
			fields = append(fields, "set."+name)
		}
	}
	for _, name := range sortedKeys(h.Add) {
		if strings.Contains(h.Add[name], secret) {
			fields = append(fields, "add."+name)
		}
	}
	return fields
}

// AdminTokenMessage is the message of a header rule refused for holding
// the admin token.
const AdminTokenMessage = "holds the admin token, which never leaves the gateway"

// checkHeaderRulesForToken refuses an endpoint whose header rules hold
// this gateway's admin token.
func (o *Orchestrator) checkHeaderRulesForToken(ep Endpoint) error {
	token := o.AdminToken()
	var errs ValidationError
	for _, f := range ep.RequestHeaders.FieldsHolding(token) {
		errs.add("request_headers."+f, AdminTokenMessage)
	}
	for _, f := range ep.ResponseHeaders.FieldsHolding(token) {
		errs.add("response_headers."+f, AdminTokenMessage)
	}
	return errs.orNil()
}

// headerEdits is one side's rules, compiled for the hot path: canonical
// names, and each value in a one-element slice that requests share (its
// capacity is 1, so an append elsewhere copies rather than writes into
// it).
type headerEdits struct {
	remove  []string
	set     []headerValue
	add     []headerValue
	host    string // request side: a Host rule
	setHost bool
}

type headerValue struct {
	name   string
	values []string
}

// headerPlan is a route's compiled header rules; nil for a route without
// any, which then pays one nil check per request.
type headerPlan struct {
	request, response *headerEdits
}

func newHeaderPlan(ep Endpoint) *headerPlan {
	if ep.RequestHeaders == nil && ep.ResponseHeaders == nil {
		return nil
	}
	return &headerPlan{request: compileHeaderRules(ep.RequestHeaders), response: compileHeaderRules(ep.ResponseHeaders)}
}

func compileHeaderRules(h *HeaderRules) *headerEdits {
	if h == nil || len(h.Set)+len(h.Add)+len(h.Remove) == 0 {
		return nil
	}
	e := &headerEdits{}
	for _, name := range h.Remove {
		e.remove = append(e.remove, textproto.CanonicalMIMEHeaderKey(name))
	}
	for _, name := range sortedKeys(h.Set) {
		canon := textproto.CanonicalMIMEHeaderKey(name)
		if canon == "Host" {
			e.host, e.setHost = h.Set[name], true
			continue
		}
		e.set = append(e.set, headerValue{canon, []string{h.Set[name]}[:1:1]})
	}
	for _, name := range sortedKeys(h.Add) {
		e.add = append(e.add, headerValue{textproto.CanonicalMIMEHeaderKey(name), []string{h.Add[name]}[:1:1]})
	}
	return e
}

// apply edits h: remove, then set, then add.
func (e *headerEdits) apply(h http.Header) {
	for _, name := range e.remove {
		delete(h, name)
	}
	for _, v := range e.set {
		h[v.name] = v.values
	}
	for _, v := range e.add {
		if prior := h[v.name]; len(prior) > 0 {
			h[v.name] = append(prior[:len(prior):len(prior)], v.values[0])
		} else {
			h[v.name] = v.values
		}
	}
}
