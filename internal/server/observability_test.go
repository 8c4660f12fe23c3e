package server_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator/internal/server"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

// obsMetrics parses the Prometheus text format into a map from the series
// as written (`name{label="value",...}`) to its value. Comments and blank
// lines are skipped; a malformed line or a series written twice fails.
func obsMetrics(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		require.Positive(t, sp, "metrics line %d %q: got no value; want `name{labels} value`", i+1, line)
		series, raw := line[:sp], line[sp+1:]
		if open := strings.IndexByte(series, '{'); open >= 0 {
			require.True(t, open > 0 && strings.HasSuffix(series, "}"), "metrics line %d %q: got a malformed label set", i+1, line)
		} else {
			require.NotContains(t, series, " ", "metrics line %d %q: got a malformed series name", i+1, line)
		}
		v, err := strconv.ParseFloat(raw, 64)
		require.NoError(t, err, "metrics line %d %q: got an unparsable value", i+1, line)
		_, dup := out[series]
		require.False(t, dup, "metrics: got series %s twice; want each once", series)
		out[series] = v
	}
	return out
}

// obsScrape fetches /metrics from the server's main listener and checks
// its metadata: every family described once, before its samples.
func obsScrape(t *testing.T, s *testServer) map[string]float64 {
	t.Helper()
	res, err := s.client.Get(s.base + "/metrics")
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, "GET /metrics: got %d %s; want 200", res.StatusCode, body)
	ct := res.Header.Get("Content-Type")
	require.True(t, strings.HasPrefix(ct, "text/plain"), "GET /metrics Content-Type: got %q; want text/plain", ct)
	if p := testutil.ExpositionMetadataProblems(string(body)); len(p) > 0 {
		t.Errorf("GET /metrics: metadata problems; want none:\n%s", strings.Join(p, "\n"))
	}
	return obsMetrics(t, string(body))
}

// TestObservabilityMetricsLabels: metrics.labels in the file reaches every
// gateway series of orchestratord's /metrics, the reload counters it adds
// included, and no process series.
func TestObservabilityMetricsLabels(t *testing.T) {
	b := backend(t, "b")
	path := testutil.ConfigFile(t, "metrics:\n  labels:\n    gateway: eu-1\nendpoints:\n"+endpointYAML("svc", b.URL))
	s := startServer(t, server.Options{ConfigPath: path})
	code, body := s.mustGet("/orchestrator/svc/x")
	require.Equal(t, http.StatusOK, code, "GET /orchestrator/svc/x: body %s", body)
	m := obsScrape(t, s)
	obsExpect(t, m, `orchestrator_config_reloads_total{gateway="eu-1",result="success"}`, 0)
	obsExpect(t, m, `orchestrator_requests_total{gateway="eu-1",endpoint="svc",method="GET",status="200"}`, 1)
	sawProcess := false
	for series := range m {
		isProcess := strings.HasPrefix(series, "go_") || strings.HasPrefix(series, "process_")
		sawProcess = sawProcess || isProcess
		assert.Equal(t, !isProcess, strings.Contains(series, `gateway="eu-1"`), "series %s: want gateway=\"eu-1\" on gateway series only", series)
	}
	assert.True(t, sawProcess, "orchestratord's /metrics: got no process series; want them")
}

func obsExpect(t *testing.T, m map[string]float64, series string, want float64) {
	t.Helper()
	got, ok := m[series]
	require.True(t, ok, "metrics: got no series %s; want it exposed", series)
	assert.Equal(t, want, got, "%s: got %v; want %v", series, got, want)
}

func obsMessages(lines []map[string]any) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i], _ = l["message"].(string)
	}
	return out
}

// obsRequest sends a request with headers and an optional JSON body.
func obsRequest(t *testing.T, s *testServer, method, path string, hdr http.Header, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := s.client.Do(req)
	require.NoError(t, err, "%s %s", method, path)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

func obsRequireStatus(t *testing.T, what string, got, want int, body string) {
	t.Helper()
	require.Equal(t, want, got, "%s: got %d; want %d (body %s)", what, got, want, body)
}

// obsHeaderBackend answers 200 and sends the headers of every request but
// health probes to seen.
func obsHeaderBackend(t *testing.T) (*httptest.Server, chan http.Header) {
	t.Helper()
	seen := make(chan http.Header, 64)
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path != "/healthz" {
			seen <- r.Header.Clone()
		}
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
	case <-time.After(waitFor):
		t.Fatalf("the backend saw no request within %v", waitFor)
		return nil
	}
}

