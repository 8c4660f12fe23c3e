package orchestrator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
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
// Helpers shared by health_test.go, breaker_test.go and fallback_test.go.
// Their names start with "pol" (policies) so that they never collide with the
// helpers of the package's other test files.
// ---------------------------------------------------------------------------

const (
	// polWait bounds every poll: generous, so that a loaded machine under
	// -race never fails a test that is merely slow.
	polWait = 10 * time.Second
	polTick = 2 * time.Millisecond
)

func polStacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

func polPtr[T any](v T) *T { return &v }

func polDuration(d time.Duration) orchestrator.Duration { return orchestrator.Duration(d) }

// polNew builds an Orchestrator that logs nowhere (a later WithLogger wins)
// and is closed when the test ends.
func polNew(t *testing.T, opts ...orchestrator.Option) *orchestrator.Orchestrator {
	t.Helper()
	all := append([]orchestrator.Option{orchestrator.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}, opts...)
	o, err := orchestrator.New(all...)
	require.NoError(t, err, "New: got error %v; want none", err)
	t.Cleanup(func() { o.Close() })
	return o
}

func polView(t *testing.T, o *orchestrator.Orchestrator, id string) orchestrator.RegisteredEndpoint {
	t.Helper()
	v, err := o.Endpoint(id)
	require.NoError(t, err, "Endpoint(%q): got error %v; want none", id, err)
	return v
}

// polWaitStatus polls until the endpoint's status is want.
func polWaitStatus(t *testing.T, o *orchestrator.Orchestrator, id string, want orchestrator.HealthStatus) orchestrator.RegisteredEndpoint {
	t.Helper()
	var v orchestrator.RegisteredEndpoint
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got, err := o.Endpoint(id)
		if !assert.NoError(c, err) {
			return
		}
		v = got
		assert.Equal(c, want, got.Status, "status of %s: got %q; want %q", id, got.Status, want)
	}, polWait, polTick)
	return v
}

// polWaitBreaker polls until the endpoint's breaker state is want.
func polWaitBreaker(t *testing.T, o *orchestrator.Orchestrator, id string, want orchestrator.BreakerState) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got, err := o.Endpoint(id)
		if !assert.NoError(c, err) {
			return
		}
		assert.Equal(c, want, got.CircuitBreakerState, "breaker of %s: got %q; want %q", id, got.CircuitBreakerState, want)
	}, polWait, polTick)
}

func polRequireBreaker(t *testing.T, o *orchestrator.Orchestrator, id string, want orchestrator.BreakerState) {
	t.Helper()
	got := polView(t, o, id).CircuitBreakerState
	require.Equal(t, want, got, "breaker of %s: got %q; want %q", id, got, want)
}

// polResponse is what a client got from the gateway.
type polResponse struct {
	Code   int
	Header http.Header
	Body   string
}

// polServe sends req straight to the handler: ServeHTTP has returned, so the
// breaker and counters have recorded the outcome, when polServe returns.
func polServe(h http.Handler, req *http.Request) polResponse {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	return polResponse{Code: res.StatusCode, Header: res.Header, Body: string(body)}
}

func polGet(h http.Handler, target string) polResponse {
	return polServe(h, httptest.NewRequest(http.MethodGet, target, nil))
}

func polRequireCode(t *testing.T, res polResponse, want int) {
	t.Helper()
	require.Equal(t, want, res.Code, "status: got %d; want %d (body %q)", res.Code, want, res.Body)
}

// polRequireProblem checks that res is a problem document with the status,
// kind (the end of its type URI) and endpoint id given, and returns it.
func polRequireProblem(t *testing.T, res polResponse, status int, kind, endpointID string) testutil.Problem {
	t.Helper()
	polRequireCode(t, res, status)
	ct := res.Header.Get("Content-Type")
	require.Equal(t, "application/problem+json", ct, "Content-Type: got %q; want application/problem+json", ct)
	var p testutil.Problem
	require.NoError(t, json.Unmarshal([]byte(res.Body), &p), "problem body %q is not JSON", res.Body)
	assert.Equal(t, status, p.Status, "problem status: got %d; want %d", p.Status, status)
	assert.Equal(t, "urn:orchestrator:problem:"+kind, p.Type, "problem type: got %q; want kind %q", p.Type, kind)
	assert.NotEmpty(t, p.Title, "problem title: got empty; want one")
	assert.Equal(t, endpointID, p.EndpointID, "problem endpoint_id: got %q; want %q", p.EndpointID, endpointID)
	reqID := res.Header.Get("X-Request-Id")
	assert.NotEmpty(t, reqID, "X-Request-Id: got none; want one")
	assert.Equal(t, reqID, p.RequestID, "problem request_id: got %q; want the X-Request-Id %q", p.RequestID, reqID)
	return p
}

// polRetryAfter returns the Retry-After header in seconds, failing the test
// when it is missing or not a positive integer.
func polRetryAfter(t *testing.T, res polResponse) int {
	t.Helper()
	raw := res.Header.Get("Retry-After")
	require.NotEmpty(t, raw, "Retry-After: got none; want a number of seconds")
	n, err := strconv.Atoi(raw)
	require.NoError(t, err, "Retry-After: got %q; want whole seconds", raw)
	require.Positive(t, n, "Retry-After: got %d; want > 0", n)
	return n
}

