package orchestrator_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

// ---------------------------------------------------------------------------
// Helpers shared by metrics_test.go and accesslog_test.go. Their names start
// with "obs" (observability) so that they never collide with the helpers of
// the package's other test files.
// ---------------------------------------------------------------------------

const (
	// obsWait bounds every poll: generous, for a loaded machine under -race.
	obsWait = 10 * time.Second
	obsTick = 2 * time.Millisecond
)

// obsLogs is the buffer a JSON slog handler writes into: a
// testutil.LogBuffer that keeps the type name and the short methods
// (lines, of) that the tests of accesslog_test.go call.
type obsLogs struct{ testutil.LogBuffer }

// lines decodes every line written so far; each must be one JSON object.
func (l *obsLogs) lines(t *testing.T) []map[string]any {
	t.Helper()
	return l.JSONLines(t)
}

// of returns the lines whose "logger" attribute is logger, in order.
func (l *obsLogs) of(t *testing.T, logger string) []map[string]any {
	t.Helper()
	return l.JSONLinesOf(t, logger)
}

// obsLogger is a JSON logger at debug level writing into logs.
func obsLogger(logs *obsLogs) *slog.Logger {
	return slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// obsNew builds an Orchestrator that logs nowhere unless a later WithLogger
// says otherwise, closed when the test ends.
func obsNew(t *testing.T, opts ...orchestrator.Option) *orchestrator.Orchestrator {
	t.Helper()
	all := append([]orchestrator.Option{orchestrator.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil)))}, opts...)
	o, err := orchestrator.New(all...)
	require.NoError(t, err, "New: got error %v; want none", err)
	t.Cleanup(func() { o.Close() })
	return o
}