const (
	obsReloadOK     = `orchestrator_config_reloads_total{result="success"}`
	obsReloadFailed = `orchestrator_config_reloads_total{result="failure"}`
)

func TestObservabilityConfigReloads(t *testing.T) {
	t.Run("reloads through the admin API are counted by result and logged once each", func(t *testing.T) {
		b := backend(t, "b")
		path := testutil.ConfigFile(t, "endpoints:\n"+endpointYAML("svc", b.URL))
		s := startServer(t, server.Options{ConfigPath: path, LogLevel: "debug"})

		m := obsScrape(t, s)
		obsExpect(t, m, obsReloadOK, 0)
		obsExpect(t, m, obsReloadFailed, 0)
		require.Empty(t, s.stderr.JSONLinesOf(t, "orchestrator.config"), "config lines before any reload: got some; want none")

		code, body := s.do(http.MethodPost, "/config/reload", "")
		obsRequireStatus(t, "POST /config/reload", code, http.StatusOK, body)
		m = obsScrape(t, s)
		obsExpect(t, m, obsReloadOK, 1)
		obsExpect(t, m, obsReloadFailed, 0)
		lines := s.stderr.JSONLinesOf(t, "orchestrator.config")
		require.Len(t, lines, 1, "config lines after one reload: got %v; want one", obsMessages(lines))
		l := lines[0]
		assert.Equal(t, "config applied", l["message"], "config line message: got %v", l["message"])
		assert.Equal(t, "INFO", l["level"], "config applied level: got %v; want INFO", l["level"])
		assert.Equal(t, path, l["path"], "config line path: got %v; want %q", l["path"], path)
		assert.Equal(t, "api", l["trigger"], "config line trigger: got %v; want %q", l["trigger"], "api")
		assert.Equal(t, 1.0, l["endpoints"], "config line endpoints: got %v; want 1", l["endpoints"])
		assert.NotEmpty(t, l["version"], "config line version: got none; want the content's version")
		assert.NotEmpty(t, l["timestamp"], "config line timestamp: got none; want the docs/DESIGN.md field name")

		// An invalid file: counted as a failure, logged once as an error.
		testutil.ReplaceFile(t, path, "endpoints:\n  - name: svc\n    url: 5\n")
		code, body = s.do(http.MethodPost, "/config/reload", "")
		obsRequireStatus(t, "POST /config/reload of an invalid file", code, http.StatusBadRequest, body)
		m = obsScrape(t, s)
		obsExpect(t, m, obsReloadOK, 1)
		obsExpect(t, m, obsReloadFailed, 1)
		lines = s.stderr.JSONLinesOf(t, "orchestrator.config")
		require.Len(t, lines, 2, "config lines after a failed reload: got %v; want two", obsMessages(lines))
		l = lines[1]
		assert.Equal(t, "ERROR", l["level"], "config rejected level: got %v; want ERROR", l["level"])
		assert.Contains(t, l["message"], "config rejected", "config rejected message: got %v", l["message"])
		assert.Contains(t, l["error"], "endpoints[0].url", "config rejected error: got %v; want the file's error", l["error"])
		// The last good config keeps serving.
		code, body = s.mustGet("/orchestrator/svc/x")
		assert.Equal(t, "200 b /x", fmt.Sprint(code, " ", body))

		// Fixed: a success again; /registry/sync is one more.
		testutil.ReplaceFile(t, path, "endpoints:\n"+endpointYAML("svc", b.URL)+endpointYAML("more", b.URL))
		code, body = s.do(http.MethodPost, "/config/reload", "")
		obsRequireStatus(t, "POST /config/reload of the fixed file", code, http.StatusOK, body)
		code, body = s.do(http.MethodPost, "/registry/sync", "")
		obsRequireStatus(t, "POST /registry/sync", code, http.StatusOK, body)
		m = obsScrape(t, s)
		obsExpect(t, m, obsReloadOK, 3)
		obsExpect(t, m, obsReloadFailed, 1)

		require.NoError(t, s.stop())
		lines = s.stderr.JSONLinesOf(t, "orchestrator.config")
		var got []string
		for _, l := range lines {
			got = append(got, fmt.Sprintf("%v %v", l["level"], l["trigger"]))
		}
		assert.Equal(t, []string{"INFO api", "ERROR api", "INFO api", "INFO sync"}, got,
			"config lines (level trigger): got %v; want one per reload", got)
	})

	t.Run("a watched change is counted and logged once", func(t *testing.T) {
		b := backend(t, "b")
		path := testutil.ConfigFile(t, "endpoints:\n"+endpointYAML("svc", b.URL))
		s := startServer(t, server.Options{ConfigPath: path, Watch: true})
		testutil.ReplaceFile(t, path, "endpoints:\n"+endpointYAML("svc", b.URL+"/v2"))
		s.waitReloads(1)
		obsExpect(t, obsScrape(t, s), obsReloadOK, 1)

		testutil.ReplaceFile(t, path, "endpoints: [")
		s.waitError()
		obsExpect(t, obsScrape(t, s), obsReloadFailed, 1)

		require.NoError(t, s.stop())
		lines := s.stderr.JSONLinesOf(t, "orchestrator.config")
		var got []string
		for _, l := range lines {
			got = append(got, fmt.Sprintf("%v %v", l["level"], l["trigger"]))
		}
		assert.Equal(t, []string{"INFO watch", "ERROR watch"}, got,
			"config lines (level trigger): got %v; want one per change, however many file events a save makes", got)
	})
}