// polBackend is an upstream that counts the requests it serves and answers
// with its current status and, as body, the request URI it got.
type polBackend struct {
	*httptest.Server
	name   string
	hits   atomic.Int64
	status atomic.Int64
}

func newPolBackend(t *testing.T, name string, status int) *polBackend {
	t.Helper()
	b := &polBackend{name: name}
	b.status.Store(int64(status))
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		w.Header().Set("X-Backend", b.name)
		w.WriteHeader(int(b.status.Load()))
		io.WriteString(w, r.URL.RequestURI())
	}))
	t.Cleanup(b.Close)
	return b
}

func polRequireHits(t *testing.T, b *polBackend, want int64) {
	t.Helper()
	got := b.hits.Load()
	require.Equal(t, want, got, "requests that reached backend %s: got %d; want %d", b.name, got, want)
}

// polHangingBackend never answers a request until the request is cancelled
// (or the test ends); entered receives one value per request it got.
type polHangingBackend struct {
	*httptest.Server
	hits    atomic.Int64
	entered chan struct{}
	release chan struct{} // closing it makes every request answer 200
}

func newPolHangingBackend(t *testing.T) *polHangingBackend {
	t.Helper()
	b := &polHangingBackend{entered: make(chan struct{}, 100), release: make(chan struct{})}
	quit := make(chan struct{})
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		b.entered <- struct{}{}
		select {
		case <-b.release:
			io.WriteString(w, "released")
		case <-r.Context().Done():
		case <-quit:
		}
	}))
	t.Cleanup(b.Close)
	t.Cleanup(func() { close(quit) }) // runs first: no handler outlives the test
	return b
}

func (b *polHangingBackend) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-b.entered:
	case <-time.After(polWait):
		t.Fatalf("backend got no request within %v; want one", polWait)
	}
}

// newPolClosingUpstream listens on loopback and closes every connection as
// soon as it is accepted: a broken upstream. It returns the base URL and the
// number of connections accepted so far.
func newPolClosingUpstream(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var accepts atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepts.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return "http://" + ln.Addr().String(), &accepts
}

// polProber is a fake Prober: it records every call and fails while failing
// is set.
type polProber struct {
	failing atomic.Bool
	mu      sync.Mutex
	calls   []orchestrator.ProbeTarget
}

func (p *polProber) Probe(ctx context.Context, target orchestrator.ProbeTarget) error {
	p.mu.Lock()
	p.calls = append(p.calls, target)
	p.mu.Unlock()
	if p.failing.Load() {
		return errors.New("fake probe failure")
	}
	return nil
}

func (p *polProber) targets() []orchestrator.ProbeTarget {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

func (p *polProber) count(id string) int {
	n := 0
	for _, c := range p.targets() {
		if c.EndpointID == id {
			n++
		}
	}
	return n
}

func (p *polProber) ids() []string {
	var ids []string
	for _, c := range p.targets() {
		if !slices.Contains(ids, c.EndpointID) {
			ids = append(ids, c.EndpointID)
		}
	}
	slices.Sort(ids)
	return ids
}

func (p *polProber) waitCount(t *testing.T, id string, atLeast int) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got := p.count(id)
		assert.GreaterOrEqual(c, got, atLeast, "probes of %s: got %d; want at least %d", id, got, atLeast)
	}, polWait, polTick)
}

// polStepProber hands every probe to the test, which answers it: the test
// decides each result and nothing is probed while it thinks.
type polStepProber struct {
	calls chan polStepCall
}

type polStepCall struct {
	target orchestrator.ProbeTarget
	reply  chan error
}

func newPolStepProber() *polStepProber { return &polStepProber{calls: make(chan polStepCall)} }

func (p *polStepProber) Probe(ctx context.Context, target orchestrator.ProbeTarget) error {
	call := polStepCall{target: target, reply: make(chan error, 1)}
	select {
	case p.calls <- call:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-call.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *polStepProber) next(t *testing.T) polStepCall {
	t.Helper()
	select {
	case c := <-p.calls:
		return c
	case <-time.After(polWait):
		t.Fatalf("no probe within %v; want one", polWait)
		return polStepCall{}
	}
}

// answer answers the next probe with err and waits until the endpoint's view
// shows the counters that result should produce.
func (p *polStepProber) answer(t *testing.T, o *orchestrator.Orchestrator, id string, err error, wantSuccesses, wantFailures int) orchestrator.RegisteredEndpoint {
	t.Helper()
	call := p.next(t)
	require.Equal(t, id, call.target.EndpointID, "probed endpoint: got %q; want %q", call.target.EndpointID, id)
	call.reply <- err
	var v orchestrator.RegisteredEndpoint
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got, e := o.Endpoint(id)
		if !assert.NoError(c, e) {
			return
		}
		v = got
		assert.Equal(c, wantSuccesses, got.Health.ConsecutiveSuccesses, "consecutive successes: got %d; want %d", got.Health.ConsecutiveSuccesses, wantSuccesses)
		assert.Equal(c, wantFailures, got.Health.ConsecutiveFailures, "consecutive failures: got %d; want %d", got.Health.ConsecutiveFailures, wantFailures)
	}, polWait, polTick)
	return v
}

