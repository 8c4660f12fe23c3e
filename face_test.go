package orchestrator_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

// faceQuiet is the logger of tests that do not look at logs.
func faceQuiet() orchestrator.Option {
	return orchestrator.WithLogger(slog.New(slog.DiscardHandler))
}

// faceNoProbes keeps health probes from running, so that they neither log
// nor race the test.
func faceNoProbes() orchestrator.Option {
	off := false
	return orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Enabled: &off})
}

// faceNew builds an Orchestrator closed when the test ends.
func faceNew(t *testing.T, opts ...orchestrator.Option) *orchestrator.Orchestrator {
	t.Helper()
	o, err := orchestrator.New(append([]orchestrator.Option{faceQuiet(), faceNoProbes()}, opts...)...)
	require.NoError(t, err, "New: got error %v; want none", err)
	t.Cleanup(func() { o.Close() })
	return o
}

// faceBackend is a loopback upstream that counts its requests and answers
// with its request URI.
func faceBackend(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "backend "+r.URL.RequestURI())
	}))
	t.Cleanup(s.Close)
	return s, &hits
}

func faceServe(h http.Handler, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec
}

// faceProblem decodes a problem document and checks the headers every
// gateway answer carries.
func faceProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, kind string) map[string]any {
	t.Helper()
	require.Equal(t, status, rec.Code, "status: got %d; want %d (body %q)", rec.Code, status, rec.Body.String())
	assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"), "Content-Type: got %q", rec.Header().Get("Content-Type"))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &doc), "body %q is not JSON", rec.Body.String())
	assert.Equal(t, "urn:orchestrator:problem:"+kind, doc["type"], "problem type: got %v; want kind %q", doc["type"], kind)
	assert.Equal(t, float64(status), doc["status"], "problem status: got %v; want %d", doc["status"], status)
	reqID := rec.Header().Get("X-Request-Id")
	assert.NotEmpty(t, reqID, "X-Request-Id: got none; want one")
	assert.Equal(t, reqID, doc["request_id"], "request_id: got %v; want the X-Request-Id %q", doc["request_id"], reqID)
	return doc
}

// TestFaceOptionErrorsMatchErrInvalid gives every Option that can refuse a
// value a bad one, and requires from New an error that matches ErrInvalid
// and names the option and the value.
func TestFaceOptionErrorsMatchErrInvalid(t *testing.T) {
	off := false
	tests := []struct {
		name    string
		opt     orchestrator.Option
		want    []string // substrings of the message
		section bool     // a *ValidationError with field errors is wrapped
	}{
		{"WithPrefix empty", orchestrator.WithPrefix(""), []string{`WithPrefix("")`}, false},
		{"WithPrefix space", orchestrator.WithPrefix("/a b"), []string{`WithPrefix("/a b")`}, false},
		{"WithPrefix relative", orchestrator.WithPrefix("api"), []string{`WithPrefix("api")`}, false},
		{"WithRegistry", orchestrator.WithRegistry(nil), []string{"WithRegistry(nil)"}, false},
		{"WithTransport", orchestrator.WithTransport(nil), []string{"WithTransport(nil)"}, false},
		{"WithProber", orchestrator.WithProber(nil), []string{"WithProber(nil)"}, false},
		{"WithLogger", orchestrator.WithLogger(nil), []string{"WithLogger(nil)"}, false},
		{"WithLoggerKey", orchestrator.WithLoggerKey(slog.MessageKey), []string{`WithLoggerKey("msg")`}, false},
		{"WithCircuitBreaker", orchestrator.WithCircuitBreaker(orchestrator.CircuitBreakerConfig{FailureThreshold: -1}),
			[]string{"WithCircuitBreaker(", `"failure_threshold":-1`, "circuit_breaker.failure_threshold"}, true},
		{"WithHealthCheck", orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Enabled: &off, Timeout: orchestrator.Duration(-time.Second)}),
			[]string{"WithHealthCheck(", `"timeout":-1`, "health_check.timeout"}, true},
		{"WithTrustedProxies", orchestrator.WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8"), netip.Prefix{}),
			[]string{"WithTrustedProxies(invalid Prefix)", "prefixes[1]"}, false},
		{"WithMaxBodyBytes", orchestrator.WithMaxBodyBytes(-1), []string{"WithMaxBodyBytes(-1)"}, false},
		{"WithMaxHeaderCount", orchestrator.WithMaxHeaderCount(-2), []string{"WithMaxHeaderCount(-2)"}, false},
		{"WithAllowedUpstreams", orchestrator.WithAllowedUpstreams("10.0.0.0/8", "169.254.0.0/33"), []string{`WithAllowedUpstreams("169.254.0.0/33")`}, false},
		{"WithHealthCheckConcurrency", orchestrator.WithHealthCheckConcurrency(0), []string{"WithHealthCheckConcurrency(0)"}, false},
		{"WithEndpoints", orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: "ftp://127.0.0.1:1"}),
			[]string{"WithEndpoints(", "endpoints[0].url", `"ftp://127.0.0.1:1"`}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := orchestrator.New(faceQuiet(), tt.opt)
			if o != nil {
				o.Close()
			}
			require.Error(t, err, "New(%s): got nil error; want one", tt.name)
			assert.True(t, errors.Is(err, orchestrator.ErrInvalid), "errors.Is(%q, ErrInvalid) = false; want true", err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w, "error %q: want it to contain %q", err, w)
			}
			var ve *orchestrator.ValidationError
			assert.Equal(t, tt.section, errors.As(err, &ve), "errors.As(%q, *ValidationError) = %v; want %v", err, !tt.section, tt.section)
		})
	}
}