func TestObservabilityMetricsEndpoint(t *testing.T) {
	b := backend(t, "b")
	path := testutil.ConfigFile(t, "endpoints:\n"+endpointYAML("svc", b.URL))
	s := startServer(t, server.Options{ConfigPath: path, AdminToken: "metrics-test-admin-token"})

	// /metrics is open even with a token; other admin routes are not.
	code, _ := s.mustGet("/health/status")
	require.Equal(t, http.StatusUnauthorized, code, "GET /health/status without the token: got %d; want 401", code)

	code, body := s.mustGet("/orchestrator/svc/x")
	require.Equal(t, "200 b /x", fmt.Sprint(code, " ", body))
	const requests = `orchestrator_requests_total{endpoint="svc",method="GET",status="200"}`
	var m map[string]float64
	// The request is counted once the gateway has answered it, which the
	// client may see a moment before.
	eventually(t, requests+" = 1", func() bool {
		m = obsScrape(t, s)
		return m[requests] == 1
	})
	obsExpect(t, m, requests, 1)
	obsExpect(t, m, `orchestrator_request_duration_seconds_count{endpoint="svc"}`, 1)
	obsExpect(t, m, `orchestrator_request_duration_seconds_bucket{endpoint="svc",le="+Inf"}`, 1)
	obsExpect(t, m, `orchestrator_circuit_breaker_state{endpoint="svc"}`, 0)
	obsExpect(t, m, `orchestrator_endpoint_health{endpoint="svc"}`, 1)
	obsExpect(t, m, `orchestrator_requests_in_flight{endpoint="svc"}`, 0)
	obsExpect(t, m, `orchestrator_upstream_errors_total{endpoint="svc",kind="refused"}`, 0)
	obsExpect(t, m, `orchestrator_registry_endpoints{source="config"}`, 1)
	obsExpect(t, m, `orchestrator_registry_endpoints{source="api"}`, 0)
	obsExpect(t, m, obsReloadOK, 0)
	obsExpect(t, m, obsReloadFailed, 0)

	// Process and Go runtime metrics come with the server's exposition.
	_, goroutines := m["go_goroutines"]
	assert.True(t, goroutines, "go_goroutines: got none; want the Go runtime metrics")
	var process []string
	for series := range m {
		if strings.HasPrefix(series, "process_") {
			process = append(process, series)
		}
	}
	assert.NotEmpty(t, process, "process_* series: got none; want the process metrics")
}