// polLogs records log records so that tests can read the breaker's state
// transitions without racing its reset timeout.
type polLogs struct {
	mu      sync.Mutex
	records []map[string]string
}

type polLogHandler struct {
	sink  *polLogs
	attrs []slog.Attr
}

func (h polLogHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h polLogHandler) Handle(_ context.Context, r slog.Record) error {
	rec := map[string]string{"message": r.Message}
	for _, a := range h.attrs {
		rec[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec[a.Key] = a.Value.String()
		return true
	})
	h.sink.mu.Lock()
	h.sink.records = append(h.sink.records, rec)
	h.sink.mu.Unlock()
	return nil
}

func (h polLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return polLogHandler{sink: h.sink, attrs: append(slices.Clone(h.attrs), as...)}
}

func (h polLogHandler) WithGroup(string) slog.Handler { return h }

func (l *polLogs) logger() *slog.Logger { return slog.New(polLogHandler{sink: l}) }

// transitions lists the endpoint's breaker transitions as "from->to".
func (l *polLogs) transitions(id string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.records {
		if r["message"] == "circuit breaker state changed" && r["endpoint_id"] == id {
			out = append(out, r["from"]+"->"+r["to"])
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Health checks
// ---------------------------------------------------------------------------

func TestHealthProber(t *testing.T) {
	t.Run("a custom prober is called right after registration with the upstream's scheme and host and the health check path", func(t *testing.T) {
		// Given a gateway whose probes are an hour apart, so that only the
		// probe made on registration can be seen
		p := &polProber{}
		o := polNew(t,
			orchestrator.WithProber(p),
			orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Interval: polDuration(time.Hour)}),
			orchestrator.WithEndpoints(orchestrator.Endpoint{
				Name: "users", Version: "v1", URL: "https://127.0.0.1:8443/api/v1", HealthCheckPath: "/healthz",
			}),
		)

		// Then the endpoint registered by New is probed at once
		p.waitCount(t, "users_v1", 1)
		got := p.targets()[0]
		assert.Equal(t, "users_v1", got.EndpointID, "probe EndpointID: got %q; want users_v1", got.EndpointID)
		assert.Equal(t, "https://127.0.0.1:8443/healthz", got.URL, "probe URL: got %q; want https://127.0.0.1:8443/healthz", got.URL)
		assert.Equal(t, "users", got.Endpoint.Name, "probe Endpoint.Name: got %q; want users", got.Endpoint.Name)
		v := polView(t, o, "users_v1")
		assert.True(t, v.Health.Active, "Health.Active: got false; want true")
		assert.Equal(t, "https://127.0.0.1:8443/healthz", v.Health.URL, "Health.URL: got %q; want the probe URL", v.Health.URL)

		// When another endpoint is registered at run time
		_, err := o.Register(context.Background(), orchestrator.Endpoint{
			Name: "orders", URL: "http://127.0.0.1:9000/base/path", HealthCheckPath: "/status/ready",
		})
		require.NoError(t, err)

		// Then it is probed at once too, not an interval later
		p.waitCount(t, "orders", 1)
		for _, c := range p.targets() {
			if c.EndpointID == "orders" {
				assert.Equal(t, "http://127.0.0.1:9000/status/ready", c.URL, "probe URL: got %q; want http://127.0.0.1:9000/status/ready", c.URL)
			}
		}
	})

	t.Run("endpoints with health checks off or disabled are never probed; a custom prober gets those without a health check path too", func(t *testing.T) {
		// Given four endpoints of which two should be probed, every 20ms
		p := &polProber{}
		polNew(t,
			orchestrator.WithProber(p),
			orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Interval: polDuration(20 * time.Millisecond)}),
			orchestrator.WithEndpoints(
				orchestrator.Endpoint{Name: "probed", URL: "http://127.0.0.1:9001", HealthCheckPath: "/health"},
				orchestrator.Endpoint{Name: "nopath", URL: "http://127.0.0.1:9002"},
				orchestrator.Endpoint{Name: "checksoff", URL: "http://127.0.0.1:9003", HealthCheckPath: "/health",
					HealthCheck: &orchestrator.HealthCheckConfig{Enabled: polPtr(false)}},
				orchestrator.Endpoint{Name: "off", URL: "http://127.0.0.1:9004", HealthCheckPath: "/health", Disabled: true},
			),
		)

		// When the probed ones have been probed three times (every endpoint
		// was due at the same moment, so the others would have been probed by now)
		p.waitCount(t, "probed", 3)
		p.waitCount(t, "nopath", 3)

		// Then no other endpoint was probed
		got := p.ids()
		assert.Equal(t, []string{"nopath", "probed"}, got, "probed endpoints: got %v; want only [nopath probed]", got)
	})

	t.Run("views tell which endpoints are actively checked", func(t *testing.T) {
		// The default prober: it checks only endpoints with a health check path
		o := polNew(t,
			orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Interval: polDuration(time.Hour)}),
			orchestrator.WithEndpoints(
				orchestrator.Endpoint{Name: "nopath", URL: "http://127.0.0.1:9002"},
				orchestrator.Endpoint{Name: "off", URL: "http://127.0.0.1:9004", HealthCheckPath: "/health", Disabled: true},
			),
		)
		nopath := polView(t, o, "nopath")
		assert.False(t, nopath.Health.Active, "nopath Health.Active: got true; want false")
		assert.Equal(t, orchestrator.StatusHealthy, nopath.Status, "nopath status (judged by its closed breaker): got %q; want healthy", nopath.Status)
		off := polView(t, o, "off")
		assert.False(t, off.Health.Active, "disabled Health.Active: got true; want false")
		assert.Equal(t, orchestrator.StatusDisabled, off.Status, "disabled status: got %q; want disabled", off.Status)
	})

	t.Run("a global health_check.enabled false turns probing off except where an endpoint turns it back on", func(t *testing.T) {
		p := &polProber{}
		polNew(t,
			orchestrator.WithProber(p),
			orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Enabled: polPtr(false), Interval: polDuration(20 * time.Millisecond)}),
			orchestrator.WithEndpoints(
				orchestrator.Endpoint{Name: "inherits", URL: "http://127.0.0.1:9001", HealthCheckPath: "/health"},
				orchestrator.Endpoint{Name: "optsin", URL: "http://127.0.0.1:9002", HealthCheckPath: "/health",
					HealthCheck: &orchestrator.HealthCheckConfig{Enabled: polPtr(true)}},
			),
		)
		p.waitCount(t, "optsin", 3)
		got := p.ids()
		assert.Equal(t, []string{"optsin"}, got, "probed endpoints: got %v; want only [optsin]", got)
	})
}

