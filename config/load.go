package config

import (
	"fmt"
	"os"
	"slices"
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
// reported together in an *Error; name is used in its messages.
func Parse(data []byte, name string) (*Config, error) {
	var cfg Config
	doc, decodeProblems := yamlconf.Decode(data, &cfg)
	if len(decodeProblems) > 0 {
		ce := &Error{File: name}
		for _, p := range decodeProblems {
			if len(ce.Errors) == orchestrator.MaxReportedErrors {
				ce.Omitted++
				continue
			}
			ce.Errors = append(ce.Errors, orchestrator.FieldError{Field: p.Path, Message: p.Message, Line: p.Line, Column: p.Column})
		}
		return nil, ce
	}
	limit := cfg.Server.MaxConfigBytes
	if limit == 0 {
		limit = DefaultMaxConfigBytes
	}
	if int64(len(data)) > limit {
		// A file may raise its own cap; past the cap in force it is
		// refused like any other bad file. (Reading is capped before this
		// on reloads and POST /config/validate bodies.)
		line, col := doc.Locate("server.max_config_bytes")
		return nil, &Error{File: name, Errors: []orchestrator.FieldError{{Field: "server.max_config_bytes", Line: line, Column: col,
			Message: fmt.Sprintf("the file is %d bytes, more than the %d this allows", len(data), limit)}}}
	}
	if cfg.Endpoints == nil && doc.NullKey("endpoints") {
		// "endpoints:" with nothing after it is what a file cut short
		// while being written looks like; serving no endpoints is asked
		// for with "endpoints: []".
		line, col := doc.Locate("endpoints")
		return nil, &Error{File: name, Errors: []orchestrator.FieldError{{Field: "endpoints", Line: line, Column: col,
			Message: "is null; write \"endpoints: []\" to serve no endpoints from the file"}}}
	}
	if err := cfg.Validate(); err != nil {
		ve := err.(*orchestrator.ValidationError)
		ce := &Error{File: name, Omitted: ve.Omitted}
		for _, fe := range ve.Errors {
			fe.Line, fe.Column = doc.Locate(fe.Field)
			ce.Errors = append(ce.Errors, fe)
		}
		slices.SortStableFunc(ce.Errors, func(a, b orchestrator.FieldError) int {
			if a.Line != b.Line {
				return a.Line - b.Line
			}
			return a.Column - b.Column
		})
		return nil, ce
	}
	return &cfg, nil
}

// Load reads and parses a configuration file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}