// obsServe sends one request straight to the handler. When it returns, the
// request has been observed (metrics updated, access line written).
func obsServe(h http.Handler, method, target string, hdr http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func obsRequireCode(t *testing.T, rec *httptest.ResponseRecorder, want int) {
	t.Helper()
	require.Equal(t, want, rec.Code, "status: got %d; want %d (body %q)", rec.Code, want, rec.Body.String())
}

// obsBackend answers 500 to POST and 200 ("ok") to anything else.
func obsBackend(t *testing.T) *httptest.Server {
	t.Helper()
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(b.Close)
	return b
}

// obsHangingBackend never answers: a request stays until the gateway gives
// up on it (or the test ends).
func obsHangingBackend(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(b.Close)
	t.Cleanup(func() { close(release) }) // runs first: frees the handlers Close waits for
	return b
}

// obsProber is a controllable health probe: healthy while ok is true.
type obsProber struct {
	ok    atomic.Bool
	calls atomic.Int64
}

func newObsProber(healthy bool) *obsProber {
	p := &obsProber{}
	p.ok.Store(healthy)
	return p
}

var errObsProbe = errors.New("probe says the upstream is down")

func (p *obsProber) Probe(ctx context.Context, _ orchestrator.ProbeTarget) error {
	p.calls.Add(1)
	if p.ok.Load() {
		return nil
	}
	return errObsProbe
}

// obsSample is one line of the Prometheus text exposition.
type obsSample struct {
	name   string
	labels map[string]string
	value  float64
}

// obsScrape is a parsed exposition.
type obsScrape struct {
	text    string
	samples []obsSample
}

// obsParse parses the Prometheus text format: `name{l1="v1",...} value
// [timestamp]` lines; comments and blank lines are skipped. A malformed line
// or a series written twice fails the test.
func obsParse(t *testing.T, text string) obsScrape {
	t.Helper()
	s := obsScrape{text: text}
	seen := map[string]bool{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		smp, err := obsParseLine(line)
		require.NoError(t, err, "exposition line %d %q: got a parse error; want `name{labels} value`", i+1, line)
		key := obsKey(smp.name, smp.labels)
		require.False(t, seen[key], "exposition: got series %s twice; want each once", key)
		seen[key] = true
		s.samples = append(s.samples, smp)
	}
	return s
}

func obsParseLine(line string) (obsSample, error) {
	smp := obsSample{labels: map[string]string{}}
	end := strings.IndexAny(line, "{ ")
	if end <= 0 {
		return smp, fmt.Errorf("no metric name")
	}
	smp.name = line[:end]
	rest := line[end:]
	if rest[0] == '{' {
		i := 1
		for {
			for i < len(rest) && (rest[i] == ',' || rest[i] == ' ') {
				i++
			}
			if i >= len(rest) {
				return smp, fmt.Errorf("unterminated label set")
			}
			if rest[i] == '}' {
				i++
				break
			}
			eq := strings.IndexByte(rest[i:], '=')
			if eq <= 0 || i+eq+1 >= len(rest) || rest[i+eq+1] != '"' {
				return smp, fmt.Errorf("bad label at %q", rest[i:])
			}
			key := rest[i : i+eq]
			i += eq + 2
			var val strings.Builder
			closed := false
			for i < len(rest) {
				c := rest[i]
				i++
				if c == '\\' && i < len(rest) {
					switch rest[i] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(rest[i])
					}
					i++
					continue
				}
				if c == '"' {
					closed = true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return smp, fmt.Errorf("unterminated label value")
			}
			if _, dup := smp.labels[key]; dup {
				return smp, fmt.Errorf("label %s twice", key)
			}
			smp.labels[key] = val.String()
		}
		rest = rest[i:]
	}
	fields := strings.Fields(rest)
	if len(fields) < 1 || len(fields) > 2 {
		return smp, fmt.Errorf("want a value and an optional timestamp after the series, got %q", rest)
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return smp, err
	}
	smp.value = v
	return smp, nil
}

// obsKey is the canonical form of a series: its labels sorted by name.
func obsKey(name string, labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, labels[k])
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

func obsLabels(kv ...string) map[string]string {
	m := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// lookup finds the series with exactly these labels.
func (s obsScrape) lookup(name string, kv ...string) (float64, bool) {
	want := obsKey(name, obsLabels(kv...))
	for _, smp := range s.samples {
		if obsKey(smp.name, smp.labels) == want {
			return smp.value, true
		}
	}
	return 0, false
}

// value requires the series to exist and returns its value.
func (s obsScrape) value(t *testing.T, name string, kv ...string) float64 {
	t.Helper()
	v, ok := s.lookup(name, kv...)
	require.True(t, ok, "series %s: got none; want it exposed. Exposition:\n%s", obsKey(name, obsLabels(kv...)), s.text)
	return v
}

// expect asserts the series' value.
func (s obsScrape) expect(t *testing.T, want float64, name string, kv ...string) {
	t.Helper()
	got := s.value(t, name, kv...)
	assert.Equal(t, want, got, "%s: got %v; want %v", obsKey(name, obsLabels(kv...)), got, want)
}

// where returns the samples with label key equal to val.
func (s obsScrape) where(key, val string) []obsSample {
	var out []obsSample
	for _, smp := range s.samples {
		if v, ok := smp.labels[key]; ok && v == val {
			out = append(out, smp)
		}
	}
	return out
}

// named returns the samples of metric name.
func (s obsScrape) named(name string) []obsSample {
	var out []obsSample
	for _, smp := range s.samples {
		if smp.name == name {
			out = append(out, smp)
		}
	}
	return out
}

// sum adds up the samples of name whose labels include kv.
func (s obsScrape) sum(name string, kv ...string) float64 {
	want := obsLabels(kv...)
	total := 0.0
next:
	for _, smp := range s.named(name) {
		for k, v := range want {
			if smp.labels[k] != v {
				continue next
			}
		}
		total += smp.value
	}
	return total
}

func obsScrapeOf(t *testing.T, o *orchestrator.Orchestrator) obsScrape {
	t.Helper()
	var b bytes.Buffer
	o.WritePrometheus(&b)
	return obsParse(t, b.String())
}

// obsEventually polls the exposition until check passes.
func obsEventually(t *testing.T, o *orchestrator.Orchestrator, what string, check func(s obsScrape) bool) obsScrape {
	t.Helper()
	deadline := time.Now().Add(obsWait)
	tick := time.NewTicker(obsTick)
	defer tick.Stop()
	for {
		s := obsScrapeOf(t, o)
		if check(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s; exposition:\n%s", obsWait, what, s.text)
		}
		<-tick.C
	}
}

// obsWaitFor polls cond, in the test's goroutine, until it holds or obsWait
// passes.
func obsWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(obsWait)
	tick := time.NewTicker(obsTick)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", obsWait, what)
		}
		<-tick.C
	}
}