func TestHealthThresholds(t *testing.T) {
	const id = "svc"
	newGateway := func(t *testing.T, p orchestrator.Prober) *orchestrator.Orchestrator {
		return polNew(t,
			orchestrator.WithProber(p),
			orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{
				Interval:           polDuration(20 * time.Millisecond),
				Timeout:            polDuration(time.Minute), // the step prober waits for the test
				UnhealthyThreshold: 3,
				HealthyThreshold:   2,
			}),
			orchestrator.WithEndpoints(orchestrator.Endpoint{Name: id, URL: "http://127.0.0.1:9010", HealthCheckPath: "/health"}),
		)
	}
	failure := func(n int) error { return fmt.Errorf("probe failure %d", n) }

	t.Run("an endpoint is unknown until a probe answers and healthy after one good probe", func(t *testing.T) {
		p := newPolStepProber()
		o := newGateway(t, p)

		// Given the first probe has not answered yet
		call := p.next(t)
		v := polView(t, o, id)
		assert.Equal(t, orchestrator.StatusUnknown, v.Status, "status before any probe answered: got %q; want unknown", v.Status)
		assert.Nil(t, v.LastHealthCheck, "LastHealthCheck before any probe: got %v; want nil", v.LastHealthCheck)

		// When it succeeds
		call.reply <- nil

		// Then one good probe is enough to leave unknown
		v = polWaitStatus(t, o, id, orchestrator.StatusHealthy)
		assert.Equal(t, 1, v.Health.ConsecutiveSuccesses, "consecutive successes: got %d; want 1", v.Health.ConsecutiveSuccesses)
	})

	t.Run("a healthy endpoint turns unhealthy only after unhealthy_threshold consecutive failed probes", func(t *testing.T) {
		p := newPolStepProber()
		o := newGateway(t, p)
		p.answer(t, o, id, nil, 1, 0)

		// Two failures, then a success: the run of failures is broken
		for i := 1; i <= 2; i++ {
			v := p.answer(t, o, id, failure(i), 0, i)
			require.Equal(t, orchestrator.StatusHealthy, v.Status, "status after %d of 3 failures: got %q; want healthy", i, v.Status)
		}
		v := p.answer(t, o, id, nil, 1, 0)
		require.Equal(t, orchestrator.StatusHealthy, v.Status, "status after a good probe: got %q; want healthy", v.Status)

		// Three consecutive failures: the third turns it unhealthy
		for i := 1; i <= 2; i++ {
			v := p.answer(t, o, id, failure(i), 0, i)
			require.Equal(t, orchestrator.StatusHealthy, v.Status, "status after %d of 3 consecutive failures: got %q; want healthy", i, v.Status)
		}
		v = p.answer(t, o, id, failure(3), 0, 3)
		assert.Equal(t, orchestrator.StatusUnhealthy, v.Status, "status after 3 consecutive failures: got %q; want unhealthy", v.Status)
		assert.Equal(t, "probe failure 3", v.Health.LastError, "last error: got %q; want %q", v.Health.LastError, "probe failure 3")
	})

	t.Run("an unhealthy endpoint turns healthy again only after healthy_threshold consecutive good probes", func(t *testing.T) {
		p := newPolStepProber()
		o := newGateway(t, p)
		for i := 1; i <= 3; i++ {
			p.answer(t, o, id, failure(i), 0, i)
		}
		polWaitStatus(t, o, id, orchestrator.StatusUnhealthy)

		// One good probe, then a failure: not enough
		v := p.answer(t, o, id, nil, 1, 0)
		require.Equal(t, orchestrator.StatusUnhealthy, v.Status, "status after 1 of 2 good probes: got %q; want unhealthy", v.Status)
		v = p.answer(t, o, id, failure(4), 0, 1)
		require.Equal(t, orchestrator.StatusUnhealthy, v.Status, "status after a failure: got %q; want unhealthy", v.Status)

		// Two consecutive good probes: healthy
		v = p.answer(t, o, id, nil, 1, 0)
		require.Equal(t, orchestrator.StatusUnhealthy, v.Status, "status after 1 of 2 good probes: got %q; want unhealthy", v.Status)
		v = p.answer(t, o, id, nil, 2, 0)
		assert.Equal(t, orchestrator.StatusHealthy, v.Status, "status after 2 consecutive good probes: got %q; want healthy", v.Status)
		assert.Empty(t, v.Health.LastError, "last error after a good probe: got %q; want it cleared", v.Health.LastError)
	})

	t.Run("the view records the last check, its response time and the last error", func(t *testing.T) {
		p := newPolStepProber()
		o := newGateway(t, p)
		start := time.Now()

		// Given a probe that takes a while to answer
		call := p.next(t)
		<-time.After(5 * time.Millisecond) // the probe's work, not synchronisation
		call.reply <- failure(1)

		// Then its start, duration and error are recorded
		var v orchestrator.RegisteredEndpoint
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			v, _ = o.Endpoint(id)
			assert.Equal(c, 1, v.Health.ConsecutiveFailures)
			assert.NotNil(c, v.Health.NextCheck) // set just after the result is recorded
		}, polWait, polTick)
		require.NotNil(t, v.LastHealthCheck, "LastHealthCheck: got nil; want the time of the probe")
		assert.False(t, v.LastHealthCheck.Before(start.Add(-time.Second)), "LastHealthCheck: got %v; want after %v", v.LastHealthCheck, start)
		assert.False(t, v.LastHealthCheck.After(time.Now()), "LastHealthCheck: got %v; want not in the future", v.LastHealthCheck)
		assert.GreaterOrEqual(t, v.ResponseTime.Std(), 5*time.Millisecond, "ResponseTime: got %v; want at least 5ms", v.ResponseTime)
		assert.Equal(t, v.ResponseTime, v.Health.ResponseTime, "Health.ResponseTime: got %v; want %v", v.Health.ResponseTime, v.ResponseTime)
		assert.Equal(t, "probe failure 1", v.Health.LastError, "last error: got %q; want %q", v.Health.LastError, "probe failure 1")
		assert.Equal(t, 0, v.Health.ConsecutiveSuccesses, "consecutive successes: got %d; want 0", v.Health.ConsecutiveSuccesses)
		assert.True(t, v.Health.NextCheck.After(*v.LastHealthCheck), "NextCheck: got %v; want after the last check %v", v.Health.NextCheck, v.LastHealthCheck)

		// When the next probe succeeds, the last check moves on
		first := *v.LastHealthCheck
		v = p.answer(t, o, id, nil, 1, 0)
		require.NotNil(t, v.LastHealthCheck)
		assert.True(t, v.LastHealthCheck.After(first), "LastHealthCheck: got %v; want after the previous %v", v.LastHealthCheck, first)
		assert.Empty(t, v.Health.LastError, "last error after a good probe: got %q; want empty", v.Health.LastError)
	})

	t.Run("a probe's context is cancelled once health_check.timeout has passed", func(t *testing.T) {
		type outcome struct {
			err         error
			hasDeadline bool
			budget      time.Duration // deadline - entry
			waited      time.Duration
		}
		outcomes := make(chan outcome, 10)
		prober := orchestrator.ProberFunc(func(ctx context.Context, _ orchestrator.ProbeTarget) error {
			entered := time.Now()
			deadline, ok := ctx.Deadline()
			<-ctx.Done()
			outcomes <- outcome{err: ctx.Err(), hasDeadline: ok, budget: deadline.Sub(entered), waited: time.Since(entered)}
			return ctx.Err()
		})
		o := polNew(t,
			orchestrator.WithProber(prober),
			orchestrator.WithEndpoints(orchestrator.Endpoint{
				Name: id, URL: "http://127.0.0.1:9010", HealthCheckPath: "/health",
				HealthCheck: &orchestrator.HealthCheckConfig{
					Interval: polDuration(time.Hour), Timeout: polDuration(50 * time.Millisecond), UnhealthyThreshold: 1,
				},
			}),
		)

		var got outcome
		select {
		case got = <-outcomes:
		case <-time.After(polWait):
			t.Fatalf("the blocking probe was not cancelled within %v; want cancelled after 50ms", polWait)
		}
		assert.ErrorIs(t, got.err, context.DeadlineExceeded, "probe context error: got %v; want deadline exceeded", got.err)
		assert.True(t, got.hasDeadline, "probe context: got no deadline; want one")
		assert.LessOrEqual(t, got.budget, 50*time.Millisecond, "probe deadline: got %v after the call; want at most 50ms", got.budget)
		assert.Less(t, got.waited, 5*time.Second, "probe cancelled after %v; want about 50ms, not the 10s default", got.waited)

		v := polWaitStatus(t, o, id, orchestrator.StatusUnhealthy)
		assert.Contains(t, v.Health.LastError, "deadline exceeded", "last error: got %q; want a deadline error", v.Health.LastError)
	})
}

