package config

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/internal/yamlconf"
)

// Error lists the problems of a configuration file, each located by line
// and column: the first orchestrator.MaxReportedErrors of them, and how
// many more there were. Its Error method prints one
// "file:line:column: message" line per problem, the format editors and CI
// annotate. It matches orchestrator.ErrInvalid (errors.Is).
type Error struct {
	// File is the file name as given (may be empty for inline data).
	File string `json:"file,omitempty"`
	// Errors holds the problems in file order.
	Errors []orchestrator.FieldError `json:"errors"`
	// Omitted counts the problems past orchestrator.MaxReportedErrors that
	// are not listed.
	Omitted int `json:"omitted,omitempty"`
}

// Total is the number of problems found, listed or not.
func (e *Error) Total() int { return len(e.Errors) + e.Omitted }

// Error prints one "file:line:column: field: message" per problem.
func (e *Error) Error() string {
	name := e.File
	if name == "" {
		name = "config"
	}
	var b strings.Builder
	for i, fe := range e.Errors {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s:%d:%d: ", name, fe.Line, fe.Column)
		if fe.Field != "" {
			b.WriteString(fe.Field + ": ")
		}
		b.WriteString(fe.Message)
	}
	if e.Omitted > 0 {
		fmt.Fprintf(&b, "\n%s: %s", name, moreProblems(e.Omitted))
	}
	return b.String()
}

// Is reports orchestrator.ErrInvalid as matching.
func (e *Error) Is(target error) bool { return target == orchestrator.ErrInvalid }

// moreProblems says how many problems were found but not listed, in the
// words of orchestrator.ValidationError.
func moreProblems(n int) string {
	if n == 1 {
		return "and 1 more problem"
	}
	return fmt.Sprintf("and %d more problems", n)
}

// Parse decodes and validates a YAML (or JSON, which is YAML)
// configuration. Unknown fields, wrong types and invalid values are all
// reported together in an *Error, in file order; name is used in its
// messages. A file with values that do not decode is validated too, as far
// as it did decode: its bad url is reported beside its unknown field, but
// not a problem that only follows from a value that did not decode (a
// required name reported missing when it was written as a list).
func Parse(data []byte, name string) (*Config, error) {
	var cfg Config
	doc, decodeProblems := yamlconf.Decode(data, &cfg)
	if len(decodeProblems) == 0 {
		if errs, omitted := cfg.problems(doc, len(data)); len(errs) > 0 {
			return nil, newError(name, errs, omitted)
		}
		return &cfg, nil
	}
	errs := make([]orchestrator.FieldError, 0, min(len(decodeProblems), orchestrator.MaxReportedErrors))
	omitted := 0
	for _, p := range decodeProblems {
		if len(errs) == orchestrator.MaxReportedErrors {
			// The problems come in file order: the hundred listed come
			// before the rest, which no validation error could change.
			omitted++
			continue
		}
		errs = append(errs, orchestrator.FieldError{Field: p.Path, Message: p.Message, Line: p.Line, Column: p.Column})
	}
	var salvaged Config
	if doc.Salvage(decodeProblems, &salvaged) {
		covered := yamlconf.Covers(decodeProblems)
		salvaged.standIns(decodeProblems, covered)
		more, moreOmitted := salvaged.problems(doc, len(data))
		for _, fe := range more {
			if !covered(fe.Field) {
				errs = append(errs, fe)
			}
		}
		omitted += moreOmitted
	}
	return nil, newError(name, errs, omitted)
}

// standIns gives the endpoints of a salvaged config a stand-in for a
// name, version, id or url that did not decode: each is unique and valid,
// so that validation reports none of them missing, nor the endpoints that
// lack them as serving one route or holding one id. Those would only be
// follow-on problems of what decoding reported, and past the cap they
// would be counted with the file's own.
func (c *Config) standIns(decodeProblems []yamlconf.Problem, covered func(path string) bool) {
	// Only the endpoints a problem is in can lack a value: the rest of a
	// large file is not searched.
	var affected []int
	for _, p := range decodeProblems {
		path := p.Path
		if p.Unknown {
			path = p.Meant
		}
		rest, ok := strings.CutPrefix(path, "endpoints[")
		if end := strings.IndexByte(rest, ']'); ok && end > 0 {
			if i, err := strconv.Atoi(rest[:end]); err == nil && i < len(c.Endpoints) &&
				(len(affected) == 0 || affected[len(affected)-1] != i) {
				affected = append(affected, i)
			}
		}
	}
	if len(affected) == 0 {
		return
	}
	taken := make(map[string]bool, 2*len(c.Endpoints))
	for _, ep := range c.Endpoints {
		taken[ep.Name], taken[ep.ID] = true, true
	}
	standIn := func(i int) string {
		s := fmt.Sprintf("undecoded-%d", i)
		for taken[s] {
			s += "-"
		}
		taken[s] = true
		return s
	}
	for _, i := range affected {
		ep := &c.Endpoints[i]
		at := fmt.Sprintf("endpoints[%d].", i)
		if covered(at + "name") {
			ep.Name = standIn(i)
		}
		if covered(at + "version") {
			ep.Version = standIn(i)
		}
		if covered(at + "id") {
			ep.ID = standIn(i)
		}
		if covered(at + "url") {
			ep.URL = "http://undecoded.invalid/"
		}
	}
}

// problems returns the problems of a decoded config, located in doc, and
// how many more there were than it lists: the file's size past the cap
// or a null endpoints list alone, else every validation error.
func (c *Config) problems(doc *yamlconf.Document, size int) (errs []orchestrator.FieldError, omitted int) {
	limit := c.Server.MaxConfigBytes
	if limit == 0 {
		limit = DefaultMaxConfigBytes
	}
	if int64(size) > limit {
		// A file may raise its own cap; past the cap in force it is
		// refused like any other bad file. (Reading is capped before this
		// on reloads and POST /config/validate bodies.)
		line, col := doc.Locate("server.max_config_bytes")
		return []orchestrator.FieldError{{Field: "server.max_config_bytes", Line: line, Column: col,
			Message: fmt.Sprintf("the file is %d bytes, more than the %d this allows", size, limit)}}, 0
	}
	if c.Endpoints == nil && doc.NullKey("endpoints") {
		// "endpoints:" with nothing after it is what a file cut short
		// while being written looks like; serving no endpoints is asked
		// for with "endpoints: []".
		line, col := doc.Locate("endpoints")
		return []orchestrator.FieldError{{Field: "endpoints", Line: line, Column: col,
			Message: "is null; write \"endpoints: []\" to serve no endpoints from the file"}}, 0
	}
	err := c.Validate()
	if err == nil {
		return nil, 0
	}
	ve := err.(*orchestrator.ValidationError)
	for _, fe := range ve.Errors {
		fe.Line, fe.Column = doc.Locate(fe.Field)
		errs = append(errs, fe)
	}
	return errs, ve.Omitted
}

// newError returns the *Error of a file's problems, sorted into file
// order and capped at orchestrator.MaxReportedErrors, the rest counted with
// the omitted ones.
func newError(name string, errs []orchestrator.FieldError, omitted int) *Error {
	slices.SortStableFunc(errs, func(a, b orchestrator.FieldError) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	if n := len(errs) - orchestrator.MaxReportedErrors; n > 0 {
		errs, omitted = errs[:orchestrator.MaxReportedErrors], omitted+n
	}
	return &Error{File: name, Errors: errs, Omitted: omitted}
}

// Load reads and parses a configuration file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}
