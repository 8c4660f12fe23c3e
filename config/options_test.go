package config_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/config"
)

// opQuiet keeps the gateway's logs out of the test output.
func opQuiet() orchestrator.Option {
	return orchestrator.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// opNew builds a gateway from opts and closes it with the test.
func opNew(t *testing.T, opts ...orchestrator.Option) *orchestrator.Orchestrator {
	t.Helper()
	o, err := orchestrator.New(append([]orchestrator.Option{opQuiet()}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })
	return o
}

// opBackend answers 500 on /fail, and otherwise echoes the
// X-Forwarded-For it received; it counts the requests that reach it.
func opBackend(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.Copy(io.Discard, r.Body)
		if strings.HasSuffix(r.URL.Path, "/fail") {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		io.WriteString(w, r.Header.Get("X-Forwarded-For"))
	}))
	t.Cleanup(b.Close)
	return b, &hits
}

// opServe sends one request through o as if from 10.1.2.3 and returns the
// recorded answer.
func opServe(o http.Handler, method, target string, body io.Reader, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, body)
	req.RemoteAddr = "10.1.2.3:4567"
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	o.ServeHTTP(rec, req)
	return rec
}

// TestOptionsApplyTheFileSettings: every gateway setting of the file
// reaches New through Options.
func TestOptionsApplyTheFileSettings(t *testing.T) {
	b, hits := opBackend(t)
	off := false
	cfg := &config.Config{
		Server: config.Server{
			Prefix:         "/gw",
			TrustedProxies: []string{"10.0.0.0/8"},
			MaxBodyBytes:   16,
			MaxHeaderCount: 20,
		},
		Registry:       config.Registry{AllowedUpstreams: []string{"169.254.169.254"}},
		Metrics:        config.Metrics{Labels: map[string]string{"gateway": "eu-1"}},
		CircuitBreaker: orchestrator.CircuitBreakerConfig{FailureThreshold: 1},
		HealthCheck:    orchestrator.HealthCheckConfig{Enabled: &off},
		Endpoints: []orchestrator.Endpoint{
			{Name: "svc", URL: b.URL, HealthCheckPath: "/health"},
			{Name: "other", URL: b.URL},
		},
	}
	o := opNew(t, cfg.Options()...)

	assert.Equal(t, "/gw", o.Prefix(), "server.prefix")
	var ids []string
	for _, ep := range o.Endpoints() {
		ids = append(ids, ep.ID)
		assert.Equal(t, orchestrator.SourceConfig, ep.Source, "%s: the file's endpoints are config-owned", ep.ID)
		assert.False(t, ep.Health.Active, "%s: health_check.enabled false reaches the gateway", ep.ID)
	}
	assert.ElementsMatch(t, []string{"svc", "other"}, ids, "endpoints")

	rec := opServe(o, http.MethodGet, "/gw/svc/x", nil, http.Header{"X-Forwarded-For": {"192.0.2.7"}})
	require.Equal(t, http.StatusOK, rec.Code, "body %q", rec.Body.String())
	assert.Equal(t, "192.0.2.7, 10.1.2.3", rec.Body.String(), "server.trusted_proxies: a trusted client's X-Forwarded-For is kept")

	rec = opServe(o, http.MethodPost, "/gw/svc/x", strings.NewReader(strings.Repeat("x", 17)), nil)
	assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code, "server.max_body_bytes")

	many := http.Header{}
	for i := range 21 {
		many.Set(fmt.Sprintf("X-H%d", i), "v")
	}
	rec = opServe(o, http.MethodGet, "/gw/svc/x", nil, many)
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, rec.Code, "server.max_header_count")

	before := hits.Load()
	assert.Equal(t, http.StatusInternalServerError, opServe(o, http.MethodGet, "/gw/other/fail", nil, nil).Code)
	assert.Equal(t, http.StatusServiceUnavailable, opServe(o, http.MethodGet, "/gw/other/fail", nil, nil).Code,
		"circuit_breaker.failure_threshold 1: one failure opens the breaker")
	assert.Equal(t, before+1, hits.Load(), "the open breaker keeps the second request from the backend")

	_, err := o.Register(t.Context(), orchestrator.Endpoint{Name: "metadata", URL: "http://169.254.169.254"})
	assert.NoError(t, err, "registry.allowed_upstreams lets an endpoint point at a listed address")

	var exposition strings.Builder
	o.WritePrometheus(&exposition)
	assert.Contains(t, exposition.String(), `orchestrator_registry_endpoints{gateway="eu-1",source="config"} 2`, "metrics.labels: every series carries the constant labels")
}