func TestUnhealthyEndpointFailsFast(t *testing.T) {
	// Given an endpoint whose probes fail, checked every 20ms
	backend := newPolBackend(t, "svc", http.StatusOK)
	p := &polProber{}
	p.failing.Store(true)
	o := polNew(t,
		orchestrator.WithProber(p),
		orchestrator.WithEndpoints(orchestrator.Endpoint{
			Name: "svc", Version: "v1", URL: backend.URL, HealthCheckPath: "/health",
			HealthCheck: &orchestrator.HealthCheckConfig{
				Interval: polDuration(20 * time.Millisecond), UnhealthyThreshold: 2, HealthyThreshold: 2,
			},
		}),
	)
	polWaitStatus(t, o, "svc_v1", orchestrator.StatusUnhealthy)

	// When a request arrives
	res := polGet(o, "/orchestrator/svc/v1/items")

	// Then it gets 503 at once and the backend never sees it
	polRequireProblem(t, res, http.StatusServiceUnavailable, "endpoint-unhealthy", "svc_v1")
	polRetryAfter(t, res)
	polRequireHits(t, backend, 0)

	// When the probes pass again
	p.failing.Store(false)
	polWaitStatus(t, o, "svc_v1", orchestrator.StatusHealthy)

	// Then requests reach the backend again
	res = polGet(o, "/orchestrator/svc/v1/items")
	polRequireCode(t, res, http.StatusOK)
	assert.Equal(t, "/items", res.Body, "backend saw: got %q; want /items", res.Body)
	polRequireHits(t, backend, 1)
}