// TestFaceWithPrefixAcceptsOnlyPathSafePrefixes refuses the empty prefix and
// every prefix a URL path would have to escape, and keeps the characters a
// path segment carries as they are.
func TestFaceWithPrefixAcceptsOnlyPathSafePrefixes(t *testing.T) {
	for _, p := range []string{"", "/a b", "/a%20b", "/caf\u00e9", "/a;b", "/a,b", "/a\tb", "/a//b", "//", "/a/./b", "/a/..", "/a?b", "/a#b", "a"} {
		o, err := orchestrator.New(faceQuiet(), orchestrator.WithPrefix(p))
		if o != nil {
			o.Close()
		}
		assert.ErrorIs(t, err, orchestrator.ErrInvalid, "New(WithPrefix(%q)): got %v; want ErrInvalid", p, err)
	}
	for p, want := range map[string]string{
		"/api/gw/":        "/api/gw",
		"/a-b_c.d~e":      "/a-b_c.d~e",
		"/a$b&c+d:e=f@g/": "/a$b&c+d:e=f@g",
	} {
		o := faceNew(t, orchestrator.WithPrefix(p))
		assert.Equal(t, want, o.Prefix(), "WithPrefix(%q).Prefix() = %q; want %q", p, o.Prefix(), want)
	}
}

