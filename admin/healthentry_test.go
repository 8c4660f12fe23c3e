package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/admin"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

// seedHealthKeys are the fields of the original service's EndpointHealth
// model, in its order: issue 13 asks for them at the top of every
// endpoint's health entry.
var seedHealthKeys = []string{"endpoint_id", "last_check_time", "response_time", "error_message", "consecutive_failures", "consecutive_successes"}

// objectKeys returns the member names of the JSON object raw, in the order
// they are written.
func objectKeys(t *testing.T, raw []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	require.NoError(t, err)
	require.Equal(t, json.Delim('{'), tok, "got %s; want a JSON object", raw)
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		require.NoError(t, err)
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		require.NoError(t, dec.Decode(&skip))
	}
	return keys
}

// probedFixture is an admin API over one endpoint, svc, whose health probe
// fails while fail is set. Its scheduled probes run once, at registration.
type probedFixture struct {
	o    *orchestrator.Orchestrator
	h    *admin.Handler
	fail *atomic.Bool
}

func newProbedFixture(t *testing.T) *probedFixture {
	t.Helper()
	fail := &atomic.Bool{}
	o, err := orchestrator.New(
		orchestrator.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Interval: orchestrator.Duration(time.Hour)}),
		orchestrator.WithProber(orchestrator.ProberFunc(func(ctx context.Context, target orchestrator.ProbeTarget) error {
			if fail.Load() {
				return errors.New("upstream said no (test)")
			}
			return nil
		})),
		orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: "http://127.0.0.1:1", HealthCheckPath: "/health",
			Timeout:     orchestrator.Duration(2500 * time.Millisecond),
			HealthCheck: &orchestrator.HealthCheckConfig{Timeout: orchestrator.Duration(750 * time.Millisecond)}}),
	)
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })
	// Wait for the probe at registration, so that every later one is the
	// test's own.
	testutil.Eventually(t, 5*time.Second, "the first probe of svc", func() (bool, string) {
		v, err := o.Endpoint("svc")
		require.NoError(t, err)
		return v.LastCheckTime != nil, "no probe yet"
	})
	return &probedFixture{o: o, h: admin.New(o, admin.Options{}), fail: fail}
}

// entry fetches GET /health/endpoints/svc as raw JSON and as a map.
func (f *probedFixture) entry(t *testing.T) ([]byte, map[string]any) {
	t.Helper()
	rec := call(f.h, http.MethodGet, "/health/endpoints/svc", "")
	require.Equal(t, http.StatusOK, rec.Code, "body %s", rec.Body)
	raw := rec.Body.Bytes()
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	return raw, m
}

func (f *probedFixture) check(t *testing.T) {
	t.Helper()
	rec := call(f.h, http.MethodPost, "/health/check/svc", "")
	require.Equal(t, http.StatusOK, rec.Code, "POST /health/check/svc: body %s", rec.Body)
}