func TestObservabilityAccessLog(t *testing.T) {
	t.Run("one JSON line per proxied request with the docs/DESIGN.md fields", func(t *testing.T) {
		b := backend(t, "b")
		path := testutil.ConfigFile(t, "endpoints:\n"+endpointYAML("svc", b.URL, "version: v1"))
		s := startServer(t, server.Options{ConfigPath: path})

		code, _ := obsRequest(t, s, http.MethodGet, "/orchestrator/svc/v1/items?page=2", http.Header{"X-Request-Id": {"obs-req-1"}}, "")
		require.Equal(t, http.StatusOK, code)
		code, _ = obsRequest(t, s, http.MethodGet, "/orchestrator/none/x", http.Header{"X-Request-Id": {"obs-req-2"}}, "")
		require.Equal(t, http.StatusNotFound, code)
		// Admin requests are not access lines.
		code, _ = s.mustGet("/health")
		require.Equal(t, http.StatusOK, code)

		require.NoError(t, s.stop()) // every line is written once Run has returned
		lines := s.stderr.JSONLinesOf(t, "orchestrator.access")
		require.Len(t, lines, 2, "access lines: got %d; want one per proxied request. Log:\n%s", len(lines), s.stderr)
		want := []string{"endpoint_id", "level", "logger", "message", "method", "path", "request_id", "response_time", "status_code", "timestamp"}
		for i, l := range lines {
			keys := make([]string, 0, len(l))
			for k := range l {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			assert.Equal(t, want, keys, "access line %d keys: got %v; want %v", i, keys, want)
			ts, _ := l["timestamp"].(string)
			_, err := time.Parse(time.RFC3339Nano, ts)
			assert.NoError(t, err, "access line %d timestamp: got %q; want RFC 3339", i, ts)
			assert.Equal(t, "INFO", l["level"])
			assert.Equal(t, "request", l["message"])
			assert.Equal(t, http.MethodGet, l["method"])
			_, isNum := l["response_time"].(float64)
			assert.True(t, isNum, "access line %d response_time: got %v; want seconds as a number", i, l["response_time"])
		}
		assert.Equal(t, "obs-req-1", lines[0]["request_id"])
		assert.Equal(t, "svc_v1", lines[0]["endpoint_id"])
		assert.Equal(t, "/orchestrator/svc/v1/items", lines[0]["path"], "path: got %v; want it without the query", lines[0]["path"])
		assert.Equal(t, 200.0, lines[0]["status_code"])
		assert.Equal(t, "obs-req-2", lines[1]["request_id"])
		assert.Equal(t, "", lines[1]["endpoint_id"])
		assert.Equal(t, 404.0, lines[1]["status_code"])
	})

	t.Run("logging.access_log false writes none", func(t *testing.T) {
		b := backend(t, "b")
		path := testutil.ConfigFile(t, "logging:\n  access_log: false\nendpoints:\n"+endpointYAML("svc", b.URL))
		s := startServer(t, server.Options{ConfigPath: path, LogLevel: "debug"})
		code, _ := s.mustGet("/orchestrator/svc/x")
		require.Equal(t, http.StatusOK, code)
		code, _ = s.mustGet("/health/status")
		require.Equal(t, http.StatusOK, code)
		require.NoError(t, s.stop())
		assert.Empty(t, s.stderr.JSONLinesOf(t, "orchestrator.access"), "access lines with access_log false: got some; want none")
		assert.NotEmpty(t, s.stderr.JSONLinesOf(t, "orchestrator.admin"), "admin lines at debug: got none; want the log wired")
	})

	t.Run("logging.start_traces sends and logs one trace id", func(t *testing.T) {
		b, seen := obsHeaderBackend(t)
		path := testutil.ConfigFile(t, "logging:\n  start_traces: true\nendpoints:\n"+endpointYAML("svc", b.URL))
		s := startServer(t, server.Options{ConfigPath: path})
		code, _ := s.mustGet("/orchestrator/svc/x")
		require.Equal(t, http.StatusOK, code)
		up := obsRecv(t, seen)
		tp := up.Get("Traceparent")
		require.Regexp(t, regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`), tp, "upstream traceparent: got %q; want a new one", tp)

		incoming := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		code, _ = obsRequest(t, s, http.MethodGet, "/orchestrator/svc/y", http.Header{"Traceparent": {incoming}}, "")
		require.Equal(t, http.StatusOK, code)
		up2 := obsRecv(t, seen)
		assert.Equal(t, incoming, up2.Get("Traceparent"), "upstream traceparent: got %q; want the client's unchanged", up2.Get("Traceparent"))

		require.NoError(t, s.stop())
		lines := s.stderr.JSONLinesOf(t, "orchestrator.access")
		require.Len(t, lines, 2)
		assert.Equal(t, tp[3:35], lines[0]["trace_id"], "trace_id: got %v; want the trace id the backend saw", lines[0]["trace_id"])
		assert.Equal(t, incoming[3:35], lines[1]["trace_id"], "trace_id: got %v; want the incoming trace id", lines[1]["trace_id"])
	})
}

// TestObservabilitySecretsNeverLogged runs the server at debug level, drives
// admin routes with, without and with a wrong token, reloads the config
// (good and bad) and proxies requests carrying Authorization, X-API-Key and
// Cookie, then requires that no secret reached the output.
func TestObservabilitySecretsNeverLogged(t *testing.T) {
	const (
		adminToken  = "adm-7Qx2Lr9Vt4Kp"
		wrongToken  = "wrong-3Hs8Nd5Wc1"
		userBearer  = "user-bearer-6Fj2Mz"
		apiKey      = "api-key-8Rb4Gy"
		cookieValue = "cookie-1Tp7Xe"
		querySecret = "query-secret-5Un3Da"
	)
	basic := base64.StdEncoding.EncodeToString([]byte("admin:" + adminToken))
	secrets := []string{adminToken, wrongToken, userBearer, apiKey, cookieValue, querySecret, basic}

	b, seen := obsHeaderBackend(t)
	down := testutil.RefusedURL(t)
	config := func(extra string) string {
		return "admin:\n  token: " + adminToken + "\nlogging:\n  level: debug\nendpoints:\n" +
			endpointYAML("svc", b.URL, "health_check_path: /healthz") + endpointYAML("down", down) + extra
	}
	path := testutil.ConfigFile(t, config(""))
	s := startServer(t, server.Options{ConfigPath: path})
	auth := http.Header{"Authorization": {"Bearer " + adminToken}}

	// Admin routes without, with a wrong and with the right token.
	for _, hdr := range []http.Header{
		nil,
		{"Authorization": {"Bearer " + wrongToken}},
		{"Authorization": {"Basic " + basic}},
		{"Authorization": {adminToken}},
	} {
		code, body := obsRequest(t, s, http.MethodGet, "/health/status", hdr, "")
		obsRequireStatus(t, fmt.Sprintf("GET /health/status with %v", hdr), code, http.StatusUnauthorized, body)
	}
	code, body := obsRequest(t, s, http.MethodPost, "/circuit-breaker/trip/svc", http.Header{"Authorization": {"Bearer " + wrongToken}}, "")
	obsRequireStatus(t, "POST /circuit-breaker/trip with a wrong token", code, http.StatusUnauthorized, body)

	for _, step := range []struct {
		method, path, body string
		want               int
	}{
		{http.MethodGet, "/health/status", "", http.StatusOK},
		{http.MethodGet, "/health/endpoints", "", http.StatusOK},
		{http.MethodPost, "/health/check/svc", "", http.StatusOK},
		{http.MethodPost, "/registry/endpoints", fmt.Sprintf(`{"name":"api1","url":%q}`, b.URL), http.StatusCreated},
		{http.MethodGet, "/registry/endpoints/api1", "", http.StatusOK},
		{http.MethodGet, "/registry/endpoints/" + adminToken, "", http.StatusNotFound},
		{http.MethodGet, "/router/debug/" + adminToken + "/x", "", http.StatusOK},
		{http.MethodPost, "/circuit-breaker/trip/api1", "", http.StatusOK},
		{http.MethodPost, "/circuit-breaker/reset/api1", "", http.StatusOK},
		{http.MethodGet, "/config/status", "", http.StatusOK},
		{http.MethodGet, "/config/endpoints", "", http.StatusOK},
		{http.MethodPost, "/config/reload", "", http.StatusOK},
		{http.MethodPost, "/config/validate", config(""), http.StatusOK},
		{http.MethodDelete, "/registry/endpoints/api1", "", http.StatusNoContent},
		{http.MethodGet, "/metrics", "", http.StatusOK},
	} {
		code, body := obsRequest(t, s, step.method, step.path, auth, step.body)
		obsRequireStatus(t, step.method+" "+step.path, code, step.want, body)
		// (/router/debug echoes the path its caller chose; /metrics has no token.)
		if !strings.HasPrefix(step.path, "/router/debug/") && step.path != "/metrics" {
			assert.NotContains(t, body, adminToken, "%s %s body: got the admin token; want it never shown", step.method, step.path)
		}
	}

	// A rejected reload of a file that holds the token.
	testutil.ReplaceFile(t, path, config("  - name: broken\n    url: 5\n"))
	code, body = obsRequest(t, s, http.MethodPost, "/config/reload", auth, "")
	obsRequireStatus(t, "POST /config/reload of an invalid file", code, http.StatusBadRequest, body)
	assert.NotContains(t, body, adminToken, "rejected reload body: got the admin token; want it never shown")

	// Proxied requests carrying credentials reach the backend untouched.
	creds := http.Header{
		"Authorization": {"Bearer " + userBearer},
		"X-Api-Key":     {apiKey},
		"Cookie":        {"session=" + cookieValue},
	}
	code, body = obsRequest(t, s, http.MethodGet, "/orchestrator/svc/items?api_key="+querySecret, creds, "")
	obsRequireStatus(t, "proxied GET with credentials", code, http.StatusOK, body)
	up := obsRecv(t, seen)
	assert.Equal(t, "Bearer "+userBearer, up.Get("Authorization"), "upstream Authorization: got %q; want it untouched", up.Get("Authorization"))
	assert.Equal(t, apiKey, up.Get("X-Api-Key"), "upstream X-API-Key: got %q; want it untouched", up.Get("X-Api-Key"))
	assert.Equal(t, "session="+cookieValue, up.Get("Cookie"), "upstream Cookie: got %q; want it untouched", up.Get("Cookie"))
	// The admin token sent through the gateway never reaches the backend.
	code, body = obsRequest(t, s, http.MethodGet, "/orchestrator/svc/items", auth, "")
	obsRequireStatus(t, "proxied GET with the admin token", code, http.StatusOK, body)
	up = obsRecv(t, seen)
	assert.Empty(t, up.Values("Authorization"), "upstream Authorization with the admin token: got %q; want it removed", up.Values("Authorization"))
	// A failing upstream is logged by the router, with the credentials on the request.
	code, body = obsRequest(t, s, http.MethodGet, "/orchestrator/down/x?token="+querySecret, creds, "")
	obsRequireStatus(t, "proxied GET to a refused upstream", code, http.StatusBadGateway, body)

	require.NoError(t, s.stop()) // every line is written once Run has returned

	// Every path that logs was taken, at debug level.
	for _, name := range []string{"orchestrator.access", "orchestrator.admin", "orchestrator.config", "orchestrator.router", "orchestrator.health", "orchestrator.breaker"} {
		assert.NotEmpty(t, s.stderr.JSONLinesOf(t, name), "lines of %s: got none; want the scenario to log through it", name)
	}
	levels := map[string]int{}
	for _, l := range s.stderr.JSONLinesOf(t, "orchestrator.admin") {
		levels[fmt.Sprint(l["level"])]++
	}
	assert.Positive(t, levels["DEBUG"], "admin lines at DEBUG: got %v; want the reads logged at debug", levels)
	assert.Positive(t, levels["WARN"], "admin lines at WARN: got %v; want the refusals logged", levels)
	redacted := false
	for _, l := range s.stderr.JSONLinesOf(t, "orchestrator.admin") {
		redacted = redacted || strings.Contains(fmt.Sprint(l["path"]), "[redacted]")
	}
	assert.True(t, redacted, "admin lines: got no redacted path; want the token in a path replaced")

	out := s.stderr.String() + s.stdout.String()
	for _, secret := range secrets {
		assert.NotContains(t, out, secret, "server output: got secret %q; want it never logged. Output:\n%s", secret, out)
	}
}