// TestFaceWithPrefixSlashServesAtTheRoot: "/" is how to serve at the root
// (the empty prefix is refused), Prefix is then "", and every path is a
// route.
func TestFaceWithPrefixSlashServesAtTheRoot(t *testing.T) {
	_, err := orchestrator.New(faceQuiet(), orchestrator.WithPrefix(""))
	require.ErrorIs(t, err, orchestrator.ErrInvalid, `New(WithPrefix("")): got %v; want ErrInvalid (use "/")`, err)

	b, hits := faceBackend(t)
	o := faceNew(t, orchestrator.WithPrefix("/"), orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", Version: "v1", URL: b.URL + "/base"}))
	assert.Equal(t, "", o.Prefix(), `Prefix(): got %q; want "" at the root`, o.Prefix())

	rec := faceServe(o, "/svc/v1/x?q=1")
	assert.Equal(t, http.StatusOK, rec.Code, "GET /svc/v1/x: got %d; want 200 (body %q)", rec.Code, rec.Body.String())
	assert.Equal(t, "backend /base/x?q=1", rec.Body.String(), "GET /svc/v1/x: got body %q", rec.Body.String())
	faceProblem(t, faceServe(o, "/"), http.StatusNotFound, "no-route")
	faceProblem(t, faceServe(o, "/orchestrator/svc/v1/x"), http.StatusNotFound, "no-route")

	// Mounted the documented way, mux.Handle(o.Prefix()+"/", o).
	mux := http.NewServeMux()
	mux.Handle(o.Prefix()+"/", o)
	rec = faceServe(mux, "/svc/v1")
	assert.Equal(t, "backend /base", rec.Body.String(), "GET /svc/v1 through a mux: got %d %q", rec.Code, rec.Body.String())
	assert.Equal(t, int64(2), hits.Load(), "backend hits: got %d; want 2", hits.Load())
}

// TestFaceCloseAnswers503AfterFinishingRequestsInFlight holds a request at
// the backend while Close runs: it still completes, and every request
// after Close gets a 503 "gateway-closed" problem document, from ServeHTTP
// and from Middleware (whose other paths still reach next).
func TestFaceCloseAnswers503AfterFinishingRequestsInFlight(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	var hits atomic.Int64
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			<-release
		}
		io.WriteString(w, "done")
	}))
	t.Cleanup(b.Close)
	o, err := orchestrator.New(faceQuiet(), faceNoProbes(), orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: b.URL}))
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })

	inFlight := make(chan *httptest.ResponseRecorder, 1)
	go func() { inFlight <- faceServe(o, "/orchestrator/svc/slow") }()
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("the request never reached the backend")
	}
	require.NoError(t, o.Close(), "Close: want nil")
	require.NoError(t, o.Close(), "second Close: want nil (idempotent)")
	close(release)
	select {
	case rec := <-inFlight:
		assert.Equal(t, http.StatusOK, rec.Code, "in-flight request: got %d; want 200 (body %q)", rec.Code, rec.Body.String())
		assert.Equal(t, "done", rec.Body.String(), "in-flight request body: got %q; want done", rec.Body.String())
	case <-time.After(30 * time.Second):
		t.Fatal("the in-flight request never finished")
	}

	before := hits.Load()
	for _, target := range []string{"/orchestrator/svc/x", "/elsewhere"} {
		rec := faceServe(o, target)
		doc := faceProblem(t, rec, http.StatusServiceUnavailable, "gateway-closed")
		assert.Equal(t, target, doc["instance"], "instance: got %v; want %q", doc["instance"], target)
		assert.Equal(t, "close", rec.Header().Get("Connection"), "Connection: got %q; want close", rec.Header().Get("Connection"))
		assert.Empty(t, rec.Header().Get("Retry-After"), "Retry-After: got %q; want none (this instance does not come back)", rec.Header().Get("Retry-After"))
	}

	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app") })
	mw := o.Middleware(app)
	faceProblem(t, faceServe(mw, "/orchestrator/svc/x"), http.StatusServiceUnavailable, "gateway-closed")
	rec := faceServe(mw, "/home")
	assert.Equal(t, "app", rec.Body.String(), "Middleware, a path outside the prefix after Close: got %d %q; want the app's answer", rec.Code, rec.Body.String())
	assert.Equal(t, before, hits.Load(), "backend hits after Close: got %d more; want none", hits.Load()-before)
}

// TestFaceClosedGatewayRefusesChanges requires ErrClosed from every method
// that changes routes, and the registry untouched by them.
func TestFaceClosedGatewayRefusesChanges(t *testing.T) {
	b, _ := faceBackend(t)
	reg := orchestrator.NewMemoryRegistry()
	o, err := orchestrator.New(faceQuiet(), faceNoProbes(), orchestrator.WithRegistry(reg))
	require.NoError(t, err)
	ctx := context.Background()
	api, err := o.Register(ctx, orchestrator.Endpoint{Name: "api", URL: b.URL})
	require.NoError(t, err, "Register before Close")
	require.NoError(t, o.Close())

	ep := orchestrator.Endpoint{Name: "api", URL: b.URL + "/v2"}
	calls := map[string]func() error{
		"Register": func() error {
			_, err := o.Register(ctx, orchestrator.Endpoint{Name: "new", URL: b.URL})
			return err
		},
		"Update": func() error { _, err := o.Update(ctx, ep); return err },
		"UpdateIf": func() error {
			_, err := o.UpdateIf(ctx, ep, api.Revision)
			return err
		},
		"Deregister":   func() error { return o.Deregister(ctx, api.ID) },
		"DeregisterIf": func() error { return o.DeregisterIf(ctx, api.ID, api.Revision) },
		"Sync": func() error {
			return o.Sync(ctx, orchestrator.SourceConfig, []orchestrator.Endpoint{{Name: "cfg", URL: b.URL}})
		},
		"Apply": func() error {
			return o.Apply(ctx, orchestrator.Desired{Endpoints: []orchestrator.Endpoint{{Name: "cfg", URL: b.URL}}})
		},
		"Refresh": func() error { return o.Refresh(ctx) },
	}
	for name, call := range calls {
		err := call()
		assert.ErrorIs(t, err, orchestrator.ErrClosed, "%s after Close: got %v; want ErrClosed", name, err)
	}
	snap, err := reg.List(ctx)
	require.NoError(t, err)
	regs := snap.Registrations
	require.Len(t, regs, 1, "registry after the refused calls: got %d endpoints; want only api", len(regs))
	assert.Equal(t, api.Revision, regs[0].Revision, "api's revision: got %d; want %d (unchanged)", regs[0].Revision, api.Revision)
	assert.Equal(t, b.URL, regs[0].Endpoint.URL, "api's URL: got %q; want %q (unchanged)", regs[0].Endpoint.URL, b.URL)
}

