package testutil

import (
	"strings"
	"testing"
)

// TestExpositionMetadataProblems shows the checker passes a well-formed
// exposition and names each kind of problem it exists to catch.
func TestExpositionMetadataProblems(t *testing.T) {
	const good = `# HELP a_total A counter.
# TYPE a_total counter
a_total{x="1"} 1
a_total{x="2", y="q\"\\\n"} 2
# HELP h Latency in seconds.
# TYPE h histogram
h_bucket{le="0.1"} 1
h_bucket{le="+Inf"} 2
h_sum 0.3
h_count 2
# HELP v A VictoriaMetrics histogram.
# TYPE v histogram
v_bucket{vmrange="1.000e+00...1.136e+00"} 1
v_sum 1
v_count 1
# HELP s A summary.
# TYPE s summary
s{quantile="0.5"} 1
s_sum 1
s_count 1
# HELP g A gauge.
# TYPE g gauge
g -1 1700000000000
`
	if p := ExpositionMetadataProblems(good); len(p) != 0 {
		t.Fatalf("a well-formed exposition: got problems %q; want none", p)
	}
	for _, c := range []struct{ name, text, want string }{
		{"no type", "# HELP a A.\na 1\n", "no # TYPE line"},
		{"no help", "# TYPE a gauge\na 1\n", "no # HELP line"},
		{"neither", "a 1\n", "no # TYPE line"},
		{"empty help", "# HELP a\n# TYPE a gauge\na 1\n", "# HELP a has no text"},
		{"help twice", "# HELP a A.\n# HELP a A.\n# TYPE a gauge\na 1\n", "# HELP a written twice"},
		{"type twice", "# HELP a A.\n# TYPE a gauge\n# TYPE a gauge\na 1\n", "# TYPE a written twice"},
		{"type after samples", "# HELP a A.\na 1\n# TYPE a gauge\n", "comes after samples"},
		{"unknown type", "# HELP a A.\n# TYPE a meter\na 1\n", `unknown type "meter"`},
		{"bucket without le", "# HELP h H.\n# TYPE h histogram\nh_bucket{x=\"1\"} 1\n", "no le (or vmrange) label"},
		{"bare histogram sample", "# HELP h H.\n# TYPE h histogram\nh 1\n", "without _bucket, _sum or _count"},
		{"summary without quantile", "# HELP s S.\n# TYPE s summary\ns 1\n", "without a quantile label"},
		{"negative counter", "# HELP c_total C.\n# TYPE c_total counter\nc_total -1\n", "want a non-negative number"},
		{"counter with a histogram suffix", "# HELP c C.\n# TYPE c counter\nc_count 1\n", "family c_count has no # TYPE line"},
		{"split family", "# HELP a A.\n# TYPE a gauge\na{x=\"1\"} 1\n# HELP b B.\n# TYPE b gauge\nb 1\na{x=\"2\"} 1\n", "samples of family a are split"},
		{"series twice", "# HELP a A.\n# TYPE a gauge\na{x=\"1\",y=\"2\"} 1\na{y=\"2\", x=\"1\"} 1\n", "written twice (first at line 3)"},
		{"bad line", "# HELP a A.\n# TYPE a gauge\na{x=1} 1\n", `want label="value"`},
		{"bad value", "# HELP a A.\n# TYPE a gauge\na one\n", "is not a number"},
	} {
		p := ExpositionMetadataProblems(c.text)
		if !strings.Contains(strings.Join(p, "\n"), c.want) {
			t.Errorf("%s: got problems %q; want one containing %q", c.name, p, c.want)
		}
	}
}