// obsCheckHistogram checks that name's buckets for the endpoint are a valid
// Prometheus histogram (so histogram_quantile works on them): le bounds
// ascending and ending with +Inf, cumulative counts, +Inf equal to _count.
// It returns _count.
func obsCheckHistogram(t *testing.T, s obsScrape, name, endpoint string) float64 {
	t.Helper()
	type bucket struct {
		le    float64
		raw   string
		count float64
	}
	var buckets []bucket
	for _, smp := range s.named(name + "_bucket") {
		if smp.labels["endpoint"] != endpoint {
			continue
		}
		require.Len(t, smp.labels, 2, "%s_bucket labels: got %v; want exactly endpoint and le", name, smp.labels)
		raw, ok := smp.labels["le"]
		require.True(t, ok, "%s_bucket: got labels %v; want an le label", name, smp.labels)
		le, err := strconv.ParseFloat(raw, 64)
		require.NoError(t, err, "%s_bucket le=%q: got an unparsable bound", name, raw)
		buckets = append(buckets, bucket{le, raw, smp.value})
	}
	require.NotEmpty(t, buckets, "%s_bucket{endpoint=%q}: got no buckets; want a Prometheus histogram", name, endpoint)
	for i := 1; i < len(buckets); i++ {
		assert.Less(t, buckets[i-1].le, buckets[i].le, "%s le bounds: got %s before %s; want ascending", name, buckets[i-1].raw, buckets[i].raw)
		assert.LessOrEqual(t, buckets[i-1].count, buckets[i].count, "%s buckets: got le=%s %v > le=%s %v; want cumulative counts", name, buckets[i-1].raw, buckets[i-1].count, buckets[i].raw, buckets[i].count)
	}
	last := buckets[len(buckets)-1]
	assert.Equal(t, "+Inf", last.raw, "%s last bucket: got le=%q; want le=\"+Inf\"", name, last.raw)
	count := s.value(t, name+"_count", "endpoint", endpoint)
	assert.Equal(t, count, last.count, "%s: got le=\"+Inf\" %v and _count %v; want them equal", name, last.count, count)
	sum := s.value(t, name+"_sum", "endpoint", endpoint)
	assert.GreaterOrEqual(t, sum, 0.0, "%s_sum: got %v; want >= 0", name, sum)
	return count
}

// obsQuantile is Prometheus' histogram_quantile on one endpoint's buckets.
func obsQuantile(s obsScrape, name, endpoint string, q float64) float64 {
	type bucket struct{ le, count float64 }
	var bs []bucket
	for _, smp := range s.named(name + "_bucket") {
		if smp.labels["endpoint"] == endpoint {
			le, _ := strconv.ParseFloat(smp.labels["le"], 64)
			bs = append(bs, bucket{le, smp.value})
		}
	}
	slices.SortFunc(bs, func(a, b bucket) int {
		switch {
		case a.le < b.le:
			return -1
		case a.le > b.le:
			return 1
		}
		return 0
	})
	if len(bs) < 2 || !math.IsInf(bs[len(bs)-1].le, 1) || bs[len(bs)-1].count == 0 {
		return math.NaN()
	}
	rank := q * bs[len(bs)-1].count
	for i, b := range bs {
		if b.count >= rank {
			if math.IsInf(b.le, 1) {
				return bs[i-1].le
			}
			lo, loCount := 0.0, 0.0
			if i > 0 {
				lo, loCount = bs[i-1].le, bs[i-1].count
			}
			return lo + (b.le-lo)*(rank-loCount)/(b.count-loCount)
		}
	}
	return math.NaN()
}

// ---------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------