// Issue 13: the health entry leads with the seed's EndpointHealth fields,
// in the seed's names, order and types, and they follow the probes.
func TestHealthEntryLeadsWithTheSeedFields(t *testing.T) {
	f := newProbedFixture(t)

	t.Run("the keys come first, in the seed's order", func(t *testing.T) {
		raw, _ := f.entry(t)
		keys := objectKeys(t, raw)
		require.GreaterOrEqual(t, len(keys), len(seedHealthKeys), "keys: %v", keys)
		assert.Equal(t, seedHealthKeys, keys[:len(seedHealthKeys)], "leading keys of GET /health/endpoints/svc: got %v", keys)
		seen := map[string]bool{}
		for _, k := range keys {
			assert.False(t, seen[k], "key %q appears twice in %s", k, raw)
			seen[k] = true
		}
		assert.Contains(t, keys, "consecutive_request_failures", "the proxied-request counter keeps a name of its own")
	})

	t.Run("failed probes count up, with their error and time", func(t *testing.T) {
		f.fail.Store(true)
		before := time.Now().UTC()
		f.check(t)
		f.check(t)
		_, m := f.entry(t)
		assert.Equal(t, "svc", m["endpoint_id"], "endpoint_id")
		assert.Equal(t, "upstream said no (test)", m["error_message"], "error_message: got %#v", m["error_message"])
		assert.Equal(t, 2.0, m["consecutive_failures"], "consecutive_failures: got %#v; want 2 (probes, not requests)", m["consecutive_failures"])
		assert.Equal(t, 0.0, m["consecutive_successes"], "consecutive_successes: got %#v", m["consecutive_successes"])
		assert.Equal(t, 0.0, m["consecutive_request_failures"], "no request was proxied")
		rt, isNum := m["response_time"].(float64)
		assert.True(t, isNum && rt > 0 && rt < 5, "response_time: got %#v; want the probe's duration as a number of seconds", m["response_time"])
		s, isString := m["last_check_time"].(string)
		require.True(t, isString, "last_check_time: got %#v; want an RFC 3339 time", m["last_check_time"])
		at, err := time.Parse(time.RFC3339Nano, s)
		require.NoError(t, err, "last_check_time %q", s)
		assert.False(t, at.Before(before.Truncate(time.Second)), "last_check_time %v: want the last probe's, after %v", at, before)
		assert.Equal(t, m["last_health_check"], m["last_check_time"], "last_health_check and last_check_time name the same time")
	})

	t.Run("a passing probe resets them and clears the error to null", func(t *testing.T) {
		f.fail.Store(false)
		f.check(t)
		_, m := f.entry(t)
		v, present := m["error_message"]
		assert.True(t, present, "error_message: got no key; want null")
		assert.Nil(t, v, "error_message: got %#v; want null once a probe passed", v)
		assert.Equal(t, 0.0, m["consecutive_failures"], "consecutive_failures")
		assert.Equal(t, 1.0, m["consecutive_successes"], "consecutive_successes")
	})

	t.Run("every list route leads each entry with them", func(t *testing.T) {
		for _, path := range []string{"/health/endpoints", "/registry/endpoints"} {
			rec := call(f.h, http.MethodGet, path, "")
			require.Equal(t, http.StatusOK, rec.Code, "%s: body %s", path, rec.Body)
			var list struct {
				Endpoints []json.RawMessage `json:"endpoints"`
			}
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &list))
			require.Len(t, list.Endpoints, 1, "%s", path)
			keys := objectKeys(t, list.Endpoints[0])
			assert.Equal(t, seedHealthKeys, keys[:len(seedHealthKeys)], "%s: leading keys: got %v", path, keys)
		}
	})
}

// An endpoint that was never probed shows nulls and zeros, not made-up
// values.
func TestHealthEntryBeforeAnyProbe(t *testing.T) {
	f := newFixture(t) // orders has no health check
	rec := call(f.h, http.MethodGet, "/health/endpoints/orders", "")
	require.Equal(t, http.StatusOK, rec.Code, "body %s", rec.Body)
	var m map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &m))
	for _, k := range []string{"last_check_time", "error_message"} {
		v, present := m[k]
		assert.True(t, present && v == nil, "%s: got %#v (present %v); want null", k, v, present)
	}
	assert.Equal(t, "orders", m["endpoint_id"])
	assert.Equal(t, 0.0, m["response_time"], "response_time: got %#v; want the number 0", m["response_time"])
	assert.Equal(t, 0.0, m["consecutive_failures"])
	assert.Equal(t, 0.0, m["consecutive_successes"])
}

// Issue 13: every duration in admin JSON is a number of seconds.
func TestAdminDurationsAreSeconds(t *testing.T) {
	f := newProbedFixture(t)

	t.Run("in an endpoint's view", func(t *testing.T) {
		_, m := f.entry(t)
		config, _ := m["config"].(map[string]any)
		assert.Equal(t, 2.5, config["timeout"], "config.timeout: got %#v; want 2.5 (seconds)", config["timeout"])
		hc, _ := config["health_check"].(map[string]any)
		assert.Equal(t, 0.75, hc["timeout"], "config.health_check.timeout: got %#v; want 0.75", hc["timeout"])
		health, _ := m["health"].(map[string]any)
		_, isNum := health["response_time"].(float64)
		assert.True(t, isNum, "health.response_time: got %#v; want a number of seconds", health["response_time"])
		traffic, _ := m["traffic"].(map[string]any)
		assert.Equal(t, 0.0, traffic["latency_sum"], "traffic.latency_sum: got %#v; want the number 0", traffic["latency_sum"])
	})

	t.Run("in the config echo", func(t *testing.T) {
		rec := call(f.h, http.MethodGet, "/registry/endpoints/svc", "")
		require.Equal(t, http.StatusOK, rec.Code, "body %s", rec.Body)
		var m map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &m))
		config, _ := m["config"].(map[string]any)
		assert.Equal(t, 2.5, config["timeout"], "GET /registry/endpoints/svc config.timeout: got %#v; want 2.5", config["timeout"])
	})

	t.Run("in /health/status", func(t *testing.T) {
		before := time.Now()
		h := admin.New(f.o, admin.Options{})
		rec := call(h, http.MethodGet, "/health/status", "")
		most := time.Since(before).Seconds()
		require.Equal(t, http.StatusOK, rec.Code, "body %s", rec.Body)
		var m map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &m))
		up, isNum := m["uptime"].(float64)
		require.True(t, isNum, "uptime: got %#v; want a number of seconds", m["uptime"])
		// Rounded to the millisecond: up to half of one over.
		assert.True(t, up >= 0 && up <= most+0.0005, "uptime: got %v s; want at most the %v s since the handler was made", up, most)
		assert.Equal(t, float64(int64(up)), m["uptime_seconds"], "uptime_seconds: got %#v; want uptime's whole seconds (%v)", m["uptime_seconds"], up)
	})
}