func TestHTTPProber(t *testing.T) {
	var redirectTargetHits atomic.Int64
	var mu sync.Mutex
	var paths []string
	mux := http.NewServeMux()
	status := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }
	}
	mux.Handle("/ok", status(http.StatusOK))
	mux.Handle("/no-content", status(http.StatusNoContent))
	mux.Handle("/not-modified", status(http.StatusNotModified))
	mux.Handle("/not-found", status(http.StatusNotFound))
	mux.Handle("/error", status(http.StatusInternalServerError))
	mux.Handle("/unavailable", status(http.StatusServiceUnavailable))
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/redirect-target", http.StatusFound)
	})
	mux.HandleFunc("/redirect-target", func(w http.ResponseWriter, r *http.Request) {
		redirectTargetHits.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	t.Run("2xx and 3xx are healthy, other statuses are not, and redirects are not followed", func(t *testing.T) {
		cases := []struct {
			path    string
			healthy bool
		}{
			{"/ok", true},
			{"/no-content", true},
			{"/not-modified", true},
			{"/moved", true},
			{"/not-found", false},
			{"/error", false},
			{"/unavailable", false},
		}
		prober := &orchestrator.HTTPProber{}
		for _, tc := range cases {
			err := prober.Probe(context.Background(), orchestrator.ProbeTarget{EndpointID: "x", URL: srv.URL + tc.path})
			if tc.healthy {
				assert.NoError(t, err, "probe of %s: got %v; want healthy", tc.path, err)
			} else {
				assert.Error(t, err, "probe of %s: got healthy; want an error", tc.path)
			}
		}
		assert.Zero(t, redirectTargetHits.Load(), "redirect target hits: got %d; want 0 (redirects are not followed)", redirectTargetHits.Load())
	})

	t.Run("an upstream that drops the connection is unhealthy", func(t *testing.T) {
		url, _ := newPolClosingUpstream(t)
		err := (&orchestrator.HTTPProber{}).Probe(context.Background(), orchestrator.ProbeTarget{URL: url + "/health"})
		assert.Error(t, err, "probe of a broken upstream: got healthy; want an error")
	})

	t.Run("the gateway probes with it by default", func(t *testing.T) {
		// Given endpoints whose health paths answer 200, 500 and a redirect to a 500
		hc := &orchestrator.HealthCheckConfig{Interval: polDuration(time.Hour), UnhealthyThreshold: 1}
		o := polNew(t, orchestrator.WithEndpoints(
			orchestrator.Endpoint{Name: "good", URL: srv.URL + "/api/v1", HealthCheckPath: "/ok", HealthCheck: hc},
			orchestrator.Endpoint{Name: "bad", URL: srv.URL + "/api/v1", HealthCheckPath: "/error", HealthCheck: hc},
			orchestrator.Endpoint{Name: "moved", URL: srv.URL + "/api/v1", HealthCheckPath: "/moved", HealthCheck: hc},
		))

		// Then each gets the status its probe earns
		polWaitStatus(t, o, "good", orchestrator.StatusHealthy)
		polWaitStatus(t, o, "bad", orchestrator.StatusUnhealthy)
		polWaitStatus(t, o, "moved", orchestrator.StatusHealthy)
		assert.Zero(t, redirectTargetHits.Load(), "redirect target hits: got %d; want 0 (redirects are not followed)", redirectTargetHits.Load())

		// And the health path is probed on the upstream's host, not under its base path
		mu.Lock()
		got := slices.Clone(paths)
		mu.Unlock()
		assert.Contains(t, got, "/ok", "paths probed: got %v; want /ok", got)
		assert.NotContains(t, got, "/api/v1/ok", "paths probed: got %v; want none under the base path", got)
	})
}

func TestHealthCheckConcurrency(t *testing.T) {
	// Given 20 endpoints checked every 20ms with at most 2 probes at once,
	// and a prober that notes how many of its calls overlap
	const endpoints = 20
	var cur, peak atomic.Int64
	secondStarted := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	counts := make(map[string]int)
	prober := orchestrator.ProberFunc(func(ctx context.Context, target orchestrator.ProbeTarget) error {
		n := cur.Add(1)
		defer cur.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		if n >= 2 {
			once.Do(func() { close(secondStarted) })
		}
		// The first probe waits until a second one runs beside it (which
		// only bounded-but-concurrent probing allows), then every probe
		// takes a moment, as a real one would.
		select {
		case <-secondStarted:
		case <-ctx.Done():
		}
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
		}
		mu.Lock()
		counts[target.EndpointID]++
		mu.Unlock()
		return nil
	})
	var eps []orchestrator.Endpoint
	for i := range endpoints {
		eps = append(eps, orchestrator.Endpoint{Name: fmt.Sprintf("svc%02d", i), URL: "http://127.0.0.1:9020", HealthCheckPath: "/health"})
	}
	polNew(t,
		orchestrator.WithProber(prober),
		orchestrator.WithHealthCheckConcurrency(2),
		orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Interval: polDuration(20 * time.Millisecond), Timeout: polDuration(polWait)}),
		orchestrator.WithEndpoints(eps...),
	)

	// When every endpoint has been probed three times
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		mu.Lock()
		defer mu.Unlock()
		assert.Len(c, counts, endpoints, "endpoints probed: got %d; want %d", len(counts), endpoints)
		for id, n := range counts {
			assert.GreaterOrEqual(c, n, 3, "probes of %s: got %d; want at least 3", id, n)
		}
	}, polWait, polTick)

	// Then probes overlapped, but never more than two at once
	got := peak.Load()
	assert.LessOrEqual(t, got, int64(2), "most concurrent probes: got %d; want at most 2", got)
	assert.GreaterOrEqual(t, got, int64(2), "most concurrent probes: got %d; want 2 (probes run concurrently)", got)
}