// TestMetricsAfterKnownSequence drives a known sequence of requests,
// breaker trips and health changes, then parses the exposition and checks
// every value.
func TestMetricsAfterKnownSequence(t *testing.T) {
	ok := obsBackend(t)
	stuck := obsHangingBackend(t)
	prober := newObsProber(true)
	on, off := true, false
	hc := &orchestrator.HealthCheckConfig{
		Enabled:            &on,                              // the only endpoint probed: the others have checks off (below)
		Interval:           orchestrator.Duration(time.Hour), // only the first probe is scheduled; the test drives the rest
		UnhealthyThreshold: 1,
		HealthyThreshold:   1,
	}
	o := obsNew(t,
		orchestrator.WithProber(prober),
		// A custom prober is called for every endpoint whose checks are on.
		orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Enabled: &off}),
		orchestrator.WithEndpoints(
			orchestrator.Endpoint{Name: "svc", URL: ok.URL, Methods: []string{"GET", "POST"}},
			orchestrator.Endpoint{Name: "down", URL: testutil.RefusedURL(t)},
			orchestrator.Endpoint{Name: "stuck", URL: stuck.URL, Timeout: orchestrator.Duration(50 * time.Millisecond)},
			orchestrator.Endpoint{Name: "tripped", URL: ok.URL, CircuitBreaker: &orchestrator.CircuitBreakerConfig{ResetTimeout: orchestrator.Duration(time.Hour)}},
			orchestrator.Endpoint{Name: "flaky", URL: ok.URL, CircuitBreaker: &orchestrator.CircuitBreakerConfig{ResetTimeout: orchestrator.Duration(time.Millisecond), HalfOpenRequests: 2}},
			orchestrator.Endpoint{Name: "probed", URL: ok.URL, HealthCheckPath: "/healthz", HealthCheck: hc},
		))

	// Requests: 3 GET 200, 1 POST 500, a 405, a 404 no endpoint matches.
	for i := 0; i < 3; i++ {
		obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/svc/items", nil), http.StatusOK)
	}
	obsRequireCode(t, obsServe(o, http.MethodPost, "/orchestrator/svc/items", nil), http.StatusInternalServerError)
	obsRequireCode(t, obsServe(o, http.MethodDelete, "/orchestrator/svc/items", nil), http.StatusMethodNotAllowed)
	obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/nowhere/x", nil), http.StatusNotFound)
	// Upstream refused and upstream timeout.
	obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/down/x", nil), http.StatusBadGateway)
	obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/stuck/x", nil), http.StatusGatewayTimeout)

	// Breaker tripped and held open.
	require.NoError(t, o.TripBreaker("tripped"))
	obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/tripped/x", nil), http.StatusServiceUnavailable)
	s := obsScrapeOf(t, o)
	s.expect(t, 2, "orchestrator_circuit_breaker_state", "endpoint", "tripped")
	s.expect(t, 0, "orchestrator_endpoint_health", "endpoint", "tripped")

	// Breaker tripped, then half-open once its 1ms reset timeout passed,
	// still half-open after one good trial (two are needed), closed after two.
	orchestrator.OpenBreakerForTest(o, "flaky")
	obsEventually(t, o, "flaky's breaker gauge to read 1 (half-open) once its reset timeout passed", func(s obsScrape) bool {
		v, _ := s.lookup("orchestrator_circuit_breaker_state", "endpoint", "flaky")
		return v == 1
	})
	obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/flaky/x", nil), http.StatusOK)
	s = obsScrapeOf(t, o)
	s.expect(t, 1, "orchestrator_circuit_breaker_state", "endpoint", "flaky")
	v, err := o.Endpoint("flaky")
	require.NoError(t, err)
	require.Equal(t, orchestrator.BreakerHalfOpen, v.CircuitBreakerState, "flaky's breaker after one good trial: got %q; want %q", v.CircuitBreakerState, orchestrator.BreakerHalfOpen)
	obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/flaky/x", nil), http.StatusOK)

	// Health: the first (scheduled) probe makes "probed" healthy; then a
	// failed probe flips it to unhealthy and a good one back.
	obsEventually(t, o, "the first probe of \"probed\" to make it healthy", func(s obsScrape) bool {
		h, _ := s.lookup("orchestrator_endpoint_health", "endpoint", "probed")
		flips, _ := s.lookup("orchestrator_endpoint_health_changes_total", "endpoint", "probed")
		return h == 1 && flips == 1
	})
	prober.ok.Store(false)
	_, err = o.CheckHealth(context.Background(), "probed")
	require.NoError(t, err)
	s = obsScrapeOf(t, o)
	s.expect(t, 0, "orchestrator_endpoint_health", "endpoint", "probed")
	s.expect(t, 2, "orchestrator_endpoint_health_changes_total", "endpoint", "probed")
	prober.ok.Store(true)
	_, err = o.CheckHealth(context.Background(), "probed")
	require.NoError(t, err)

	s = obsScrapeOf(t, o)

	// orchestrator_requests_total{endpoint,method,status}
	s.expect(t, 3, "orchestrator_requests_total", "endpoint", "svc", "method", "GET", "status", "200")
	s.expect(t, 1, "orchestrator_requests_total", "endpoint", "svc", "method", "POST", "status", "500")
	s.expect(t, 1, "orchestrator_requests_total", "endpoint", "svc", "method", "DELETE", "status", "405")
	s.expect(t, 1, "orchestrator_requests_total", "endpoint", "down", "method", "GET", "status", "502")
	s.expect(t, 1, "orchestrator_requests_total", "endpoint", "stuck", "method", "GET", "status", "504")
	s.expect(t, 1, "orchestrator_requests_total", "endpoint", "tripped", "method", "GET", "status", "503")
	s.expect(t, 2, "orchestrator_requests_total", "endpoint", "flaky", "method", "GET", "status", "200")
	assert.Len(t, s.named("orchestrator_requests_total"), 7, "orchestrator_requests_total: got series %v; want exactly the 7 label sets requested", s.named("orchestrator_requests_total"))
	for _, smp := range s.named("orchestrator_requests_total") {
		assert.Equal(t, []string{"endpoint", "method", "status"}, obsSortedKeys(smp.labels), "orchestrator_requests_total labels: got %v; want endpoint, method, status", smp.labels)
		assert.NotEmpty(t, smp.labels["endpoint"], "orchestrator_requests_total: got a series with an empty endpoint %v; want unrouted requests counted apart", smp.labels)
	}
	// The request no endpoint matched is counted without an endpoint.
	s.expect(t, 1, "orchestrator_unrouted_requests_total", "method", "GET", "status", "404")

	// orchestrator_request_duration_seconds{endpoint}: a histogram whose
	// _count equals the endpoint's requests.
	for _, id := range []string{"svc", "down", "stuck", "tripped", "flaky", "probed"} {
		count := obsCheckHistogram(t, s, "orchestrator_request_duration_seconds", id)
		requests := s.sum("orchestrator_requests_total", "endpoint", id)
		assert.Equal(t, requests, count, "orchestrator_request_duration_seconds_count{endpoint=%q}: got %v; want %v, the endpoint's requests", id, count, requests)
	}
	// The timed-out request took at least its 50ms timeout.
	s.expect(t, 0, "orchestrator_request_duration_seconds_bucket", "endpoint", "stuck", "le", "0.025")
	assert.GreaterOrEqual(t, s.value(t, "orchestrator_request_duration_seconds_sum", "endpoint", "stuck"), 0.05,
		"stuck's duration sum: got %v; want at least the 50ms timeout", s.value(t, "orchestrator_request_duration_seconds_sum", "endpoint", "stuck"))
	q := obsQuantile(s, "orchestrator_request_duration_seconds", "stuck", 0.5)
	assert.True(t, q > 0.025 && q <= 60, "histogram_quantile(0.5) of stuck: got %v; want within (0.025, 60]", q)

	// orchestrator_upstream_errors_total{endpoint,kind}
	s.expect(t, 1, "orchestrator_upstream_errors_total", "endpoint", "down", "kind", "refused")
	s.expect(t, 1, "orchestrator_upstream_errors_total", "endpoint", "stuck", "kind", "timeout")
	assert.Equal(t, 1.0, s.sum("orchestrator_upstream_errors_total", "endpoint", "down"), "down's upstream errors over all kinds: got %v; want 1", s.sum("orchestrator_upstream_errors_total", "endpoint", "down"))
	assert.Equal(t, 1.0, s.sum("orchestrator_upstream_errors_total", "endpoint", "stuck"), "stuck's upstream errors over all kinds: got %v; want 1", s.sum("orchestrator_upstream_errors_total", "endpoint", "stuck"))
	assert.Equal(t, 0.0, s.sum("orchestrator_upstream_errors_total", "endpoint", "svc"), "svc's upstream errors (a 500 answer is not one): got %v; want 0", s.sum("orchestrator_upstream_errors_total", "endpoint", "svc"))

	// orchestrator_circuit_breaker_state{endpoint}: 0 closed, 2 open.
	s.expect(t, 0, "orchestrator_circuit_breaker_state", "endpoint", "svc")
	s.expect(t, 2, "orchestrator_circuit_breaker_state", "endpoint", "tripped")
	s.expect(t, 0, "orchestrator_circuit_breaker_state", "endpoint", "flaky")
	s.expect(t, 1, "orchestrator_circuit_breaker_opens_total", "endpoint", "tripped")
	s.expect(t, 1, "orchestrator_circuit_breaker_opens_total", "endpoint", "flaky")
	s.expect(t, 0, "orchestrator_circuit_breaker_opens_total", "endpoint", "svc")

	// orchestrator_endpoint_health{endpoint}: 1 healthy, 0 otherwise.
	s.expect(t, 1, "orchestrator_endpoint_health", "endpoint", "svc")
	s.expect(t, 0, "orchestrator_endpoint_health", "endpoint", "tripped")
	s.expect(t, 1, "orchestrator_endpoint_health", "endpoint", "flaky")
	s.expect(t, 1, "orchestrator_endpoint_health", "endpoint", "probed")
	s.expect(t, 3, "orchestrator_endpoint_health_changes_total", "endpoint", "probed")

	// orchestrator_health_probe_duration_seconds{endpoint}: three probes.
	probes := obsCheckHistogram(t, s, "orchestrator_health_probe_duration_seconds", "probed")
	assert.Equal(t, 3.0, probes, "probe duration _count of probed: got %v; want 3", probes)
	assert.Equal(t, int64(3), prober.calls.Load(), "probes run: got %d; want 3", prober.calls.Load())
	assert.Equal(t, 0.0, s.value(t, "orchestrator_health_probe_duration_seconds_count", "endpoint", "svc"), "svc has no health check: got probe count %v; want 0", s.value(t, "orchestrator_health_probe_duration_seconds_count", "endpoint", "svc"))

	// orchestrator_requests_in_flight{endpoint}: nothing in flight now.
	for _, id := range []string{"svc", "down", "stuck", "tripped", "flaky", "probed"} {
		s.expect(t, 0, "orchestrator_requests_in_flight", "endpoint", id)
	}

	// orchestrator_registry_endpoints{source}
	s.expect(t, 6, "orchestrator_registry_endpoints", "source", "config")
	s.expect(t, 0, "orchestrator_registry_endpoints", "source", "api")
}

func obsSortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestMetricsInFlight(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, "late")
	}))
	t.Cleanup(slow.Close)
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	o := obsNew(t, orchestrator.WithEndpoints(
		orchestrator.Endpoint{Name: "slow", URL: slow.URL},
		orchestrator.Endpoint{Name: "idle", URL: slow.URL},
	))

	done := make(chan *httptest.ResponseRecorder, 1)
	go func() { done <- obsServe(o, http.MethodGet, "/orchestrator/slow/x", nil) }()
	select {
	case <-arrived:
	case <-time.After(obsWait):
		t.Fatalf("the request did not reach the backend within %v", obsWait)
	}
	s := obsScrapeOf(t, o)
	s.expect(t, 1, "orchestrator_requests_in_flight", "endpoint", "slow")
	s.expect(t, 0, "orchestrator_requests_in_flight", "endpoint", "idle")
	s.expect(t, 0, "orchestrator_request_duration_seconds_count", "endpoint", "slow")

	free()
	var rec *httptest.ResponseRecorder
	select {
	case rec = <-done:
	case <-time.After(obsWait):
		t.Fatalf("the request did not finish within %v of its backend being released", obsWait)
	}
	obsRequireCode(t, rec, http.StatusOK)
	s = obsScrapeOf(t, o)
	s.expect(t, 0, "orchestrator_requests_in_flight", "endpoint", "slow")
	s.expect(t, 1, "orchestrator_requests_total", "endpoint", "slow", "method", "GET", "status", "200")
	s.expect(t, 1, "orchestrator_request_duration_seconds_count", "endpoint", "slow")
}