// Issue 13: the admin request log writes response_time in seconds, as a
// number, as the access log does, not slog's integer nanoseconds.
func TestAdminRequestLogResponseTimeIsSeconds(t *testing.T) {
	f := newFixture(t)
	start := time.Now()
	call(f.h, http.MethodGet, "/health/summary", "")
	limit := time.Since(start).Seconds()
	var lines []map[string]any
	for _, l := range f.logs.JSONLinesOf(t, "orchestrator.admin") {
		if l["path"] == "/health/summary" {
			lines = append(lines, l)
		}
	}
	require.Len(t, lines, 1, "admin request lines for /health/summary: %v", f.logs.String())
	rt, isNum := lines[0]["response_time"].(float64)
	require.True(t, isNum, "response_time: got %#v; want a number of seconds", lines[0]["response_time"])
	assert.True(t, rt >= 0 && rt <= limit, "response_time: got %v; want seconds, between 0 and the %v s the call took", rt, limit)
}

// What GET answers, seconds included, PUT takes back unchanged: through
// the body check (internal/yamlconf, which reads numbers as float64) and
// encoding/json, every duration comes back to the nanosecond.
func TestDurationsSurviveGetThenPut(t *testing.T) {
	f := newFixture(t)
	post := `{"name":"pay","url":"` + f.backend.URL + `/pay","timeout":"1.56ms",` +
		`"circuit_breaker":{"reset_timeout":"1h0m0.000000001s"},"health_check":{"interval":"123456.123456789s","timeout":"1ns"}}`
	rec := call(f.h, http.MethodPost, "/registry/endpoints", post)
	require.Equal(t, http.StatusCreated, rec.Code, "POST: body %s", rec.Body)

	get := func() (orchestrator.Endpoint, json.RawMessage) {
		rec := call(f.h, http.MethodGet, "/registry/endpoints/pay", "")
		require.Equal(t, http.StatusOK, rec.Code, "GET: body %s", rec.Body)
		var v struct {
			Config json.RawMessage `json:"config"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v))
		var ep orchestrator.Endpoint
		require.NoError(t, json.Unmarshal(v.Config, &ep))
		return ep, v.Config
	}
	first, raw := get()
	assert.Contains(t, string(raw), `"timeout":0.00156`, "GET config: %s; want timeout in seconds", raw)
	assert.Contains(t, string(raw), `"interval":123456.123456789`, "GET config: %s", raw)

	rec = call(f.h, http.MethodPut, "/registry/endpoints/pay", string(raw))
	require.Equal(t, http.StatusOK, rec.Code, "PUT of the config GET answered: body %s", rec.Body)
	second, _ := get()
	assert.Equal(t, first, second, "config after GET then PUT: got %+v; want %+v", second, first)
	assert.Equal(t, 1560*time.Microsecond, second.Timeout.Std(), "timeout")
	require.NotNil(t, second.HealthCheck)
	assert.Equal(t, time.Duration(123456123456789), second.HealthCheck.Interval.Std(), "health_check.interval")
	assert.Equal(t, time.Nanosecond, second.HealthCheck.Timeout.Std(), "health_check.timeout")
	require.NotNil(t, second.CircuitBreaker)
	assert.Equal(t, time.Hour+1, second.CircuitBreaker.ResetTimeout.Std(), "circuit_breaker.reset_timeout")
}
