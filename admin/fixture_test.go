package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/admin"
	"github.com/orchestrator-go/orchestrator/config"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

// testToken is the admin token of token-mode fixtures. Tests assert that it
// never leaves the process.
const testToken = "s3cr3t-admin-token-6f1d9a"

// fixture is a real Orchestrator in front of a loopback backend, with the
// admin API on top. Everything it starts is closed when the test ends.
type fixture struct {
	o        *orchestrator.Orchestrator
	h        *admin.Handler
	backend  *httptest.Server
	conf     *fakeConfig
	logs     *testutil.LogBuffer
	draining *atomic.Bool
}

// newFixture builds a fixture whose config file holds three endpoints:
//
//	users_v1  /orchestrator/users/v1 -> backend/api, health-checked at /health
//	orders    /orchestrator/orders   -> backend/orders, no health check
//	legacy    /orchestrator/legacy   -> backend/legacy, circuit breaker disabled
//
// configure may change the options (set a token, drop the config manager).
func newFixture(t *testing.T, configure ...func(*admin.Options)) *fixture {
	t.Helper()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend %s %s", r.Method, r.URL.RequestURI())
	}))
	t.Cleanup(backend.Close)

	off := true
	cfg := config.Config{
		Admin: config.Admin{Token: testToken},
		Endpoints: []orchestrator.Endpoint{
			{Name: "users", Version: "v1", URL: backend.URL + "/api", HealthCheckPath: "/health"},
			{Name: "orders", URL: backend.URL + "/orders"},
			{Name: "legacy", URL: backend.URL + "/legacy", CircuitBreaker: &orchestrator.CircuitBreakerConfig{Disabled: &off}},
		},
	}
	o, err := orchestrator.New(
		orchestrator.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		// Probe once at registration, then not again during the test.
		orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Interval: orchestrator.Duration(time.Hour)}),
		orchestrator.WithEndpoints(cfg.Endpoints...),
	)
	require.NoError(t, err, "orchestrator.New")
	t.Cleanup(func() { o.Close() })

	f := &fixture{o: o, backend: backend, logs: &testutil.LogBuffer{}, draining: &atomic.Bool{}}
	loaded := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	f.conf = &fakeConfig{o: o, cfg: cfg, status: admin.ConfigStatus{
		Path: "/etc/orchestrator/config.yaml", Version: "9f86d081", LoadedAt: &loaded, Watching: true,
	}}
	opts := admin.Options{
		Config:   f.conf,
		Draining: f.draining.Load,
		Logger:   slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Version:  "1.2.3-test",
	}
	for _, c := range configure {
		c(&opts)
	}
	f.h = admin.New(o, opts)
	return f
}

// withToken configures the fixture's admin API with testToken.
func withToken(o *admin.Options) { o.Token = testToken }

// withoutConfig runs the admin API without a config file.
func withoutConfig(o *admin.Options) { o.Config = nil }

// fakeConfig is a hand-written admin.ConfigManager that applies its config
// to a real Orchestrator, as the reference server does.
type fakeConfig struct {
	o *orchestrator.Orchestrator

	mu        sync.Mutex
	cfg       config.Config
	next      *config.Config // what the "file" holds now; nil = unchanged
	reloadErr error          // returned by Reload instead of applying next
	// validateErr is returned by ValidateFile instead of parsing the file.
	validateErr error
	status      admin.ConfigStatus
}

func (f *fakeConfig) Status() admin.ConfigStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

func (f *fakeConfig) Reload(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now().UTC()
	if f.reloadErr != nil {
		msg := f.reloadErr.Error()
		f.status.LastError, f.status.LastErrorAt = &msg, &now
		return f.reloadErr
	}
	next := f.cfg
	if f.next != nil {
		next = *f.next
	}
	if err := f.o.Sync(ctx, orchestrator.SourceConfig, next.Endpoints); err != nil {
		return err
	}
	f.cfg = next
	f.status.ReloadCount++
	f.status.LoadedAt, f.status.LastError, f.status.LastErrorAt = &now, nil, nil
	return nil
}

func (f *fakeConfig) Sync(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.o.Sync(ctx, orchestrator.SourceConfig, f.cfg.Endpoints)
}

// ValidateFile parses the file at the status's path, as the reference
// server's manager does, or returns validateErr.
func (f *fakeConfig) ValidateFile(ctx context.Context) (*config.Config, error) {
	f.mu.Lock()
	path, err := f.status.Path, f.validateErr
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return config.Load(path)
}