// obsSeriesOf lists the exposition lines that belong to endpoint id.
func obsSeriesOf(s obsScrape, id string) []string {
	var out []string
	for _, smp := range s.where("endpoint", id) {
		out = append(out, obsKey(smp.name, smp.labels))
	}
	return out
}

func TestMetricsRemovedEndpointSeriesGoAway(t *testing.T) {
	ok := obsBackend(t)
	t.Run("Deregister", func(t *testing.T) {
		o := obsNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "stay", URL: ok.URL}))
		_, err := o.Register(context.Background(), orchestrator.Endpoint{Name: "temp", URL: ok.URL})
		require.NoError(t, err)
		obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/temp/x", nil), http.StatusOK)
		obsRequireCode(t, obsServe(o, http.MethodPost, "/orchestrator/temp/x", nil), http.StatusInternalServerError)
		obsRequireCode(t, obsServe(o, http.MethodPatch, "/orchestrator/temp/x", nil), http.StatusOK)
		require.NoError(t, o.TripBreaker("temp"))
		obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/temp/x", nil), http.StatusServiceUnavailable)
		obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/stay/x", nil), http.StatusOK)

		s := obsScrapeOf(t, o)
		s.expect(t, 1, "orchestrator_registry_endpoints", "source", "api")
		before := obsSeriesOf(s, "temp")
		// requests (4 label sets), duration and probe histograms, upstream
		// errors by kind, breaker, health, in-flight...
		require.Greater(t, len(before), 20, "series of temp before removal: got %d; want all of its series", len(before))
		for _, name := range []string{
			"orchestrator_requests_total", "orchestrator_request_duration_seconds_bucket", "orchestrator_request_duration_seconds_count",
			"orchestrator_upstream_errors_total", "orchestrator_requests_in_flight", "orchestrator_circuit_breaker_state",
			"orchestrator_endpoint_health", "orchestrator_health_probe_duration_seconds_count",
		} {
			found := false
			for _, smp := range s.where("endpoint", "temp") {
				found = found || smp.name == name
			}
			assert.True(t, found, "%s{endpoint=\"temp\"}: got none before removal; want it exposed", name)
		}

		require.NoError(t, o.Deregister(context.Background(), "temp"))
		s = obsScrapeOf(t, o)
		assert.Empty(t, obsSeriesOf(s, "temp"), "series of temp after Deregister: got %v; want none", obsSeriesOf(s, "temp"))
		assert.NotContains(t, s.text, `"temp"`, "exposition after Deregister: got a mention of temp; want none")
		s.expect(t, 1, "orchestrator_requests_total", "endpoint", "stay", "method", "GET", "status", "200")
		s.expect(t, 0, "orchestrator_registry_endpoints", "source", "api")

		// Registered again, the id starts from zero.
		_, err = o.Register(context.Background(), orchestrator.Endpoint{Name: "temp", URL: ok.URL})
		require.NoError(t, err)
		obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/temp/x", nil), http.StatusOK)
		s = obsScrapeOf(t, o)
		s.expect(t, 1, "orchestrator_requests_total", "endpoint", "temp", "method", "GET", "status", "200")
		_, stale := s.lookup("orchestrator_requests_total", "endpoint", "temp", "method", "POST", "status", "500")
		assert.False(t, stale, "requests_total{temp,POST,500} after re-registration: got the old series; want it gone")
		s.expect(t, 0, "orchestrator_circuit_breaker_state", "endpoint", "temp")
	})
	t.Run("removed from the config by Sync", func(t *testing.T) {
		o := obsNew(t, orchestrator.WithEndpoints(
			orchestrator.Endpoint{Name: "keep", URL: ok.URL},
			orchestrator.Endpoint{Name: "drop", URL: ok.URL},
		))
		obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/drop/x", nil), http.StatusOK)
		s := obsScrapeOf(t, o)
		require.NotEmpty(t, obsSeriesOf(s, "drop"))
		s.expect(t, 2, "orchestrator_registry_endpoints", "source", "config")

		require.NoError(t, o.Sync(context.Background(), orchestrator.SourceConfig, []orchestrator.Endpoint{{Name: "keep", URL: ok.URL}}))
		s = obsScrapeOf(t, o)
		assert.Empty(t, obsSeriesOf(s, "drop"), "series of drop after Sync removed it: got %v; want none", obsSeriesOf(s, "drop"))
		assert.NotEmpty(t, obsSeriesOf(s, "keep"), "series of keep: got none; want them kept")
		s.expect(t, 1, "orchestrator_registry_endpoints", "source", "config")
	})
	t.Run("a config change keeps counting", func(t *testing.T) {
		o := obsNew(t)
		_, err := o.Register(context.Background(), orchestrator.Endpoint{Name: "svc", URL: ok.URL})
		require.NoError(t, err)
		obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/svc/x", nil), http.StatusOK)
		_, err = o.Update(context.Background(), orchestrator.Endpoint{Name: "svc", URL: ok.URL + "/base"})
		require.NoError(t, err)
		obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/svc/x", nil), http.StatusOK)
		s := obsScrapeOf(t, o)
		s.expect(t, 2, "orchestrator_requests_total", "endpoint", "svc", "method", "GET", "status", "200")
		s.expect(t, 2, "orchestrator_request_duration_seconds_count", "endpoint", "svc")
	})
}

