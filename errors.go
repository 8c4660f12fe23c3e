package orchestrator

import (
	"errors"
	"fmt"
	"strings"
)

// FieldError is one problem with one field of a configuration.
type FieldError struct {
	// Field is the path of the offending field, such as "endpoints[2].url".
	Field string `json:"field"`
	// Message says what is wrong.
	Message string `json:"message"`
	// Line and Column locate the field in a config file, when known (1-based).
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
}

// String formats the error as "field: message".
func (e FieldError) String() string { return e.Field + ": " + e.Message }

// ValidationError lists the problems found in a configuration: the first
// MaxReportedErrors of them, and how many more there were. It is returned
// (as error) by Endpoint.Validate, New and the registration methods.
type ValidationError struct {
	// Errors holds one entry per problem, in the order found.
	Errors []FieldError `json:"errors"`
	// Omitted counts the problems past MaxReportedErrors that are not
	// listed.
	Omitted int `json:"omitted,omitempty"`
}

// Error joins every field error on one line each.
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors), len(e.Errors)+1)
	for i, fe := range e.Errors {
		parts[i] = fe.String()
	}
	if e.Omitted > 0 {
		parts = append(parts, moreProblems(e.Omitted))
	}
	return "invalid configuration: " + strings.Join(parts, "; ")
}

// Total is the number of problems found, listed or not.
func (e *ValidationError) Total() int { return len(e.Errors) + e.Omitted }

// moreProblems says how many problems were found but not listed.
func moreProblems(n int) string {
	if n == 1 {
		return "and 1 more problem"
	}
	return fmt.Sprintf("and %d more problems", n)
}

// Is reports ErrInvalid as matching, so errors.Is(err, ErrInvalid) works.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func (e *ValidationError) add(field, msg string) {
	if len(e.Errors) >= MaxReportedErrors {
		e.Omitted++
		return
	}
	e.Errors = append(e.Errors, FieldError{Field: field, Message: msg})
}

func (e *ValidationError) orNil() error {
	if e == nil || e.Total() == 0 {
		return nil
	}
	return e
}

// ErrInvalid is matched (errors.Is) by every *ValidationError.
var ErrInvalid = errors.New("orchestrator: invalid configuration")

// ErrClosed is returned by the methods that change the gateway's routes
// (Register, RegisterAll, Update, UpdateIf, Deregister, DeregisterIf, Sync,
// Apply, Refresh) once Close has been called. A closed gateway no longer follows its
// registry or probes its endpoints, so a change accepted then would be
// written to the registry without ever being served, or would resurrect
// health probes Close stopped; refusing it tells the caller so at once.
var ErrClosed = errors.New("orchestrator: the gateway is closed")

// optionError is the error of an Option given a value it cannot take. It
// names the option and the value, so that a New with a dozen options says
// which one is wrong, and it matches ErrInvalid like every other
// configuration mistake. It is not exported: callers match ErrInvalid, and
// the message is for people.
type optionError struct {
	option string // "WithPrefix"
	value  string // the value as it would be written in Go, or a summary
	reason string
	cause  error // the *ValidationError of a config section, or nil
}

func (e *optionError) Error() string {
	return "orchestrator: " + e.option + "(" + e.value + "): " + e.reason
}

// Is reports ErrInvalid as matching, so errors.Is(err, ErrInvalid) works
// whether or not a cause is wrapped.
func (e *optionError) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the *ValidationError of a refused config section, so that
// errors.As still finds its field list.
func (e *optionError) Unwrap() error { return e.cause }

// invalidOption is the one way an Option refuses a value: option is its
// name, value the offending value as Go would print it, reason what is wrong.
func invalidOption(option, value, reason string) error {
	return &optionError{option: option, value: value, reason: reason}
}

// invalidSection refuses a config section (a struct validated into a
// *ValidationError) passed to option, keeping the field list reachable.
func invalidSection(option, value string, err error) error {
	return &optionError{option: option, value: value, reason: err.Error(), cause: err}
}
