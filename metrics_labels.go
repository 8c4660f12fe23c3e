package orchestrator

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// seriesLabels are the label names the gateway's own series carry (and
// the ones histograms and summaries use); a constant label of one of
// these names would make two series out of one, or one label out of two.
// target is reserved for the per-target series docs/DESIGN.md announces.
var seriesLabels = []string{"endpoint", "method", "status", "kind", "source", "result", "target", "le", "quantile", "vmrange"}

// WithMetricsLabels adds constant labels to every series WritePrometheus
// and MetricsHandler write for this gateway, such as gateway="eu-1", so
// that two gateways in one process (or one Prometheus job) give distinct
// series. The labels come first in each series, sorted by name. The Go
// runtime and process metrics of MetricsHandler(true) do not get them:
// they describe the process, not a gateway (write them from one handler
// only). Series an embedder adds to MetricsSet get them too.
//
// A name must match [a-zA-Z_][a-zA-Z0-9_]*, must not start with "__"
// (reserved by Prometheus) and must not be a label of the gateway's own
// series (endpoint, method, status, kind, source, result, target) or of
// histograms (le, quantile, vmrange). A value may be any non-empty UTF-8
// text; it is escaped as the text format requires. An empty value is
// refused because Prometheus reads it as no label at all. Called again,
// it adds to the labels set before; a name given twice takes the later
// value. The error names each offending label (field
// metrics.labels.<name>).
func WithMetricsLabels(labels map[string]string) Option {
	return func(o *options) error {
		if err := validateMetricsLabels(labels); err != nil {
			value, _ := json.Marshal(labels)
			return invalidSection("WithMetricsLabels", string(value), err)
		}
		if len(labels) == 0 {
			return nil
		}
		if o.metricsLabels == nil {
			o.metricsLabels = make(map[string]string, len(labels))
		}
		for k, v := range labels {
			o.metricsLabels[k] = v
		}
		return nil
	}
}

// validateMetricsLabels returns a *ValidationError with one problem per
// bad label, in name order, or nil.
func validateMetricsLabels(labels map[string]string) error {
	var errs ValidationError
	names := make([]string, 0, len(labels))
	for k := range labels {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		field := "metrics.labels." + k
		if k == "" {
			field = "metrics.labels"
		}
		if msg := labelNameProblem(k); msg != "" {
			errs.add(field, msg)
			continue
		}
		switch v := labels[k]; {
		case v == "":
			errs.add(field, fmt.Sprintf("label %q has an empty value, which Prometheus reads as no label; give it a value or leave it out", k))
		case !utf8.ValidString(v):
			errs.add(field, fmt.Sprintf("the value of label %q is not valid UTF-8", k))
		}
	}
	return errs.orNil()
}

// labelNameProblem says what is wrong with a constant label's name, or "".
func labelNameProblem(k string) string {
	switch {
	case k == "":
		return "a label name is empty"
	case !validLabelName(k):
		return fmt.Sprintf("label name %q must match [a-zA-Z_][a-zA-Z0-9_]*", k)
	case strings.HasPrefix(k, "__"):
		return fmt.Sprintf("label name %q starts with __, which Prometheus reserves for itself", k)
	case slices.Contains(seriesLabels, k):
		return fmt.Sprintf("label name %q is taken: the gateway's series use %s", k, strings.Join(seriesLabels, ", "))
	}
	return ""
}

func validLabelName(k string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return k != ""
}

// renderMetricsLabels writes validated labels as they go inside a series'
// braces: name="value" pairs sorted by name, joined by commas; "" for none.
func renderMetricsLabels(labels map[string]string) string {
	names := make([]string, 0, len(labels))
	for k := range labels {
		names = append(names, k)
	}
	slices.Sort(names)
	var b []byte
	for i, k := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, k...)
		b = append(b, '=', '"')
		b = appendLabelValue(b, labels[k])
		b = append(b, '"')
	}
	return string(b)
}

// appendLabelValue escapes a label value as the text format requires:
// backslash, double quote and newline; every other byte (UTF-8 included)
// as it is.
func appendLabelValue(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, v[i])
		}
	}
	return b
}