func (f *fakeConfig) Config() config.Config {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg
}

func (f *fakeConfig) set(fn func(f *fakeConfig)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

var (
	_ admin.ConfigManager       = (*fakeConfig)(nil)
	_ admin.ConfigFileValidator = (*fakeConfig)(nil)
)

// reqOption changes a test request.
type reqOption func(*http.Request)

func remote(addr string) reqOption { return func(r *http.Request) { r.RemoteAddr = addr } }
func host(h string) reqOption      { return func(r *http.Request) { r.Host = h } }
func header(k, v string) reqOption { return func(r *http.Request) { r.Header.Add(k, v) } }
func bearer(tok string) reqOption  { return header("Authorization", "Bearer "+tok) }

// contentType sets the request's Content-Type, replacing call's default.
func contentType(v string) reqOption {
	return func(r *http.Request) { r.Header.Set("Content-Type", v) }
}

// noContentType sends the body without any Content-Type, as curl -T or a
// bare fetch may. The key stays, empty, so that call adds no default.
func noContentType(r *http.Request) { r.Header["Content-Type"] = []string{} }

// chunked sends the body with Transfer-Encoding: chunked, its length unknown.
func chunked(r *http.Request) { r.ContentLength, r.TransferEncoding = -1, []string{"chunked"} }

// call sends one request through h. By default it comes from a loopback
// client addressed to localhost, the only client a token-less admin API
// answers, and a body is labelled application/json, as the /docs page and
// any well-behaved client label it, unless an option sets Content-Type.
func call(h http.Handler, method, target, body string, opts ...reqOption) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	req.RemoteAddr = "127.0.0.1:51000"
	req.Host = "localhost:9000"
	for _, o := range opts {
		o(req)
	}
	if _, set := req.Header["Content-Type"]; body != "" && !set {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// requireProblem asserts that rec is a problem document of the kind and
// status, and returns it.
func requireProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, kind string) testutil.Problem {
	t.Helper()
	require.Equal(t, status, rec.Code, "status: got %d; want %d; body %s", rec.Code, status, rec.Body)
	require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"), "content type; body %s", rec.Body)
	var p testutil.Problem
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p), "problem body %s", rec.Body)
	require.Equal(t, "urn:orchestrator:problem:"+kind, p.Type, "problem type; body %s", rec.Body)
	require.Equal(t, status, p.Status, "problem status")
	require.NotEmpty(t, p.Title, "problem title")
	require.NotEmpty(t, p.Detail, "problem detail")
	require.NotEmpty(t, p.Instance, "problem instance")
	// Every admin problem names its request, as the X-Request-ID header does.
	require.NotEmpty(t, p.RequestID, "problem request_id; body %s", rec.Body)
	require.Equal(t, rec.Header().Get("X-Request-Id"), p.RequestID, "request_id: got %q; want the X-Request-ID header", p.RequestID)
	return p
}

// decode asserts a JSON success answer with the status and decodes it.
func decode[T any](t *testing.T, rec *httptest.ResponseRecorder, status int) T {
	t.Helper()
	require.Equal(t, status, rec.Code, "status: got %d; want %d; body %s", rec.Code, status, rec.Body)
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"), "content type")
	var v T
	dec := json.NewDecoder(rec.Body)
	require.NoError(t, dec.Decode(&v), "decoding the answer")
	return v
}

// endpointList is the list shape.
type endpointList struct {
	Endpoints []orchestrator.RegisteredEndpoint `json:"endpoints"`
	Count     int                               `json:"count"`
}

func (l endpointList) ids() []string {
	ids := []string{}
	for _, ep := range l.Endpoints {
		ids = append(ids, ep.ID)
	}
	return ids
}

// breakerView is one entry of the circuit-breaker routes.
type breakerView struct {
	ID                  string                    `json:"id"`
	State               orchestrator.BreakerState `json:"state"`
	ConsecutiveFailures int64                     `json:"consecutive_failures"`
	LastFailureTime     *time.Time                `json:"last_failure_time"`
}

type breakerList struct {
	Endpoints []breakerView `json:"endpoints"`
	Count     int           `json:"count"`
}

// proxied sends a request through the gateway itself.
func (f *fixture) proxied(t *testing.T, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	f.o.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

var errBoom = errors.New("boom")
