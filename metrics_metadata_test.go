package orchestrator_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

// metadataGateway is a gateway with the given options that has served
// traffic of every kind the metrics count, so that each family has series:
// 200s and a 500, an unrouted 404, a refused upstream, a tripped breaker
// and a health probe.
func metadataGateway(t *testing.T, opts ...orchestrator.Option) *orchestrator.Orchestrator {
	t.Helper()
	ok := obsBackend(t)
	on, off := true, false
	hc := &orchestrator.HealthCheckConfig{Enabled: &on, Interval: orchestrator.Duration(time.Hour)}
	o := obsNew(t, append([]orchestrator.Option{
		orchestrator.WithProber(newObsProber(true)),
		orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Enabled: &off}),
		orchestrator.WithEndpoints(
			orchestrator.Endpoint{Name: "svc", URL: ok.URL, Methods: []string{"GET", "POST"}},
			orchestrator.Endpoint{Name: "down", URL: testutil.RefusedURL(t)},
			orchestrator.Endpoint{Name: "probed", URL: ok.URL, HealthCheckPath: "/healthz", HealthCheck: hc},
		)}, opts...)...)
	obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/svc/x", nil), http.StatusOK)
	obsRequireCode(t, obsServe(o, http.MethodPost, "/orchestrator/svc/x", nil), http.StatusInternalServerError)
	obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/nowhere/x", nil), http.StatusNotFound)
	obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/down/x", nil), http.StatusBadGateway)
	require.NoError(t, o.TripBreaker("svc"))
	o.MetricsSet().GetOrCreateCounter(`orchestrator_config_reloads_total{result="success"}`).Inc()
	_, err := o.CheckHealth(context.Background(), "probed")
	require.NoError(t, err)
	v := obsScrapeOf(t, o).sum("orchestrator_health_probe_duration_seconds_count", "endpoint", "probed")
	require.GreaterOrEqual(t, v, 1.0, "probe duration count of probed after CheckHealth: got %v; want at least 1", v)
	return o
}

// scrapeHandler returns what MetricsHandler(process) serves.
func scrapeHandler(t *testing.T, o *orchestrator.Orchestrator, process bool) string {
	t.Helper()
	rec := httptest.NewRecorder()
	o.MetricsHandler(process).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	return rec.Body.String()
}

// gatewayFamilies are the families docs/DESIGN.md names, each of which a
// gateway that served traffic writes.
var gatewayFamilies = map[string]string{
	"orchestrator_requests_total":                "counter",
	"orchestrator_unrouted_requests_total":       "counter",
	"orchestrator_request_duration_seconds":      "histogram",
	"orchestrator_requests_in_flight":            "gauge",
	"orchestrator_upstream_errors_total":         "counter",
	"orchestrator_circuit_breaker_state":         "gauge",
	"orchestrator_endpoint_health":               "gauge",
	"orchestrator_health_probe_duration_seconds": "histogram",
	"orchestrator_registry_endpoints":            "gauge",
	"orchestrator_circuit_breaker_opens_total":   "counter",
	"orchestrator_endpoint_health_changes_total": "counter",
	"orchestrator_config_reloads_total":          "counter",
}

// TestMetricsMetadataAfterTraffic scrapes a gateway that has served
// traffic, process metrics included, and finds every family described
// once, with the right type and a help text, and the constant labels on
// every gateway series and on no process series.
func TestMetricsMetadataAfterTraffic(t *testing.T) {
	o := metadataGateway(t, orchestrator.WithMetricsLabels(map[string]string{"gateway": "a"}))
	for _, process := range []bool{false, true} {
		text := scrapeHandler(t, o, process)
		if problems := testutil.ExpositionMetadataProblems(text); len(problems) > 0 {
			t.Errorf("MetricsHandler(%v): metadata problems; want none:\n%s", process, strings.Join(problems, "\n"))
		}
		for name, typ := range gatewayFamilies {
			assert.Contains(t, text, "\n# TYPE "+name+" "+typ+"\n", "MetricsHandler(%v): want %s typed %s", process, name, typ)
			assert.Regexp(t, regexp.MustCompile(`(?m)^# HELP `+name+` \S.*\.$`), text, "MetricsHandler(%v): want a sentence of help for %s", process, name)
		}
		s := obsParse(t, text)
		sawProcess := false
		for _, smp := range s.samples {
			gw, labelled := smp.labels["gateway"]
			if strings.HasPrefix(smp.name, "go_") || strings.HasPrefix(smp.name, "process_") {
				sawProcess = true
				assert.False(t, labelled, "process series %s: got gateway=%q; want no constant labels on process metrics", smp.name, gw)
				continue
			}
			assert.Equal(t, "a", gw, "series %s %v: want the constant label gateway=\"a\"", smp.name, smp.labels)
		}
		assert.Equal(t, process, sawProcess, "MetricsHandler(%v): process series present=%v", process, sawProcess)
		if process {
			assert.Contains(t, text, "\n# TYPE process_open_fds gauge\n", "the FD metrics stay, with metadata")
			assert.Contains(t, text, "\n# TYPE go_gc_duration_seconds summary\n")
			assert.Contains(t, text, "\n# TYPE process_io_read_bytes_total counter\n", "process_io_*_total only grow: counters, not the metrics package's gauge")
		}
	}
}

