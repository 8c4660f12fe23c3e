package orchestrator_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

// obsTraceparent is a valid W3C traceparent of version 00, sampled.
var obsTraceparent = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`)

// obsHeaderBackend answers 200 and sends every request's headers to seen
// (buffered; a test reads one value per request it sent).
func obsHeaderBackend(t *testing.T) (*httptest.Server, chan http.Header) {
	t.Helper()
	seen := make(chan http.Header, 64)
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		seen <- r.Header.Clone()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(b.Close)
	return b, seen
}

func obsRecv(t *testing.T, ch <-chan http.Header) http.Header {
	t.Helper()
	select {
	case h := <-ch:
		return h
	case <-time.After(obsWait):
		t.Fatalf("the backend saw no request within %v", obsWait)
		return nil
	}
}

func obsKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestAccessLogOneLinePerProxiedRequest(t *testing.T) {
	ok := obsBackend(t)
	logs := &obsLogs{}
	o := obsNew(t,
		orchestrator.WithLogger(obsLogger(logs)),
		orchestrator.WithAccessLog(true),
		orchestrator.WithEndpoints(
			orchestrator.Endpoint{Name: "svc", Version: "v1", URL: ok.URL, Methods: []string{"GET", "POST"}},
			orchestrator.Endpoint{Name: "down", URL: testutil.RefusedURL(t)},
		))

	type sent struct {
		method, target, clientReqID string
		status                      int
		endpointID, path, level     string
	}
	requests := []sent{
		{http.MethodGet, "/orchestrator/svc/v1/items/1?page=2&api_key=q-secret", "", 200, "svc_v1", "/orchestrator/svc/v1/items/1", "INFO"},
		{http.MethodPost, "/orchestrator/svc/v1/items", "client-id-42", 500, "svc_v1", "/orchestrator/svc/v1/items", "WARN"},
		{http.MethodDelete, "/orchestrator/svc/v1/items/1", "", 405, "svc_v1", "/orchestrator/svc/v1/items/1", "INFO"},
		{http.MethodGet, "/orchestrator/nowhere/x", "", 404, "", "/orchestrator/nowhere/x", "INFO"},
		{http.MethodGet, "/orchestrator/down/a%2Fb", "", 502, "down", "/orchestrator/down/a%2Fb", "WARN"},
		{http.MethodGet, "/not-the-gateway", "", 404, "", "/not-the-gateway", "INFO"},
	}
	var ids []string
	for _, r := range requests {
		hdr := http.Header{}
		if r.clientReqID != "" {
			hdr.Set("X-Request-Id", r.clientReqID)
		}
		rec := obsServe(o, r.method, r.target, hdr)
		obsRequireCode(t, rec, r.status)
		id := rec.Header().Get("X-Request-Id")
		require.NotEmpty(t, id, "%s %s: got no X-Request-Id on the response; want one", r.method, r.target)
		if r.clientReqID != "" {
			require.Equal(t, r.clientReqID, id, "X-Request-Id: got %q; want the client's %q", id, r.clientReqID)
		}
		ids = append(ids, id)
	}

	lines := logs.of(t, "orchestrator.access")
	require.Len(t, lines, len(requests), "access lines: got %d; want one per request (%d). Log:\n%s", len(lines), len(requests), logs)
	wantKeys := []string{"endpoint_id", "level", "logger", "method", "msg", "path", "request_id", "response_time", "status_code", "time"}
	for i, line := range lines {
		r := requests[i]
		assert.Equal(t, wantKeys, obsKeys(line), "access line %d keys: got %v; want %v (no headers, no trace_id without trace context)", i, obsKeys(line), wantKeys)
		assert.Equal(t, "request", line["msg"], "access line %d msg: got %v; want %q", i, line["msg"], "request")
		assert.Equal(t, r.level, line["level"], "access line %d (%d) level: got %v; want %v", i, r.status, line["level"], r.level)
		ts, _ := line["time"].(string)
		_, err := time.Parse(time.RFC3339Nano, ts)
		assert.NoError(t, err, "access line %d time: got %q; want an RFC 3339 timestamp", i, ts)
		assert.Equal(t, ids[i], line["request_id"], "access line %d request_id: got %v; want the response's X-Request-Id %q", i, line["request_id"], ids[i])
		assert.Equal(t, r.endpointID, line["endpoint_id"], "access line %d endpoint_id: got %v; want %q", i, line["endpoint_id"], r.endpointID)
		assert.Equal(t, r.method, line["method"], "access line %d method: got %v; want %q", i, line["method"], r.method)
		assert.Equal(t, r.path, line["path"], "access line %d path: got %v; want %q (escaped, without the query)", i, line["path"], r.path)
		assert.Equal(t, float64(r.status), line["status_code"], "access line %d status_code: got %v; want %d", i, line["status_code"], r.status)
		rt, isNum := line["response_time"].(float64)
		assert.True(t, isNum && rt >= 0 && rt < obsWait.Seconds(), "access line %d response_time: got %v; want seconds as a number", i, line["response_time"])
	}
	assert.NotContains(t, logs.String(), "q-secret", "log: got the query string's secret; want queries never logged")
}

func TestAccessLogDisabled(t *testing.T) {
	ok := obsBackend(t)
	for name, opts := range map[string][]orchestrator.Option{
		"default":              nil,
		"WithAccessLog(false)": {orchestrator.WithAccessLog(false)},
		"switched on then off": {orchestrator.WithAccessLog(true), orchestrator.WithAccessLog(false)},
	} {
		t.Run(name, func(t *testing.T) {
			logs := &obsLogs{}
			all := append([]orchestrator.Option{
				orchestrator.WithLogger(obsLogger(logs)),
				orchestrator.WithEndpoints(
					orchestrator.Endpoint{Name: "svc", URL: ok.URL},
					orchestrator.Endpoint{Name: "down", URL: testutil.RefusedURL(t)},
				),
			}, opts...)
			o := obsNew(t, all...)
			obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/svc/x", nil), http.StatusOK)
			obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/nowhere/x", nil), http.StatusNotFound)
			obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/down/x", nil), http.StatusBadGateway)

			assert.Empty(t, logs.of(t, "orchestrator.access"), "access lines with the access log off: got some; want none. Log:\n%s", logs)
			// The logger is wired: the failed upstream request is still logged.
			assert.NotEmpty(t, logs.of(t, "orchestrator.router"), "router lines: got none; want the failed upstream request logged. Log:\n%s", logs)
			// Metrics do not depend on the access log.
			obsScrapeOf(t, o).expect(t, 1, "orchestrator_requests_total", "endpoint", "svc", "method", "GET", "status", "200")
		})
	}
}

func TestLogBreakerStateChangesOnce(t *testing.T) {
	fail := make(chan bool, 1)
	fail <- true
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := <-fail
		fail <- f
		if f {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(b.Close)
	setFail := func(v bool) { <-fail; fail <- v }

	logs := &obsLogs{}
	o := obsNew(t,
		orchestrator.WithLogger(obsLogger(logs)),
		orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "cb", URL: b.URL, CircuitBreaker: &orchestrator.CircuitBreakerConfig{
			FailureThreshold: 2, ResetTimeout: orchestrator.Duration(time.Millisecond), HalfOpenRequests: 1,
		}}))

	// Two failures open the breaker.
	obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/cb/x", nil), http.StatusInternalServerError)
	require.Empty(t, logs.of(t, "orchestrator.breaker"), "breaker lines after one failure of two: got some; want none")
	obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/cb/x", nil), http.StatusInternalServerError)
	require.Len(t, logs.of(t, "orchestrator.breaker"), 1, "breaker lines after the breaker opened: got %d; want 1. Log:\n%s", len(logs.of(t, "orchestrator.breaker")), logs)

	// Its 1ms reset timeout passes; a good trial closes it.
	obsWaitFor(t, "cb's breaker to read half_open once its reset timeout passed", func() bool {
		v, err := o.Endpoint("cb")
		return err == nil && v.CircuitBreakerState == orchestrator.BreakerHalfOpen
	})
	setFail(false)
	obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/cb/x", nil), http.StatusOK)
	obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/cb/x", nil), http.StatusOK)

	// Tripped twice, reset twice: one change each way.
	require.NoError(t, o.TripBreaker("cb"))
	require.NoError(t, o.TripBreaker("cb"))
	require.NoError(t, o.ResetBreaker("cb"))
	require.NoError(t, o.ResetBreaker("cb"))

	type change struct{ from, to, level string }
	want := []change{
		{"closed", "open", "WARN"},
		{"open", "half_open", "INFO"},
		{"half_open", "closed", "INFO"},
		{"closed", "open", "WARN"},
		{"open", "closed", "INFO"},
	}
	lines := logs.of(t, "orchestrator.breaker")
	var got []change
	for _, l := range lines {
		got = append(got, change{l["from"].(string), l["to"].(string), l["level"].(string)})
		assert.Equal(t, "cb", l["endpoint_id"], "breaker line endpoint_id: got %v; want %q", l["endpoint_id"], "cb")
		assert.Equal(t, "circuit breaker state changed", l["msg"], "breaker line msg: got %v", l["msg"])
	}
	assert.Equal(t, want, got, "breaker state changes logged: got %v; want %v, each once", got, want)
	obsScrapeOf(t, o).expect(t, 2, "orchestrator_circuit_breaker_opens_total", "endpoint", "cb")
}

func TestLogHealthTransitionsOnce(t *testing.T) {
	ok := obsBackend(t)
	prober := newObsProber(true)
	logs := &obsLogs{}
	o := obsNew(t,
		orchestrator.WithLogger(obsLogger(logs)),
		orchestrator.WithProber(prober),
		orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "hc", URL: ok.URL, HealthCheckPath: "/healthz",
			HealthCheck: &orchestrator.HealthCheckConfig{
				Interval:           orchestrator.Duration(time.Hour), // the test drives every probe after the first
				UnhealthyThreshold: 2,
				HealthyThreshold:   2,
			}}))

	// The first, scheduled probe: unknown -> healthy.
	obsWaitFor(t, "the first probe's transition to healthy to be logged", func() bool {
		return len(logs.of(t, "orchestrator.health")) >= 1
	})
	require.Equal(t, int64(1), prober.calls.Load(), "probes: got %d; want the one scheduled probe", prober.calls.Load())

	check := func(want orchestrator.HealthStatus) {
		t.Helper()
		v, err := o.CheckHealth(context.Background(), "hc")
		require.NoError(t, err)
		require.Equal(t, want, v.Status, "status after a probe: got %q; want %q", v.Status, want)
	}
	prober.ok.Store(false)
	check(orchestrator.StatusHealthy) // 1 failure of 2
	check(orchestrator.StatusUnhealthy)
	check(orchestrator.StatusUnhealthy) // still: no new transition
	prober.ok.Store(true)
	check(orchestrator.StatusUnhealthy) // 1 success of 2
	check(orchestrator.StatusHealthy)
	check(orchestrator.StatusHealthy)

	type change struct{ from, to, level string }
	want := []change{
		{"unknown", "healthy", "INFO"},
		{"healthy", "unhealthy", "WARN"},
		{"unhealthy", "healthy", "INFO"},
	}
	var got []change
	for _, l := range logs.of(t, "orchestrator.health") {
		got = append(got, change{l["from"].(string), l["to"].(string), l["level"].(string)})
		assert.Equal(t, "hc", l["endpoint_id"], "health line endpoint_id: got %v; want %q", l["endpoint_id"], "hc")
		assert.Equal(t, "endpoint health changed", l["msg"], "health line msg: got %v", l["msg"])
		if l["to"] == "unhealthy" {
			assert.Equal(t, errObsProbe.Error(), l["error"], "unhealthy transition error: got %v; want the probe's error", l["error"])
		}
	}
	assert.Equal(t, want, got, "health transitions logged: got %v; want %v, each once", got, want)
	s := obsScrapeOf(t, o)
	s.expect(t, 3, "orchestrator_endpoint_health_changes_total", "endpoint", "hc")
	s.expect(t, 1, "orchestrator_endpoint_health", "endpoint", "hc")
	s.expect(t, 7, "orchestrator_health_probe_duration_seconds_count", "endpoint", "hc")
}

func TestLogComponentLoggerNames(t *testing.T) {
	ok := obsBackend(t)
	logs := &obsLogs{}
	o := obsNew(t,
		orchestrator.WithLogger(obsLogger(logs)),
		orchestrator.WithAccessLog(true),
		orchestrator.WithProber(newObsProber(true)),
		orchestrator.WithEndpoints(
			orchestrator.Endpoint{Name: "svc", URL: ok.URL, HealthCheckPath: "/healthz"},
			orchestrator.Endpoint{Name: "down", URL: testutil.RefusedURL(t)},
		))
	obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/down/x", nil), http.StatusBadGateway)
	require.NoError(t, o.TripBreaker("svc"))
	obsWaitFor(t, "an orchestrator.health line after the first probe", func() bool {
		return len(logs.of(t, "orchestrator.health")) > 0
	})

	for _, name := range []string{"orchestrator.router", "orchestrator.breaker", "orchestrator.health", "orchestrator.access"} {
		assert.NotEmpty(t, logs.of(t, name), "lines of logger %s: got none; want some. Log:\n%s", name, logs)
	}
	for _, l := range logs.lines(t) {
		name, _ := l["logger"].(string)
		assert.True(t, strings.HasPrefix(name, "orchestrator."), "log line without a component logger name: got logger %q in %v", name, l)
	}
	router := logs.of(t, "orchestrator.router")[0]
	assert.Equal(t, "down", router["endpoint_id"], "router line endpoint_id: got %v; want %q", router["endpoint_id"], "down")
	assert.Equal(t, float64(http.StatusBadGateway), router["status_code"], "router line status_code: got %v; want 502", router["status_code"])
}

// TestLogSecretsNeverLogged sends credentials in every header that carries
// them, through every path that logs (access log, failed upstream, fallback,
// breaker, health) at debug level, and requires that none reach the log,
// while the backend does get them.
func TestLogSecretsNeverLogged(t *testing.T) {
	const (
		bearer     = "Bearer user-bearer-5e3c7a"
		apiKey     = "api-key-9f1d2b"
		cookie     = "session=cookie-4a8e6c; theme=dark-cookie-77"
		adminToken = "admin-token-0c2f9e1b"
		inQuery    = "query-secret-6d5b"
	)
	secrets := []string{"user-bearer-5e3c7a", apiKey, "cookie-4a8e6c", "dark-cookie-77", adminToken, inQuery}

	backend, seen := obsHeaderBackend(t)
	logs := &obsLogs{}
	o := obsNew(t,
		orchestrator.WithLogger(obsLogger(logs)),
		orchestrator.WithAccessLog(true),
		orchestrator.WithTraceStart(true),
		orchestrator.WithAdminToken(adminToken),
		orchestrator.WithProber(newObsProber(true)),
		orchestrator.WithEndpoints(
			orchestrator.Endpoint{Name: "svc", URL: backend.URL, HealthCheckPath: "/healthz"},
			orchestrator.Endpoint{Name: "down", URL: testutil.RefusedURL(t)},
			orchestrator.Endpoint{Name: "primary", URL: testutil.RefusedURL(t),
				Fallback: &orchestrator.FallbackConfig{Strategy: orchestrator.FallbackEndpoint, Endpoint: "svc"}},
		))

	creds := http.Header{
		"Authorization": {bearer},
		"X-Api-Key":     {apiKey},
		"Cookie":        {cookie},
	}
	target := "/orchestrator/svc/items?api_key=" + inQuery

	// Forwarded untouched to the backend.
	obsRequireCode(t, obsServe(o, http.MethodGet, target, creds), http.StatusOK)
	up := obsRecv(t, seen)
	assert.Equal(t, bearer, up.Get("Authorization"), "upstream Authorization: got %q; want it untouched", up.Get("Authorization"))
	assert.Equal(t, apiKey, up.Get("X-Api-Key"), "upstream X-API-Key: got %q; want it untouched", up.Get("X-Api-Key"))
	assert.Equal(t, cookie, up.Get("Cookie"), "upstream Cookie: got %q; want it untouched", up.Get("Cookie"))

	// The admin token as Authorization is not forwarded, nor logged.
	obsRequireCode(t, obsServe(o, http.MethodGet, target, http.Header{"Authorization": {"Bearer " + adminToken}}), http.StatusOK)
	up = obsRecv(t, seen)
	assert.Empty(t, up.Values("Authorization"), "upstream Authorization with the admin token: got %q; want it removed", up.Values("Authorization"))

	// Failed upstream (router warning), fallback (router debug line),
	// unrouted, method and breaker refusals, all with the credentials.
	obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/down/x?token="+inQuery, creds), http.StatusBadGateway)
	obsRequireCode(t, obsServe(o, http.MethodPost, "/orchestrator/primary/x?token="+inQuery, creds), http.StatusOK)
	obsRecv(t, seen)
	obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/nowhere?token="+inQuery, creds), http.StatusNotFound)
	require.NoError(t, o.TripBreaker("down"))
	obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/down/x", creds), http.StatusServiceUnavailable)
	_, err := o.CheckHealth(context.Background(), "svc")
	require.NoError(t, err)
	// The scheduled first probe may be the one that logs the transition.
	obsWaitFor(t, "svc's transition to healthy to be logged", func() bool {
		return len(logs.of(t, "orchestrator.health")) > 0
	})

	// The paths that log were all taken.
	for _, name := range []string{"orchestrator.access", "orchestrator.router", "orchestrator.breaker", "orchestrator.health"} {
		assert.NotEmpty(t, logs.of(t, name), "lines of %s: got none; want the scenario to log through it", name)
	}
	debug := false
	for _, l := range logs.lines(t) {
		debug = debug || l["level"] == "DEBUG"
	}
	assert.True(t, debug, "debug lines: got none; want the fallback's debug line (the test runs at debug level)")
	assert.Len(t, logs.of(t, "orchestrator.access"), 6, "access lines: got %d; want 6", len(logs.of(t, "orchestrator.access")))

	out := logs.String()
	for _, secret := range secrets {
		assert.NotContains(t, out, secret, "log output: got secret %q; want credentials never logged. Log:\n%s", secret, out)
	}
	for _, name := range []string{"Authorization", "X-Api-Key", "X-API-Key", "Cookie"} {
		assert.NotContains(t, out, name, "log output: got header name %q; want headers never logged", name)
	}
}

func TestTraceStartSendsNewTraceparent(t *testing.T) {
	backend, seen := obsHeaderBackend(t)
	logs := &obsLogs{}
	o := obsNew(t,
		orchestrator.WithLogger(obsLogger(logs)),
		orchestrator.WithAccessLog(true),
		orchestrator.WithTraceStart(true),
		orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL}))

	var traceIDs []string
	for i := 0; i < 2; i++ {
		obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/svc/x", nil), http.StatusOK)
		up := obsRecv(t, seen)
		tp := up.Values("Traceparent")
		require.Len(t, tp, 1, "upstream traceparent with WithTraceStart(true): got %q; want one new traceparent", tp)
		require.Regexp(t, obsTraceparent, tp[0], "upstream traceparent: got %q; want 00-<32 hex>-<16 hex>-01", tp[0])
		assert.NotEqual(t, strings.Repeat("0", 32), tp[0][3:35], "trace id: got all zeros; want a valid (non-zero) id")
		assert.NotEqual(t, strings.Repeat("0", 16), tp[0][36:52], "parent id: got all zeros; want a valid (non-zero) id")
		assert.Empty(t, up.Values("Tracestate"), "upstream tracestate: got %q; want none for a new trace", up.Values("Tracestate"))
		traceIDs = append(traceIDs, tp[0][3:35])
	}
	assert.NotEqual(t, traceIDs[0], traceIDs[1], "two requests: got the same trace id %q; want one trace each", traceIDs[0])

	lines := logs.of(t, "orchestrator.access")
	require.Len(t, lines, 2)
	for i, l := range lines {
		assert.Equal(t, traceIDs[i], l["trace_id"], "access line %d trace_id: got %v; want %q, the trace id the backend saw", i, l["trace_id"], traceIDs[i])
	}
}

func TestTraceIncomingContextPassesThrough(t *testing.T) {
	const (
		traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		traceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
		tracestate  = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
	)
	for _, start := range []bool{false, true} {
		t.Run(map[bool]string{false: "trace start off", true: "trace start on"}[start], func(t *testing.T) {
			backend, seen := obsHeaderBackend(t)
			logs := &obsLogs{}
			o := obsNew(t,
				orchestrator.WithLogger(obsLogger(logs)),
				orchestrator.WithAccessLog(true),
				orchestrator.WithTraceStart(start),
				orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL}))

			obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/svc/x", http.Header{
				"Traceparent": {traceparent},
				"Tracestate":  {tracestate},
			}), http.StatusOK)
			up := obsRecv(t, seen)
			assert.Equal(t, []string{traceparent}, up.Values("Traceparent"), "upstream traceparent: got %q; want the client's unchanged", up.Values("Traceparent"))
			assert.Equal(t, []string{tracestate}, up.Values("Tracestate"), "upstream tracestate: got %q; want the client's unchanged", up.Values("Tracestate"))

			lines := logs.of(t, "orchestrator.access")
			require.Len(t, lines, 1)
			assert.Equal(t, traceID, lines[0]["trace_id"], "access line trace_id: got %v; want the incoming trace id %q", lines[0]["trace_id"], traceID)
		})
	}
}

func TestTraceStartOff(t *testing.T) {
	backend, seen := obsHeaderBackend(t)
	logs := &obsLogs{}
	o := obsNew(t,
		orchestrator.WithLogger(obsLogger(logs)),
		orchestrator.WithAccessLog(true),
		orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL}))

	obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/svc/x", nil), http.StatusOK)
	up := obsRecv(t, seen)
	assert.Empty(t, up.Values("Traceparent"), "upstream traceparent with trace start off: got %q; want none", up.Values("Traceparent"))

	// An invalid traceparent is not the gateway's to fix when it starts no
	// traces: it passes through, and the log carries no trace id.
	const invalid = "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
	obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/svc/x", http.Header{"Traceparent": {invalid}}), http.StatusOK)
	up = obsRecv(t, seen)
	assert.Equal(t, []string{invalid}, up.Values("Traceparent"), "upstream traceparent: got %q; want the client's untouched", up.Values("Traceparent"))

	lines := logs.of(t, "orchestrator.access")
	require.Len(t, lines, 2)
	for i, l := range lines {
		_, has := l["trace_id"]
		assert.False(t, has, "access line %d: got trace_id %v; want none without valid trace context", i, l["trace_id"])
	}
}

func TestTraceStartReplacesInvalidTraceparent(t *testing.T) {
	backend, seen := obsHeaderBackend(t)
	logs := &obsLogs{}
	o := obsNew(t,
		orchestrator.WithLogger(obsLogger(logs)),
		orchestrator.WithAccessLog(true),
		orchestrator.WithTraceStart(true),
		orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL}))

	for _, bad := range [][]string{
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01"}, // all-zero trace id
		{"not a traceparent"},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b7-01"}, // two
	} {
		obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/svc/x", http.Header{"Traceparent": bad}), http.StatusOK)
		up := obsRecv(t, seen)
		tp := up.Values("Traceparent")
		require.Len(t, tp, 1, "upstream traceparent for incoming %q: got %q; want one new traceparent", bad, tp)
		require.Regexp(t, obsTraceparent, tp[0], "upstream traceparent for incoming %q: got %q; want a valid new one", bad, tp[0])
		lines := logs.of(t, "orchestrator.access")
		assert.Equal(t, tp[0][3:35], lines[len(lines)-1]["trace_id"], "access line trace_id for incoming %q: got %v; want the new trace id %q", bad, lines[len(lines)-1]["trace_id"], tp[0][3:35])
	}
}
