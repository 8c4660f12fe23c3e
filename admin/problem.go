package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/config"
	"github.com/orchestrator-go/orchestrator/internal/problem"
	"github.com/orchestrator-go/orchestrator/internal/yamlconf"
)

// apiError is an error the admin API produces itself, with everything its
// problem document needs. Errors from the orchestrator are mapped by
// problemFor instead.
type apiError struct {
	status int
	kind   string
	title  string
	detail string
	errors []orchestrator.FieldError
	// omitted counts the errors left out of a capped list.
	omitted int
	header  http.Header // extra response headers: Allow, WWW-Authenticate
}

func (e *apiError) Error() string { return e.detail }

// document is an admin problem document: RFC 9457's members and errors,
// plus the extension member (RFC 9457 §3.2) "omitted", the number of
// problems of a rejected config past the MaxReportedErrors listed in
// errors, absent when none were left out. It tells a client that fixing
// every listed error is not the end, which the detail alone says in prose.
type document struct {
	problem.Details
	Omitted int `json:"omitted,omitempty"`
}

// problemFor is the one place where errors become problem documents. It
// returns the document and any extra headers.
func (h *Handler) problemFor(r *http.Request, err error) (document, http.Header) {
	d := document{Details: problem.Details{Instance: r.URL.EscapedPath()}}
	var (
		header   http.Header
		api      *apiError
		tooLarge *http.MaxBytesError
		confErr  *config.Error
		valErr   *orchestrator.ValidationError
		kind     string
		fields   []orchestrator.FieldError
	)
	switch {
	case errors.As(err, &api):
		d.Status, kind, d.Title, d.Detail, fields, header = api.status, api.kind, api.title, api.detail, api.errors, api.header
		d.Omitted = api.omitted
	case errors.Is(err, ErrNoConfigFile):
		d.Status, kind, d.Title, d.Detail = http.StatusConflict, "no-config-file", "No config file", err.Error()
	case errors.As(err, &tooLarge):
		d.Status, kind, d.Title = http.StatusRequestEntityTooLarge, "body-too-large", "Request body too large"
		d.Detail = fmt.Sprintf("the request body exceeds %d bytes", tooLarge.Limit)
	case errors.As(err, &confErr):
		d.Status, kind, d.Title = http.StatusBadRequest, "invalid-config", "Invalid configuration"
		fields = confErr.Errors
		d.Omitted = confErr.Omitted
		what := "the configuration"
		if confErr.File != "" {
			what = "the configuration file " + confErr.File
		}
		d.Detail = fmt.Sprintf("%s has %s; nothing was changed", what, plural(confErr.Total(), "error"))
		if confErr.Omitted > 0 {
			d.Detail += fmt.Sprintf(" (the first %d are listed)", len(fields))
		}
	case errors.As(err, &valErr):
		d.Status, kind, d.Title = http.StatusBadRequest, "validation-failed", "Validation failed"
		fields = valErr.Errors
		d.Omitted = valErr.Omitted
		d.Detail = fmt.Sprintf("the input has %s; nothing was changed", plural(valErr.Total(), "error"))
		if valErr.Omitted > 0 {
			d.Detail += fmt.Sprintf(" (the first %d are listed)", len(fields))
		}
	case errors.Is(err, orchestrator.ErrNotFound):
		d.Status, kind, d.Title, d.Detail = http.StatusNotFound, "not-found", "Not found", err.Error()
	case errors.Is(err, orchestrator.ErrConflict):
		d.Status, kind, d.Title, d.Detail = http.StatusConflict, "conflict", "Conflict", err.Error()
	case errors.Is(err, orchestrator.ErrRevisionMismatch):
		d.Status, kind, d.Title, d.Detail = http.StatusPreconditionFailed, "precondition-failed", "Precondition failed", err.Error()+"; GET it again and retry"
	case errors.Is(err, orchestrator.ErrInvalid):
		d.Status, kind, d.Title, d.Detail = http.StatusBadRequest, "validation-failed", "Validation failed", err.Error()
	case errors.Is(err, orchestrator.ErrClosed):
		// The gateway is shutting down: another instance may take the
		// write, as a load balancer would send it there.
		d.Status, kind, d.Title, d.Detail = http.StatusServiceUnavailable, "gateway-closed", "Gateway closed", err.Error()
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		d.Status, kind, d.Title, d.Detail = http.StatusServiceUnavailable, "canceled", "Request canceled", err.Error()
	default:
		d.Status, kind, d.Title, d.Detail = http.StatusInternalServerError, "internal", "Internal error", err.Error()
	}
	d.Type = problem.TypePrefix + kind
	d.Detail = h.redact(d.Detail)
	d.Instance = h.redact(d.Instance)
	if len(fields) > 0 {
		out := make([]orchestrator.FieldError, len(fields))
		for i, fe := range fields {
			fe.Field, fe.Message = h.redact(fe.Field), h.redact(fe.Message)
			out[i] = fe
		}
		d.Errors = out
	}
	return d, header
}