// TestOptionsOverrideOrder: Options set what they set whatever came
// before them, and options given after them win.
func TestOptionsOverrideOrder(t *testing.T) {
	cfg := &config.Config{Server: config.Server{Prefix: "/gw", MaxHeaderCount: 20}}
	o := opNew(t, append(cfg.Options(), orchestrator.WithPrefix("/later"))...)
	assert.Equal(t, "/later", o.Prefix(), "an option after Options wins")

	o = opNew(t, append([]orchestrator.Option{orchestrator.WithPrefix("/earlier")}, cfg.Options()...)...)
	assert.Equal(t, "/gw", o.Prefix(), "Options win over an option before them")

	// server.max_body_bytes is applied even when 0 (no limit), as the file
	// says, over an earlier WithMaxBodyBytes.
	b, _ := opBackend(t)
	cfg = &config.Config{Endpoints: []orchestrator.Endpoint{{Name: "svc", URL: b.URL}}}
	o = opNew(t, append([]orchestrator.Option{orchestrator.WithMaxBodyBytes(4)}, cfg.Options()...)...)
	rec := opServe(o, http.MethodPost, "/orchestrator/svc/x", strings.NewReader("0123456789"), nil)
	assert.Equal(t, http.StatusOK, rec.Code, "a file without max_body_bytes sets no limit")
	o = opNew(t, append(cfg.Options(), orchestrator.WithMaxBodyBytes(4))...)
	rec = opServe(o, http.MethodPost, "/orchestrator/svc/x", strings.NewReader("0123456789"), nil)
	assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code, "WithMaxBodyBytes after Options wins")

	// Endpoints add up with WithEndpoints, and clash with them as one set.
	o = opNew(t, append(cfg.Options(), orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "more", URL: b.URL}))...)
	assert.Len(t, o.Endpoints(), 2)
	_, err := orchestrator.New(append(cfg.Options(), opQuiet(), orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: b.URL}))...)
	assert.ErrorIs(t, err, orchestrator.ErrInvalid, "a WithEndpoints endpoint with the file's id")
}

// TestOptionsRefuseAnInvalidConfig: New fails on a nil or invalid Config,
// with an error that matches ErrInvalid and lists every problem, server
// settings New does not take included.
func TestOptionsRefuseAnInvalidConfig(t *testing.T) {
	var nilConfig *config.Config
	_, err := orchestrator.New(append(nilConfig.Options(), opQuiet())...)
	require.ErrorIs(t, err, orchestrator.ErrInvalid)
	assert.Contains(t, err.Error(), "nil *Config")

	bad := &config.Config{
		Server:  config.Server{Prefix: "/a b"},
		Logging: config.Logging{Level: "loud"},
	}
	_, err = orchestrator.New(append(bad.Options(), opQuiet())...)
	require.ErrorIs(t, err, orchestrator.ErrInvalid)
	var ve *orchestrator.ValidationError
	require.ErrorAs(t, err, &ve, "the field list stays reachable")
	var fields []string
	for _, fe := range ve.Errors {
		fields = append(fields, fe.Field)
	}
	assert.Equal(t, []string{"server.prefix", "logging.level"}, fields)
	assert.Contains(t, err.Error(), `"/a b"`)

	// A config file's server.prefix follows WithPrefix's rules.
	for _, p := range []string{"/a b", "api", "/a/../b", "/a?x"} {
		cfg := config.Config{Server: config.Server{Prefix: p}}
		assert.ErrorIs(t, cfg.Validate(), orchestrator.ErrInvalid, "Validate(server.prefix %q)", p)
	}
	assert.NoError(t, config.Config{Server: config.Server{Prefix: "/"}}.Validate(), `server.prefix "/" serves at the root`)
}

// TestDesired: Desired is the part of the file a reload applies.
func TestDesired(t *testing.T) {
	b, _ := opBackend(t)
	cfg := &config.Config{
		Server:         config.Server{Prefix: "/ignored-by-apply"},
		CircuitBreaker: orchestrator.CircuitBreakerConfig{FailureThreshold: 1},
		Endpoints:      []orchestrator.Endpoint{{Name: "svc", URL: b.URL}},
	}
	d := cfg.Desired()
	assert.Equal(t, orchestrator.Desired{CircuitBreaker: cfg.CircuitBreaker, HealthCheck: cfg.HealthCheck, Endpoints: cfg.Endpoints}, d)

	o := opNew(t, orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Enabled: new(bool)}))
	require.NoError(t, o.Apply(t.Context(), d))
	assert.Equal(t, http.StatusInternalServerError, opServe(o, http.MethodGet, "/orchestrator/svc/fail", nil, nil).Code)
	assert.Equal(t, http.StatusServiceUnavailable, opServe(o, http.MethodGet, "/orchestrator/svc/fail", nil, nil).Code,
		"the applied breaker default opens after one failure")
}