// TestMetricsTwoGatewaysConcatenated shows what WithMetricsLabels is for:
// two gateways in one process with the same endpoint write the same series
// names, and their expositions put together (as one scrape job collects
// them) hold duplicate series without constant labels and none with them.
func TestMetricsTwoGatewaysConcatenated(t *testing.T) {
	concat := func(a, b *orchestrator.Orchestrator) string {
		var buf bytes.Buffer
		a.WritePrometheus(&buf)
		b.WritePrometheus(&buf)
		return buf.String()
	}
	duplicates := func(text string) []string {
		var dups []string
		for _, p := range testutil.ExpositionMetadataProblems(text) {
			if strings.Contains(p, ": series ") && strings.Contains(p, "written twice") {
				dups = append(dups, p)
			}
		}
		return dups
	}

	plainA, plainB := metadataGateway(t), metadataGateway(t)
	assert.NotEmpty(t, duplicates(concat(plainA, plainB)), "two unlabelled gateways put together: got no duplicate series; the test no longer shows the problem")

	a := metadataGateway(t, orchestrator.WithMetricsLabels(map[string]string{"gateway": "a"}))
	b := metadataGateway(t, orchestrator.WithMetricsLabels(map[string]string{"gateway": "b"}))
	text := concat(a, b)
	assert.Empty(t, duplicates(text), "two gateways labelled a and b put together: want no duplicate series")
	s := obsParse(t, text) // fails on a series written twice
	s.expect(t, 1, "orchestrator_requests_total", "gateway", "a", "endpoint", "svc", "method", "GET", "status", "200")
	s.expect(t, 1, "orchestrator_requests_total", "gateway", "b", "endpoint", "svc", "method", "GET", "status", "200")
	s.expect(t, 1, "orchestrator_config_reloads_total", "gateway", "b", "result", "success")
}

// TestMetricsMetadataLeavesGlobalAlone checks that the gateway writes its
// metadata without the metrics package's global switch: an embedder's own
// default-set exposition stays as the embedder configured it.
func TestMetricsMetadataLeavesGlobalAlone(t *testing.T) {
	o := metadataGateway(t)
	_ = scrapeHandler(t, o, true)
	var own bytes.Buffer
	metrics.WriteFDMetrics(&own)
	assert.NotContains(t, own.String(), "# TYPE", "the metrics package's own output after a gateway scrape: got metadata; the gateway flipped metrics.ExposeMetadata")
}

// promtoolToleratedLints are the promtool check metrics findings the
// exposition is allowed: they come from names the metrics package gives the
// Go runtime metrics, which the gateway passes on unchanged (renaming them
// would break dashboards built on the package). No name of docs/DESIGN.md
// draws a finding.
var promtoolToleratedLints = []string{
	`go_cgo_calls_count counter metrics should have "_total" suffix`,
	`go_cgo_calls_count non-histogram and non-summary metrics should not have "_count" suffix`,
	`go_cpu_count non-histogram and non-summary metrics should not have "_count" suffix`,
	`go_gc_forced_count counter metrics should have "_total" suffix`,
	`go_gc_forced_count non-histogram and non-summary metrics should not have "_count" suffix`,
}

// runPromtoolCheck feeds an exposition to promtool check metrics and
// returns its findings, one per line, and whether it exited 0.
func runPromtoolCheck(t *testing.T, bin, text string) ([]string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	var findings []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			findings = append(findings, l)
		}
	}
	return findings, err == nil
}

// TestMetricsPromtool runs promtool check metrics on /metrics of a gateway
// that served traffic, process metrics included: only the documented lint
// findings of the Go runtime names may appear. Without the metadata the
// same text draws a "no help text" finding per family, which the test
// checks too, so that it cannot pass on an exposition promtool ignores.
func TestMetricsPromtool(t *testing.T) {
	bin := testutil.Promtool(t)
	o := metadataGateway(t, orchestrator.WithMetricsLabels(map[string]string{"gateway": "a"}))
	text := scrapeHandler(t, o, true)
	findings, _ := runPromtoolCheck(t, bin, text)
	for _, f := range findings {
		if !slices.Contains(promtoolToleratedLints, f) {
			t.Errorf("promtool check metrics: %q; want only the documented Go runtime lints", f)
		}
	}

	bare := regexp.MustCompile(`(?m)^# (HELP|TYPE) .*\n`).ReplaceAllString(text, "")
	findings, passed := runPromtoolCheck(t, bin, bare)
	assert.False(t, passed, "promtool check metrics on the exposition without metadata: passed; want it to fail")
	assert.Contains(t, findings, "orchestrator_requests_total no help text", "promtool on the exposition without metadata: want a missing help finding")
}
