package orchestrator

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

// TestMetricsExpositionFormat pins the exposition of the per-endpoint
// series to what one metrics.Set per endpoint used to write (the text in
// testdata was produced that way): families in name order, endpoints in id
// order within a family, histograms as metrics.PrometheusHistogram writes
// them, requests_total by method then status, upstream errors by kind.
// That is the Set written on its own, bare; WritePrometheus adds metadata
// and constant labels to it (TestMetricsExpositionMetadataAndLabels).
func TestMetricsExpositionFormat(t *testing.T) {
	o := expositionFixture(t)
	var got bytes.Buffer
	o.MetricsSet().WritePrometheus(&got)
	want, err := os.ReadFile("testdata/metrics-exposition.txt")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, got.Bytes()) {
		t.Errorf("exposition differs from testdata/metrics-exposition.txt; got:\n%s", got.String())
	}
}

// TestMetricsExpositionMetadataAndLabels pins what WritePrometheus adds to
// the bare Set: one # HELP and one # TYPE line before each family, and
// the WithMetricsLabels labels first in every series, sorted by name, the
// value escaped (a quote, a backslash, a newline, UTF-8 as it is).
func TestMetricsExpositionMetadataAndLabels(t *testing.T) {
	o := expositionFixture(t, WithMetricsLabels(map[string]string{"zone": "eu \"west\"\\\nü", "gateway": "a"}))
	var got bytes.Buffer
	o.WritePrometheus(&got)
	const golden = "testdata/metrics-exposition-labelled.txt"
	if os.Getenv("ORCHESTRATOR_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, got.Bytes()) {
		t.Errorf("exposition differs from %s; got:\n%s", golden, got.String())
	}
	if problems := testutil.ExpositionMetadataProblems(got.String()); len(problems) > 0 {
		t.Errorf("exposition metadata problems; want none:\n%s", strings.Join(problems, "\n"))
	}
}

// expositionFixture is a gateway with five endpoints (one disabled, one
// registered through the API, one with its breaker tripped) whose metrics
// are set by hand to values that reach every branch of the writer.
func expositionFixture(t *testing.T, opts ...Option) *Orchestrator {
	t.Helper()
	off := false
	opts = append([]Option{WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), WithHealthCheck(HealthCheckConfig{Enabled: &off}), WithEndpoints(
		Endpoint{Name: "a", URL: "http://127.0.0.1:1/x"},
		Endpoint{Name: "b", Version: "v1", URL: "http://127.0.0.1:2/x"},
		Endpoint{Name: "c", URL: "http://127.0.0.1:3/x", Disabled: true},
		Endpoint{Name: "d", URL: "http://127.0.0.1:4/x"},
	)}, opts...)
	o, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	if _, err := o.Register(context.Background(), Endpoint{Name: "e", ID: "e-api", URL: "http://127.0.0.1:5/x"}); err != nil {
		t.Fatal(err)
	}
	o.MetricsSet().NewCounter(`orchestrator_config_reloads_total{result="success"}`).Add(3)
	if err := o.TripBreaker("d"); err != nil {
		t.Fatal(err)
	}
	tb := o.table.Load()
	a, b := tb.route("a").metrics, tb.route("b_v1").metrics
	tb.route("a").traffic.inFlight.Add(3)
	for _, c := range []struct {
		m string
		s int
	}{{"GET", 200}, {"GET", 200}, {"POST", 500}, {"FOO", 404}, {"GET", 42}, {"DELETE", 204}, {"PUT", 1000}, {"HEAD", 599}, {"PATCH", 100}, {"OPTIONS", 301}, {"CONNECT", 502}, {"TRACE", 200}} {
		a.requests.inc(c.m, c.s)
	}
	b.requests.inc("GET", 200)
	for _, v := range []float64{0.0005, 0.003, 1.5, 100, 0.001, 0.0025, 60, -1, math.NaN()} {
		a.duration.Update(v)
	}
	b.duration.Update(2)
	b.duration.Update(1)
	a.probeDuration.Update(0.02)
	b.probeDuration.Update(11)
	a.upstreamError[errTimeout].Inc()
	a.upstreamError[errTLS].Inc()
	a.upstreamError[errTLS].Inc()
	b.upstreamError[errOther].Inc()
	a.breakerOpens.Inc()
	b.healthFlips.Inc()
	o.metrics.unrouted.inc("GET", 404)
	o.metrics.unrouted.inc("BREW", 404)
	return o
}

// TestMemoryPerEndpoint bounds the live heap an endpoint costs, so that
// per-endpoint state cannot quietly grow back (one metrics.Set per
// endpoint cost 6.5 KB in all; 1.7 KB when this test was written).
// BenchmarkMemory10000 reports the figure at 10,000 endpoints.
func TestMemoryPerEndpoint(t *testing.T) {
	const n, ceiling = 2000, 2500
	eps := scaleEndpoints(n)
	before := liveHeap()
	o, err := New(WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), WithHealthCheck(HealthCheckConfig{Enabled: new(bool)}), WithEndpoints(eps...))
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	per := (int64(liveHeap()) - int64(before)) / n
	runtime.KeepAlive(o)
	if per > ceiling {
		t.Errorf("live heap per endpoint with %d registered: %d B; want at most %d B", n, per, ceiling)
	}
	t.Logf("live heap per endpoint with %d registered: %d B", n, per)
}