func TestCloseStopsHealthChecks(t *testing.T) {
	// Given a gateway probing two endpoints every 10ms and a third whose
	// probe hangs until it is cancelled
	before := runtime.NumGoroutine()
	var calls atomic.Int64
	hanging := make(chan struct{}, 1)
	prober := orchestrator.ProberFunc(func(ctx context.Context, target orchestrator.ProbeTarget) error {
		calls.Add(1)
		if target.EndpointID == "hangs" {
			select {
			case hanging <- struct{}{}:
			default:
			}
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	})
	hc := &orchestrator.HealthCheckConfig{Interval: polDuration(10 * time.Millisecond), Timeout: polDuration(time.Hour)}
	o, err := orchestrator.New(
		orchestrator.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		orchestrator.WithProber(prober),
		orchestrator.WithEndpoints(
			orchestrator.Endpoint{Name: "a", URL: "http://127.0.0.1:9030", HealthCheckPath: "/health", HealthCheck: hc},
			orchestrator.Endpoint{Name: "b", URL: "http://127.0.0.1:9031", HealthCheckPath: "/health", HealthCheck: hc},
			orchestrator.Endpoint{Name: "hangs", URL: "http://127.0.0.1:9032", HealthCheckPath: "/health", HealthCheck: hc},
		),
	)
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })
	require.Eventually(t, func() bool { return calls.Load() >= 6 }, polWait, polTick, "probes before Close: got %d; want at least 6", calls.Load())
	select {
	case <-hanging:
	case <-time.After(polWait):
		t.Fatal("the hanging probe never started")
	}

	// When the gateway is closed
	closed := make(chan error, 1)
	go func() { closed <- o.Close() }()
	select {
	case err := <-closed:
		require.NoError(t, err, "Close: got %v; want nil", err)
	case <-time.After(polWait):
		t.Fatalf("Close did not return within %v while a probe hung; want it to cancel the probe", polWait)
	}

	// Then the prober is never called again
	n := calls.Load()
	require.Never(t, func() bool { return calls.Load() != n }, 200*time.Millisecond, 10*time.Millisecond,
		"prober called after Close; want no calls")

	// And every goroutine the gateway started is gone. The count is polled
	// here, not through require.Eventually, which runs its condition on a
	// goroutine of its own.
	deadline := time.Now().Add(polWait)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		<-time.After(10 * time.Millisecond)
	}
	got := runtime.NumGoroutine()
	require.LessOrEqual(t, got, before, "goroutines after Close: got %d; want at most %d\n%s", got, before, polStacks())

	// And closing again is harmless
	assert.NoError(t, o.Close(), "second Close: want nil")
}