// writeError answers err as a problem document. The handler must not have
// written anything yet.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	d, header := h.problemFor(r, err)
	for k, v := range header {
		w.Header()[k] = v
	}
	// ServeHTTP put the request's id on the response; the document names
	// the same one.
	if v := w.Header()["X-Request-Id"]; len(v) == 1 {
		d.RequestID = v[0]
	}
	if rec, ok := w.(*statusRecorder); ok {
		rec.problem = d.Type[len(problem.TypePrefix):]
		if d.Status >= http.StatusInternalServerError {
			rec.err = d.Detail
		}
	}
	writeDocument(w, d)
}

// writeDocument sends d with its status and the headers problem.Write
// sends; problem.Details has no room for the "omitted" member.
func writeDocument(w http.ResponseWriter, d document) {
	body, err := json.Marshal(d)
	if err != nil {
		// document holds only strings and ints; Errors is built by problemFor.
		body = []byte(`{"type":"about:blank","title":"Internal Server Error","status":500}`)
		d.Status = http.StatusInternalServerError
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/problem+json")
	hdr.Set("Content-Length", strconv.Itoa(len(body)+1))
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cache-Control", "no-store")
	w.WriteHeader(d.Status)
	w.Write(append(body, '\n'))
}

// redact removes the admin tokens (ours and the applied config's) from a
// string about to leave the process.
func (h *Handler) redact(s string) string {
	if h.opts.Token != "" {
		s = strings.ReplaceAll(s, h.opts.Token, "[redacted]")
	}
	if h.opts.Config != nil {
		if t := h.opts.Config.Config().Admin.Token; t != "" {
			s = strings.ReplaceAll(s, t, "[redacted]")
		}
	}
	return s
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// Constructors of the admin API's own problems.

func notFoundRoute(r *http.Request) error {
	return &apiError{status: http.StatusNotFound, kind: "no-admin-route", title: "No such admin route",
		detail: fmt.Sprintf("no admin route matches %s %s; GET /openapi.json lists them", r.Method, r.URL.EscapedPath())}
}

func methodNotAllowed(r *http.Request, allow string) error {
	return &apiError{status: http.StatusMethodNotAllowed, kind: "method-not-allowed", title: "Method not allowed",
		detail: fmt.Sprintf("%s is not allowed on %s; allowed: %s", r.Method, r.URL.EscapedPath(), allow),
		header: http.Header{"Allow": {allow}}}
}

// ErrNoConfigFile is what a ConfigManager's Reload or Sync returns (or
// wraps) when there is no file to read, such as a server running on an
// embedded default config. The admin API answers it with 409, as it does
// when Options.Config is nil.
var ErrNoConfigFile = errors.New("admin: the gateway runs without a config file; there is nothing to reload or sync")

func noConfigFile() error { return ErrNoConfigFile }

func badParam(name, msg string) error {
	return &apiError{status: http.StatusBadRequest, kind: "invalid-parameter", title: "Invalid parameter",
		detail: name + ": " + msg, errors: []orchestrator.FieldError{{Field: name, Message: msg}}}
}

func badBody(field, msg string) error {
	return &apiError{status: http.StatusBadRequest, kind: "invalid-json", title: "Invalid JSON body",
		detail: msg, errors: []orchestrator.FieldError{{Field: field, Message: msg}}}
}

// writeJSON answers v as JSON with the status. It returns an error, having
// written nothing, when v cannot be encoded.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding the response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
	return nil
}

// decodeJSON decodes the request body into v strictly: one JSON value, no
// unknown fields, no trailing data. Its errors name the problem and the
// field. A body that is well-formed JSON is first checked as the config
// file is (internal/yamlconf, which reads JSON as the YAML it is): every
// unknown field and value of the wrong type is reported at once, each at
// its line and column, and encoding/json decodes only a body that passed.
func decodeJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err // a *http.MaxBytesError, or a client that went away
	}
	return decodeJSONBody(body, v)
}

// decodeJSONBody is decodeJSON of a body already read, for a route that
// looks at the body before it knows what to decode it into.
func decodeJSONBody(body []byte, v any) error {
	if json.Valid(body) {
		if err := checkJSON(body, v); err != nil {
			return err
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, v)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return badBody("", "the body holds data after the JSON value; send exactly one JSON value")
	}
	return nil
}

