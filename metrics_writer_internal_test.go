package orchestrator

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

// TestMetadataWriter feeds metadataWriter what a metrics.Set and the
// process metrics write, cut at awkward places, the package's own metadata
// (as metrics.ExposeMetadata(true) writes it) included, and checks the
// output: one # HELP and # TYPE per family from the table, the input's
// type for families the table lacks, the constant labels in every series.
func TestMetadataWriter(t *testing.T) {
	in := "# HELP orchestrator_registry_endpoints\n# TYPE orchestrator_registry_endpoints gauge\n" +
		"orchestrator_registry_endpoints{source=\"api\"} 1\n" +
		"orchestrator_registry_endpoints{source=\"config\"} 2\n" +
		"own_total 3\n" +
		"# HELP own_seconds\n# TYPE own_seconds summary\n" +
		"own_seconds{quantile=\"0.5\"} 1\nown_seconds_sum 1\nown_seconds_count 1\n" +
		"own_vm_bucket{vmrange=\"1.000e+00...1.136e+00\"} 1\nown_vm_sum 1\nown_vm_count 1\n" +
		"own_gauge{} 4\n" +
		"own_untyped 5"
	const want = "# HELP orchestrator_registry_endpoints Endpoints registered, by source (config or api).\n" +
		"# TYPE orchestrator_registry_endpoints gauge\n" +
		"orchestrator_registry_endpoints{gateway=\"a\",source=\"api\"} 1\n" +
		"orchestrator_registry_endpoints{gateway=\"a\",source=\"config\"} 2\n" +
		"# HELP own_total Metric own_total, added to the gateway's metrics set by the program or the metrics package.\n" +
		"# TYPE own_total counter\n" +
		"own_total{gateway=\"a\"} 3\n" +
		"# HELP own_seconds Metric own_seconds, added to the gateway's metrics set by the program or the metrics package.\n" +
		"# TYPE own_seconds summary\n" +
		"own_seconds{gateway=\"a\",quantile=\"0.5\"} 1\nown_seconds_sum{gateway=\"a\"} 1\nown_seconds_count{gateway=\"a\"} 1\n" +
		"# HELP own_vm Metric own_vm, added to the gateway's metrics set by the program or the metrics package.\n" +
		"# TYPE own_vm histogram\n" +
		"own_vm_bucket{gateway=\"a\",vmrange=\"1.000e+00...1.136e+00\"} 1\nown_vm_sum{gateway=\"a\"} 1\nown_vm_count{gateway=\"a\"} 1\n" +
		"# HELP own_gauge Metric own_gauge, added to the gateway's metrics set by the program or the metrics package.\n" +
		"# TYPE own_gauge untyped\n" +
		"own_gauge{gateway=\"a\"} 4\n" +
		"# HELP own_untyped Metric own_untyped, added to the gateway's metrics set by the program or the metrics package.\n" +
		"# TYPE own_untyped untyped\n" +
		"own_untyped{gateway=\"a\"} 5\n"
	for _, cut := range []int{1, 7, 64, len(in)} {
		var out bytes.Buffer
		m := newMetadataWriter(&out, `gateway="a"`)
		for rest := in; rest != ""; {
			n := min(cut, len(rest))
			m.Write([]byte(rest[:n]))
			rest = rest[n:]
		}
		m.Flush()
		if out.String() != want {
			t.Errorf("written in pieces of %d bytes: got\n%s\nwant\n%s", cut, out.String(), want)
		}
		if p := testutil.ExpositionMetadataProblems(out.String()); len(p) > 0 {
			t.Errorf("written in pieces of %d bytes: metadata problems %q; want none", cut, p)
		}
	}
}

// TestMetadataWriterProcessFamilies checks that every family the process
// table lists is typed as the table says, even where its name looks like a
// histogram's part (go_cgo_calls_count is a counter, not a _count).
func TestMetadataWriterProcessFamilies(t *testing.T) {
	var in, out bytes.Buffer
	for name, f := range processFamilies {
		if f.typ == "counter" || f.typ == "gauge" {
			in.WriteString(name + " 1\n")
		}
	}
	m := newMetadataWriter(&out, "")
	m.Write(in.Bytes())
	m.Flush()
	for name, f := range processFamilies {
		if f.typ != "counter" && f.typ != "gauge" {
			continue
		}
		if !strings.Contains(out.String(), "\n# TYPE "+name+" "+f.typ+"\n") {
			t.Errorf("%s: got no # TYPE %s %s line; output:\n%s", name, name, f.typ, out.String())
		}
	}
	if p := testutil.ExpositionMetadataProblems(out.String()); len(p) > 0 {
		t.Errorf("metadata problems %q; want none", p)
	}
}

// TestWithMetricsLabels checks what the option takes and refuses, and that
// each error names the label.
func TestWithMetricsLabels(t *testing.T) {
	for _, c := range []struct {
		labels map[string]string
		want   string // "" when accepted
	}{
		{map[string]string{"gateway": "a", "Zone_2": "eu \"west\" ü"}, ""},
		{map[string]string{"_x": "1"}, ""},
		{nil, ""},
		{map[string]string{"2zone": "a"}, `metrics.labels.2zone: label name "2zone" must match [a-zA-Z_][a-zA-Z0-9_]*`},
		{map[string]string{"zone-a": "a"}, `metrics.labels.zone-a: label name "zone-a" must match`},
		{map[string]string{"": "a"}, "metrics.labels: a label name is empty"},
		{map[string]string{"__name": "a"}, `metrics.labels.__name: label name "__name" starts with __`},
		{map[string]string{"endpoint": "a"}, `metrics.labels.endpoint: label name "endpoint" is taken`},
		{map[string]string{"status": "a"}, `label name "status" is taken`},
		{map[string]string{"le": "a"}, `label name "le" is taken`},
		{map[string]string{"gateway": ""}, `metrics.labels.gateway: label "gateway" has an empty value`},
		{map[string]string{"gateway": "\xff"}, `metrics.labels.gateway: the value of label "gateway" is not valid UTF-8`},
	} {
		var o options
		err := WithMetricsLabels(c.labels)(&o)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("WithMetricsLabels(%q): got %v; want it accepted", c.labels, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("WithMetricsLabels(%q): got %v; want an error containing %q", c.labels, err, c.want)
		case c.want != "" && !errors.Is(err, ErrInvalid):
			t.Errorf("WithMetricsLabels(%q): got %v; want it to match ErrInvalid", c.labels, err)
		}
	}
	var o options
	for _, l := range []map[string]string{{"gateway": "a", "zone": "z"}, {"gateway": "b"}} {
		if err := WithMetricsLabels(l)(&o); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := renderMetricsLabels(o.metricsLabels), `gateway="b",zone="z"`; got != want {
		t.Errorf("two WithMetricsLabels: got labels %s; want %s (added, later value wins, sorted)", got, want)
	}
	if got, want := renderMetricsLabels(map[string]string{"a": "q\"b\\s\nn ü"}), `a="q\"b\\s\nn ü"`; got != want {
		t.Errorf("escaping: got %s; want %s", got, want)
	}
}