// faceLog is a JSON log sink safe for the gateway's goroutines.
type faceLog struct{ testutil.LogBuffer }

func (l *faceLog) lines() []string { return strings.Split(strings.TrimSpace(l.String()), "\n") }

// TestFaceLoggerKeyKeepsOneLoggerKeyPerLine logs a router line and an
// access line through an embedder's logger that already carries
// "logger":"myapp". With WithLoggerKey the gateway names its components under
// another key (or none), and no raw line holds "logger" twice; by default, on
// a logger without one, each line holds the gateway's own exactly once. Raw
// lines are counted because encoding/json keeps the last of two keys.
func TestFaceLoggerKeyKeepsOneLoggerKeyPerLine(t *testing.T) {
	down := testutil.RefusedURL(t)
	tests := []struct {
		name       string
		tagged     bool // the embedder's logger carries "logger":"myapp"
		key        *string
		wantLogger string // the value of the one "logger" key
		wantKey    string // where the component goes; "" for nowhere
	}{
		{"component key", true, facePtr("component"), `"logger":"myapp"`, "component"},
		{"no key", true, facePtr(""), `"logger":"myapp"`, ""},
		{"default", false, nil, `"logger":"orchestrator.`, "logger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &faceLog{}
			l := slog.New(slog.NewJSONHandler(sink, &slog.HandlerOptions{Level: slog.LevelDebug}))
			if tt.tagged {
				l = l.With("logger", "myapp")
			}
			opts := []orchestrator.Option{orchestrator.WithLogger(l), faceNoProbes(), orchestrator.WithAccessLog(true),
				orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "down", URL: down})}
			if tt.key != nil {
				opts = append(opts, orchestrator.WithLoggerKey(*tt.key))
			}
			o, err := orchestrator.New(opts...)
			require.NoError(t, err)
			rec := faceServe(o, "/orchestrator/down/x")
			require.Equal(t, http.StatusBadGateway, rec.Code, "GET a refused upstream: got %d; want 502", rec.Code)
			require.NoError(t, o.Close())

			lines := sink.lines()
			require.GreaterOrEqual(t, len(lines), 2, "log: got %d lines; want a router line and an access line:\n%s", len(lines), strings.Join(lines, "\n"))
			components := map[string]bool{}
			for _, line := range lines {
				assert.Equal(t, 1, strings.Count(line, `"logger":`), "line %s: want exactly one \"logger\" key", line)
				assert.Contains(t, line, tt.wantLogger, "line %s: want %s", line, tt.wantLogger)
				var m map[string]any
				require.NoError(t, json.Unmarshal([]byte(line), &m), "line %q is not JSON", line)
				if tt.wantKey != "" {
					name, _ := m[tt.wantKey].(string)
					assert.True(t, strings.HasPrefix(name, "orchestrator."), "line %s: %q = %q; want the component's name", line, tt.wantKey, name)
					components[name] = true
				} else {
					assert.NotContains(t, line, `"orchestrator.`, "line %s: want no component name", line)
				}
			}
			if tt.wantKey != "" {
				assert.True(t, components["orchestrator.router"] && components["orchestrator.access"],
					"components logged: got %v; want orchestrator.router and orchestrator.access", components)
			}
		})
	}
}

func facePtr[T any](v T) *T { return &v }