func TestCheckHealth(t *testing.T) {
	// Given an endpoint probed once an hour (so only CheckHealth probes it)
	p := &polProber{}
	o := polNew(t,
		orchestrator.WithProber(p),
		orchestrator.WithEndpoints(
			orchestrator.Endpoint{Name: "svc", URL: "http://127.0.0.1:9040", HealthCheckPath: "/health",
				HealthCheck: &orchestrator.HealthCheckConfig{Interval: polDuration(time.Hour), UnhealthyThreshold: 1}},
			orchestrator.Endpoint{Name: "checksoff", URL: "http://127.0.0.1:9041", HealthCheckPath: "/health",
				HealthCheck: &orchestrator.HealthCheckConfig{Enabled: polPtr(false)}},
		),
	)
	p.waitCount(t, "svc", 1) // the probe made on registration
	polWaitStatus(t, o, "svc", orchestrator.StatusHealthy)

	t.Run("it probes now and returns the resulting view", func(t *testing.T) {
		p.failing.Store(true)
		v, err := o.CheckHealth(context.Background(), "svc")
		require.NoError(t, err)
		got := p.count("svc")
		assert.Equal(t, 2, got, "probes: got %d; want 2 (registration + CheckHealth)", got)
		assert.Equal(t, orchestrator.StatusUnhealthy, v.Status, "status: got %q; want unhealthy", v.Status)
		assert.Equal(t, "fake probe failure", v.Health.LastError, "last error: got %q; want the probe's error", v.Health.LastError)

		p.failing.Store(false)
		v, err = o.CheckHealth(context.Background(), "svc")
		require.NoError(t, err)
		assert.Equal(t, 1, v.Health.ConsecutiveSuccesses, "consecutive successes: got %d; want 1", v.Health.ConsecutiveSuccesses)
	})

	t.Run("an endpoint with health checks off is not probed", func(t *testing.T) {
		v, err := o.CheckHealth(context.Background(), "checksoff")
		require.NoError(t, err)
		assert.Zero(t, p.count("checksoff"), "probes of checksoff: got %d; want 0", p.count("checksoff"))
		assert.False(t, v.Health.Active, "Health.Active: got true; want false")
	})

	t.Run("an unknown id is ErrNotFound", func(t *testing.T) {
		_, err := o.CheckHealth(context.Background(), "nope")
		assert.ErrorIs(t, err, orchestrator.ErrNotFound, "CheckHealth(nope): got %v; want ErrNotFound", err)
	})
}

func TestHealthConfigChanges(t *testing.T) {
	t.Run("a new health check interval takes effect at once", func(t *testing.T) {
		// Given an API endpoint probed once an hour, probed once already
		p := &polProber{}
		o := polNew(t, orchestrator.WithProber(p))
		ep := orchestrator.Endpoint{Name: "svc", URL: "http://127.0.0.1:9050", HealthCheckPath: "/health",
			HealthCheck: &orchestrator.HealthCheckConfig{Interval: polDuration(time.Hour)}}
		_, err := o.Register(context.Background(), ep)
		require.NoError(t, err)
		p.waitCount(t, "svc", 1)

		// When its interval becomes 20ms
		ep.HealthCheck = &orchestrator.HealthCheckConfig{Interval: polDuration(20 * time.Millisecond)}
		_, err = o.Update(context.Background(), ep)
		require.NoError(t, err)

		// Then it is probed every 20ms from now on, not an hour from now
		p.waitCount(t, "svc", 5)
	})

	t.Run("a config change during a probe does not start a second probe of the endpoint beside it", func(t *testing.T) {
		// Given an endpoint whose first probe hangs until released
		var cur, overlaps atomic.Int64
		started := make(chan struct{}, 10)
		release := make(chan struct{})
		prober := orchestrator.ProberFunc(func(ctx context.Context, _ orchestrator.ProbeTarget) error {
			if cur.Add(1) > 1 {
				overlaps.Add(1)
			}
			defer cur.Add(-1)
			started <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		})
		o := polNew(t, orchestrator.WithProber(prober))
		ep := orchestrator.Endpoint{Name: "svc", URL: "http://127.0.0.1:9051", HealthCheckPath: "/health",
			HealthCheck: &orchestrator.HealthCheckConfig{Interval: polDuration(time.Hour), Timeout: polDuration(time.Minute)}}
		_, err := o.Register(context.Background(), ep)
		require.NoError(t, err)
		select {
		case <-started:
		case <-time.After(polWait):
			t.Fatal("the endpoint was never probed")
		}

		// When its health check config changes while that probe runs
		ep.HealthCheck = &orchestrator.HealthCheckConfig{Interval: polDuration(time.Hour), Timeout: polDuration(2 * time.Minute)}
		_, err = o.Update(context.Background(), ep)
		require.NoError(t, err)

		// Then no second probe starts until the first has ended
		require.Never(t, func() bool { return len(started) > 0 }, 100*time.Millisecond, 2*time.Millisecond,
			"a second probe started while the first was running; want it to wait")
		close(release)

		// And then the new config is probed
		select {
		case <-started:
		case <-time.After(polWait):
			t.Fatal("the endpoint was not probed after its config changed")
		}
		assert.Zero(t, overlaps.Load(), "overlapping probes of one endpoint: got %d; want 0", overlaps.Load())
	})
}
