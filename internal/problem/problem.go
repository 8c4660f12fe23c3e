// Package problem writes RFC 9457 problem documents
// (application/problem+json), the body of every error the gateway itself
// produces.
package problem

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Details is one problem document. Type is a URI naming the kind of problem;
// the gateway uses "urn:orchestrator:problem:<kind>" so that clients can
// switch on it without dereferencing anything.
type Details struct {
	Type       string `json:"type"`
	Title      string `json:"title"`
	Status     int    `json:"status"`
	Detail     string `json:"detail,omitempty"`
	Instance   string `json:"instance,omitempty"`
	RequestID  string `json:"request_id,omitempty"`
	EndpointID string `json:"endpoint_id,omitempty"`
	// Errors lists field problems of a rejected input, when there are any.
	Errors any `json:"errors,omitempty"`
}

// TypePrefix starts every problem type URI.
const TypePrefix = "urn:orchestrator:problem:"

// Write sends d with its status. retryAfter > 0 adds Retry-After in whole
// seconds.
func Write(w http.ResponseWriter, d Details, retryAfterSeconds int) {
	body, err := json.Marshal(d)
	if err != nil {
		// Details holds only strings and ints; Errors is built by this module.
		body = []byte(`{"type":"about:blank","title":"Internal Server Error","status":500}`)
		d.Status = http.StatusInternalServerError
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/problem+json"}
	h["Content-Length"] = []string{strconv.Itoa(len(body) + 1)}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	h["Cache-Control"] = []string{"no-store"}
	if retryAfterSeconds > 0 {
		h["Retry-After"] = []string{strconv.Itoa(retryAfterSeconds)}
	}
	w.WriteHeader(d.Status)
	w.Write(append(body, '\n'))
}
