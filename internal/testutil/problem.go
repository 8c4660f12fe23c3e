package testutil

// Problem is an RFC 9457 problem document (application/problem+json) as
// the gateway and the admin API write it, for tests to decode an error
// answer into. Its members and JSON names are those of
// internal/problem.Details plus the admin API's "omitted" extension member.
//
// It is written out on purpose rather than reusing internal/problem.Details:
// a test that decoded with the encoder's own struct would not notice a
// renamed JSON member, and Details types errors as any, which decodes into
// maps rather than FieldErrors.
type Problem struct {
	// Type is the problem's URI, "urn:orchestrator:problem:<kind>".
	Type string `json:"type"`
	// Title is a short summary of the kind of problem.
	Title string `json:"title"`
	// Status is the HTTP status code, repeated in the body.
	Status int `json:"status"`
	// Detail explains this occurrence.
	Detail string `json:"detail"`
	// Instance is the request path the problem occurred at.
	Instance string `json:"instance"`
	// RequestID is the request's X-Request-ID.
	RequestID string `json:"request_id"`
	// EndpointID names the endpoint a proxied request was routed to
	// (gateway problems only).
	EndpointID string `json:"endpoint_id"`
	// Errors lists the field problems of a rejected input (admin API).
	Errors []FieldError `json:"errors"`
	// Omitted counts the field problems found past those listed in Errors
	// (admin API).
	Omitted int `json:"omitted"`
}

// FieldError is one entry of a Problem's errors: one problem with one field
// of a configuration or request body. It has the members of
// orchestrator.FieldError, to which it converts, and is declared here so
// that this package imports nothing from the module.
type FieldError struct {
	// Field is the path of the offending field, such as "endpoints[2].url".
	Field string `json:"field"`
	// Message says what is wrong.
	Message string `json:"message"`
	// Line is the field's line in the input, when known (1-based).
	Line int `json:"line"`
	// Column is the field's column in the input, when known (1-based).
	Column int `json:"column"`
}