func TestMetricsTwoOrchestratorsAreIndependent(t *testing.T) {
	ok := obsBackend(t)
	ep := orchestrator.Endpoint{Name: "svc", URL: ok.URL}
	a := obsNew(t, orchestrator.WithEndpoints(ep))
	b := obsNew(t, orchestrator.WithEndpoints(ep))
	require.NotSame(t, a.MetricsSet(), b.MetricsSet(), "MetricsSet: got one set for two Orchestrators; want one each")

	for i := 0; i < 3; i++ {
		obsRequireCode(t, obsServe(a, http.MethodGet, "/orchestrator/svc/x", nil), http.StatusOK)
	}
	obsRequireCode(t, obsServe(b, http.MethodGet, "/orchestrator/svc/x", nil), http.StatusOK)
	require.NoError(t, a.TripBreaker("svc"))

	sa, sb := obsScrapeOf(t, a), obsScrapeOf(t, b)
	sa.expect(t, 3, "orchestrator_requests_total", "endpoint", "svc", "method", "GET", "status", "200")
	sb.expect(t, 1, "orchestrator_requests_total", "endpoint", "svc", "method", "GET", "status", "200")
	sa.expect(t, 3, "orchestrator_request_duration_seconds_count", "endpoint", "svc")
	sb.expect(t, 1, "orchestrator_request_duration_seconds_count", "endpoint", "svc")
	sa.expect(t, 2, "orchestrator_circuit_breaker_state", "endpoint", "svc")
	sb.expect(t, 0, "orchestrator_circuit_breaker_state", "endpoint", "svc")

	// Closing one leaves the other's series alone.
	require.NoError(t, a.Close())
	obsRequireCode(t, obsServe(b, http.MethodGet, "/orchestrator/svc/x", nil), http.StatusOK)
	obsScrapeOf(t, b).expect(t, 2, "orchestrator_requests_total", "endpoint", "svc", "method", "GET", "status", "200")

	// A series a program adds to one set is not in the other.
	b.MetricsSet().NewCounter(`obs_test_custom_total{who="b"}`).Inc()
	obsScrapeOf(t, b).expect(t, 1, "obs_test_custom_total", "who", "b")
	_, leaked := obsScrapeOf(t, a).lookup("obs_test_custom_total", "who", "b")
	assert.False(t, leaked, "obs_test_custom_total added to b: got it in a's exposition; want it in b's only")
}