// checkJSON reports every unknown field and value of the wrong type in
// body, a well-formed JSON value, for a value of v's type, located at line
// and column; nil when there is none. When there is, the rest of the body
// is validated too (for a type with a Validate method, such as
// orchestrator.Endpoint), so that its bad url is reported beside its
// unknown field rather than after it is fixed; a problem that only follows
// from a value that did not decode (a name reported missing when it was
// written as a list) is left out. The problems are listed in body order,
// capped at orchestrator.MaxReportedErrors, the rest counted.
func checkJSON(body []byte, v any) error {
	typ := reflect.TypeOf(v).Elem()
	doc, problems := yamlconf.Decode(body, reflect.New(typ).Interface())
	if len(problems) == 0 {
		return nil
	}
	fields := make([]orchestrator.FieldError, 0, len(problems))
	for _, p := range problems {
		fields = append(fields, orchestrator.FieldError{Field: p.Path, Message: p.Message, Line: p.Line, Column: p.Column})
	}
	omitted := 0
	salvaged := reflect.New(typ).Interface()
	if val, ok := salvaged.(interface{ Validate() error }); ok && doc.Salvage(problems, salvaged) {
		var ve *orchestrator.ValidationError
		if errors.As(val.Validate(), &ve) {
			covered := yamlconf.Covers(problems)
			for _, fe := range ve.Errors {
				if !covered(fe.Field) {
					fe.Line, fe.Column = doc.Locate(fe.Field)
					fields = append(fields, fe)
				}
			}
			omitted = ve.Omitted
		}
	}
	slices.SortStableFunc(fields, func(a, b orchestrator.FieldError) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	total := len(fields) + omitted
	fields = fields[:min(len(fields), orchestrator.MaxReportedErrors)]
	first := fields[0]
	where := fmt.Sprintf("the body has %s; the first, at line %d, column %d: ", plural(total, "problem"), first.Line, first.Column)
	if first.Field != "" {
		where += first.Field + ": "
	}
	return &apiError{status: http.StatusBadRequest, kind: "invalid-json", title: "Invalid JSON body", detail: where + first.Message, errors: fields,
		omitted: total - len(fields)}
}

// jsonError turns an encoding/json error into a 400 naming the field.
func jsonError(err error, v any) error {
	var (
		tooLarge *http.MaxBytesError
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooLarge):
		return err
	case errors.Is(err, io.EOF):
		return badBody("", "the request body is empty; want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badBody("", "malformed JSON: the body ends before the JSON value does")
	case errors.As(err, &syntax):
		return badBody("", fmt.Sprintf("malformed JSON at byte %d: %s", syntax.Offset, syntax.Error()))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return badBody("", fmt.Sprintf("got a JSON %s; want a JSON %s", typ.Value, jsonKind(reflect.TypeOf(v))))
		}
		return badBody(typ.Field, fmt.Sprintf("field %q: got a JSON %s; want a JSON %s", typ.Field, typ.Value, jsonKind(typ.Type)))
	}
	// encoding/json has no typed error for unknown fields.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if unq, uerr := strconv.Unquote(name); uerr == nil {
			name = unq
		}
		return badBody(name, fmt.Sprintf("unknown field %q", name))
	}
	// Errors of custom decoders, such as orchestrator.Duration's.
	return badBody("", "invalid value: "+err.Error())
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "value"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return "value"
}

// statusRecorder remembers the status and problem kind of a response for
// the request log.
type statusRecorder struct {
	http.ResponseWriter
	code      int
	problem   string
	err       string
	requestID string
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}

// logRequest writes one line per admin request. It never logs headers: the
// Authorization header carries the token.
func (h *Handler) logRequest(r *http.Request, rec *statusRecorder, d time.Duration) {
	status := rec.status()
	level := slog.LevelDebug
	switch {
	case status >= http.StatusInternalServerError:
		level = slog.LevelError
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		level = slog.LevelWarn
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		level = slog.LevelInfo
	}
	ctx := r.Context()
	if !h.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", rec.requestID),
		slog.String("method", r.Method),
		slog.String("path", h.redact(r.URL.EscapedPath())),
		slog.Int("status_code", status),
		// Seconds as a number, as the access log writes it: slog.Duration
		// would write integer nanoseconds under the same key.
		slog.Float64("response_time", d.Seconds()),
		slog.String("remote_addr", r.RemoteAddr),
	}
	if rec.problem != "" {
		attrs = append(attrs, slog.String("problem", rec.problem))
	}
	if rec.err != "" {
		attrs = append(attrs, slog.String("error", rec.err))
	}
	h.log.LogAttrs(ctx, level, "admin request", attrs...)
}