func TestMetricsDisabled(t *testing.T) {
	ok := obsBackend(t)
	o := obsNew(t, orchestrator.WithMetrics(false), orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: ok.URL}))
	obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/svc/x", nil), http.StatusOK)
	obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/none/x", nil), http.StatusNotFound)
	require.NoError(t, o.TripBreaker("svc"))

	var b bytes.Buffer
	require.NotPanics(t, func() { o.WritePrometheus(&b) }, "WritePrometheus with WithMetrics(false): got a panic; want an empty exposition")
	assert.NotContains(t, b.String(), "endpoint=", "exposition with WithMetrics(false): got endpoint series %q; want none", b.String())
	assert.NotContains(t, b.String(), "orchestrator_", "exposition with WithMetrics(false): got gateway series %q; want none", b.String())

	rec := httptest.NewRecorder()
	require.NotPanics(t, func() {
		o.MetricsHandler(false).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	}, "MetricsHandler with WithMetrics(false): got a panic")
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.NotContains(t, rec.Body.String(), "orchestrator_", "MetricsHandler with WithMetrics(false): got gateway series; want none")

	// A program may still expose its own series through the set.
	set := o.MetricsSet()
	require.NotNil(t, set, "MetricsSet with WithMetrics(false): got nil; want a usable set")
	set.NewCounter("obs_test_own_total").Inc()
	obsScrapeOf(t, o).expect(t, 1, "obs_test_own_total")
}

func TestMetricsHandler(t *testing.T) {
	ok := obsBackend(t)
	o := obsNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: ok.URL}))
	obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/svc/x", nil), http.StatusOK)

	for _, process := range []bool{false, true} {
		t.Run(fmt.Sprintf("process=%v", process), func(t *testing.T) {
			rec := httptest.NewRecorder()
			o.MetricsHandler(process).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			require.Equal(t, http.StatusOK, rec.Code)
			ct := rec.Header().Get("Content-Type")
			assert.True(t, strings.HasPrefix(ct, "text/plain"), "Content-Type: got %q; want text/plain (Prometheus text format)", ct)
			s := obsParse(t, rec.Body.String())
			s.expect(t, 1, "orchestrator_requests_total", "endpoint", "svc", "method", "GET", "status", "200")
			_, hasGo := s.lookup("go_goroutines")
			hasProcess := false
			for _, smp := range s.samples {
				hasProcess = hasProcess || strings.HasPrefix(smp.name, "process_")
			}
			assert.Equal(t, process, hasGo, "go_goroutines with process=%v: got present=%v", process, hasGo)
			assert.Equal(t, process, hasProcess, "process_* series with process=%v: got present=%v", process, hasProcess)
		})
	}
}

// TestMetricsParser checks the test's own exposition parser, so that a
// parser bug cannot hide a metrics bug.
func TestMetricsParser(t *testing.T) {
	s := obsParse(t, "# HELP x y\n# TYPE a counter\na 1\nb{k=\"v\",e=\"q\\\"uote\\\\\"} 2.5\nc_bucket{le=\"+Inf\"} 3 1700000000\n\n")
	s.expect(t, 1, "a")
	s.expect(t, 2.5, "b", "k", "v", "e", `q"uote\`)
	s.expect(t, 3, "c_bucket", "le", "+Inf")
	_, found := s.lookup("b", "k", "v")
	assert.False(t, found, "lookup with a subset of the labels: got a match; want exact label sets only")
	for _, bad := range []string{"x{a=\"1\" 2", "{a=\"1\"} 2", "x{a=1} 2", "x 1 2 3", "x notanumber"} {
		_, err := obsParseLine(bad)
		assert.Error(t, err, "obsParseLine(%q): got no error; want one", bad)
	}
}
