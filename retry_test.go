package orchestrator_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

// rtryEndpoint is an endpoint over targets with retries on, breakers and
// outlier detection out of the way.
func rtryEndpoint(targets []orchestrator.Target, retry orchestrator.RetryConfig) orchestrator.Endpoint {
	return orchestrator.Endpoint{Name: "svc", Targets: targets, Retry: &retry,
		CircuitBreaker:   &orchestrator.CircuitBreakerConfig{FailureThreshold: 1000},
		OutlierDetection: &orchestrator.OutlierDetectionConfig{ConsecutiveFailures: intp(0)}}
}

// rtryEcho is a backend that records each request's body and answers
// status with a body naming itself.
type rtryEcho struct {
	*httptest.Server
	name   string
	status atomic.Int64
	mu     sync.Mutex
	bodies []string
}

func newRtryEcho(t *testing.T, name string, status int) *rtryEcho {
	b := &rtryEcho{name: name}
	b.status.Store(int64(status))
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.bodies = append(b.bodies, string(body))
		b.mu.Unlock()
		w.Header().Set("X-Backend", name)
		w.WriteHeader(int(b.status.Load()))
		io.WriteString(w, "from "+name)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *rtryEcho) got() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.bodies...)
}

func rtrySend(o http.Handler, method, body string, header ...string) polResponse {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, "/orchestrator/svc/x", rd)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return polServe(o, req)
}

func TestAGetIsRetriedOnAnotherTarget(t *testing.T) {
	bad, good := newRtryEcho(t, "bad", http.StatusServiceUnavailable), newRtryEcho(t, "good", http.StatusOK)
	o := polNew(t, orchestrator.WithEndpoints(rtryEndpoint([]orchestrator.Target{{URL: bad.URL}, {URL: good.URL}},
		orchestrator.RetryConfig{Attempts: 1, Backoff: polDuration(time.Millisecond)})))
	res := rtrySend(o, http.MethodGet, "")
	polRequireCode(t, res, http.StatusOK)
	assert.Equal(t, "from good", res.Body)
	assert.Len(t, bad.got(), 1)
	assert.Len(t, good.got(), 1)
}

func TestAPostIsRetriedOnlyWhenSafe(t *testing.T) {
	t.Run("a 503 to a POST without Idempotency-Key comes back as it came", func(t *testing.T) {
		bad, good := newRtryEcho(t, "bad", http.StatusServiceUnavailable), newRtryEcho(t, "good", http.StatusOK)
		o := polNew(t, orchestrator.WithEndpoints(rtryEndpoint([]orchestrator.Target{{URL: bad.URL}, {URL: good.URL}},
			orchestrator.RetryConfig{Attempts: 1, Backoff: polDuration(time.Millisecond)})))
		res := rtrySend(o, http.MethodPost, "order=1")
		polRequireCode(t, res, http.StatusServiceUnavailable)
		assert.Equal(t, "from bad", res.Body)
		assert.Empty(t, good.got())
	})
	t.Run("a POST that never reached a backend is retried", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		closed := "http://" + l.Addr().String()
		require.NoError(t, l.Close())
		good := newRtryEcho(t, "good", http.StatusOK)
		o := polNew(t, orchestrator.WithEndpoints(rtryEndpoint([]orchestrator.Target{{URL: closed}, {URL: good.URL}},
			orchestrator.RetryConfig{Attempts: 1, Backoff: polDuration(time.Millisecond)})))
		res := rtrySend(o, http.MethodPost, "order=1")
		polRequireCode(t, res, http.StatusOK)
		assert.Equal(t, []string{"order=1"}, good.got())
	})
	t.Run("a POST with Idempotency-Key is retried with its body replayed", func(t *testing.T) {
		bad, good := newRtryEcho(t, "bad", http.StatusServiceUnavailable), newRtryEcho(t, "good", http.StatusOK)
		o := polNew(t, orchestrator.WithEndpoints(rtryEndpoint([]orchestrator.Target{{URL: bad.URL}, {URL: good.URL}},
			orchestrator.RetryConfig{Attempts: 1, Backoff: polDuration(time.Millisecond)})))
		body := strings.Repeat("0123456789", 3000) // 30 KB, under the default 64 KiB
		res := rtrySend(o, http.MethodPost, body, "Idempotency-Key", "k-1")
		polRequireCode(t, res, http.StatusOK)
		assert.Equal(t, []string{body}, bad.got())
		assert.Equal(t, []string{body}, good.got(), "the retry carries the same bytes")
	})
	t.Run("a body larger than max_replay_bytes is not retried", func(t *testing.T) {
		bad, good := newRtryEcho(t, "bad", http.StatusServiceUnavailable), newRtryEcho(t, "good", http.StatusOK)
		o := polNew(t, orchestrator.WithEndpoints(rtryEndpoint([]orchestrator.Target{{URL: bad.URL}, {URL: good.URL}},
			orchestrator.RetryConfig{Attempts: 1, Backoff: polDuration(time.Millisecond), MaxReplayBytes: 16})))
		res := rtrySend(o, http.MethodPut, strings.Repeat("x", 1000))
		polRequireCode(t, res, http.StatusServiceUnavailable)
		assert.Empty(t, good.got())
	})
}

func TestExhaustedRetriesGiveTheLastResponseAsItCame(t *testing.T) {
	var hits atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		w.Header().Set("X-Attempt", strings.Repeat("i", int(n)))
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "upstream says no")
	})
	a, b := httptest.NewServer(h), httptest.NewServer(h)
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	o := polNew(t, orchestrator.WithEndpoints(rtryEndpoint([]orchestrator.Target{{URL: a.URL}, {URL: b.URL}},
		orchestrator.RetryConfig{Attempts: 2, Backoff: polDuration(time.Millisecond)})))
	res := rtrySend(o, http.MethodGet, "")
	polRequireCode(t, res, http.StatusBadGateway)
	assert.Equal(t, "upstream says no", res.Body)
	assert.Equal(t, "iii", res.Header.Get("X-Attempt"), "the third attempt's answer")
	assert.Equal(t, "7", res.Header.Get("Retry-After"))
	assert.Equal(t, int64(3), hits.Load())
	for _, tr := range polView(t, o, "svc").Targets {
		assert.Zero(t, tr.InFlight, "target %s: every attempt's body was closed", tr.ID)
	}
}

func TestNoRetryOnceTheResponseStarted(t *testing.T) {
	var hits atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "partial")
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	a, b := httptest.NewServer(h), httptest.NewServer(h)
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	o := polNew(t, orchestrator.WithEndpoints(rtryEndpoint([]orchestrator.Target{{URL: a.URL}, {URL: b.URL}},
		orchestrator.RetryConfig{Attempts: 2, Backoff: polDuration(time.Millisecond), On: []string{"reset", "502"}})))
	s := httptest.NewServer(o)
	t.Cleanup(s.Close)
	resp, err := http.Get(s.URL + "/orchestrator/svc/x")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	assert.Error(t, err, "the response was cut")
	assert.Equal(t, int64(1), hits.Load(), "a response that began streaming is never retried")
}

func TestPerTryTimeoutCutsOneAttempt(t *testing.T) {
	cancelled := make(chan struct{}, 1)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		cancelled <- struct{}{}
	}))
	t.Cleanup(hang.Close)
	good := newRtryEcho(t, "good", http.StatusOK)
	o := polNew(t, orchestrator.WithEndpoints(func() orchestrator.Endpoint {
		ep := rtryEndpoint([]orchestrator.Target{{URL: hang.URL}, {URL: good.URL}},
			orchestrator.RetryConfig{Attempts: 1, Backoff: polDuration(time.Millisecond), PerTryTimeout: polDuration(100 * time.Millisecond), On: []string{"timeout"}})
		ep.Timeout = polDuration(time.Minute)
		return ep
	}()))
	res := rtrySend(o, http.MethodGet, "")
	polRequireCode(t, res, http.StatusOK)
	assert.Equal(t, "from good", res.Body)
	select {
	case <-cancelled:
	case <-time.After(polWait):
		t.Fatal("the timed-out attempt's backend never saw its request cancelled")
	}
}

// TestTheRetryBudgetCapsRetries: 50 concurrent clients against targets that
// all fail. Every first attempt is held until all 50 are in, then answered
// 503; every retry that reaches a backend is held. failsafe-go's budget
// (Envoy's model) lets a retry start while retries in flight are fewer than
// min_concurrency, or at most budget_percent of the executions in flight
// (retries included). With 50 requests and 20%, that is r/(50+r) <= 0.2
// before the last permit: at most 13 retries at once, at least 3.
func TestTheRetryBudgetCapsRetries(t *testing.T) {
	const clients = 50
	var arrived, held atomic.Int64
	gate, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := arrived.Add(1); n <= clients {
			if n == clients {
				close(gate)
			}
			<-gate
		} else {
			held.Add(1)
			<-release
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	a, b := httptest.NewServer(h), httptest.NewServer(h)
	released := false
	t.Cleanup(func() {
		if !released {
			close(release)
		}
		a.Close()
		b.Close()
	})
	o := polNew(t, orchestrator.WithEndpoints(rtryEndpoint([]orchestrator.Target{{URL: a.URL}, {URL: b.URL}},
		orchestrator.RetryConfig{Attempts: 1, Backoff: polDuration(time.Millisecond), BudgetPercent: 20, MinConcurrency: intp(3)})))

	var finished atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := rtrySend(o, http.MethodGet, "")
			assert.Equal(t, http.StatusServiceUnavailable, res.Code)
			finished.Add(1)
		}()
	}
	// Every client either got its answer (its retry refused by the budget)
	// or has a retry held at a backend.
	require.Eventually(t, func() bool { return finished.Load()+held.Load() == clients }, polWait, polTick)
	got := held.Load()
	assert.GreaterOrEqual(t, got, int64(3), "min_concurrency retries are always allowed")
	assert.LessOrEqual(t, got, int64(13), "retries in flight stay within the budget")
	assert.Less(t, got, int64(clients), "the budget refused some retries")
	close(release)
	released = true
	wg.Wait()
	assert.Equal(t, int64(clients)+got, arrived.Load())
}

// TestRetriesBoundedByTheWholeTimeout: the endpoint's timeout bounds the
// whole request, back-offs and retries included.
func TestRetriesBoundedByTheWholeTimeout(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(hang.Close)
	hang2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(hang2.Close)
	ep := rtryEndpoint([]orchestrator.Target{{URL: hang.URL}, {URL: hang2.URL}},
		orchestrator.RetryConfig{Attempts: 5, Backoff: polDuration(time.Millisecond), PerTryTimeout: polDuration(50 * time.Millisecond), On: []string{"timeout"}})
	ep.Timeout = polDuration(120 * time.Millisecond)
	o := polNew(t, orchestrator.WithEndpoints(ep))
	res := rtrySend(o, http.MethodGet, "")
	polRequireProblem(t, res, http.StatusGatewayTimeout, "upstream-timeout", "svc")
}

// TestRetryKeepsTheBodyIntactForAFirstAttemptThatSucceeds: the tee does not
// change what the backend gets.
func TestRetryKeepsTheBodyIntactForAFirstAttemptThatSucceeds(t *testing.T) {
	good := newRtryEcho(t, "good", http.StatusOK)
	o := polNew(t, orchestrator.WithEndpoints(rtryEndpoint([]orchestrator.Target{{URL: good.URL}},
		orchestrator.RetryConfig{Attempts: 2})))
	body := bytes.Repeat([]byte("ab"), 100_000) // larger than max_replay_bytes
	req := httptest.NewRequest(http.MethodPut, "/orchestrator/svc/x", bytes.NewReader(body))
	polRequireCode(t, polServe(o, req), http.StatusOK)
	assert.Equal(t, []string{string(body)}, good.got())
}

// TestKillingOneOfThreeTargetsUnderLoad: with retries on, clients see no
// failure once outlier detection has ejected a target that died under
// load; before that, its refused connections are retried on another target.
func TestKillingOneOfThreeTargetsUnderLoad(t *testing.T) {
	var servers [3]*httptest.Server
	var targets []orchestrator.Target
	for i := range servers {
		servers[i] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok")
		}))
		t.Cleanup(servers[i].Close)
		targets = append(targets, orchestrator.Target{ID: string(rune('a' + i)), URL: servers[i].URL})
	}
	ep := rtryEndpoint(targets, orchestrator.RetryConfig{Attempts: 2, Backoff: polDuration(time.Millisecond)})
	ep.OutlierDetection = &orchestrator.OutlierDetectionConfig{BaseEjectionTime: polDuration(time.Hour), MaxEjectionPercent: 34}
	o := polNew(t, orchestrator.WithEndpoints(ep))
	gw := httptest.NewServer(o)
	t.Cleanup(gw.Close)

	var sent, failed, failedAfterEjection atomic.Int64
	var ejected atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := gw.Client()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				after := ejected.Load()
				sent.Add(1)
				resp, err := client.Get(gw.URL + "/orchestrator/svc/x")
				ok := err == nil && resp.StatusCode == http.StatusOK
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if !ok {
					failed.Add(1)
					if after {
						failedAfterEjection.Add(1)
					}
				}
			}
		}()
	}
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	})
	require.Eventually(t, func() bool { return sent.Load() > 200 }, polWait, polTick)
	servers[2].CloseClientConnections()
	servers[2].Close() // refused from now on
	require.Eventually(t, func() bool {
		return mtTarget(t, o, "svc", "c").Ejected
	}, polWait, polTick)
	ejected.Store(true)
	atEjection := sent.Load()
	require.Eventually(t, func() bool { return sent.Load() > atEjection+500 }, polWait, polTick)
	close(stop)
	wg.Wait()
	assert.Zero(t, failedAfterEjection.Load(), "requests failed after the ejection")
	// Before it, a request whose response was already streaming when the
	// target died may fail (that is never retried); refused connections
	// are retried elsewhere.
	t.Logf("%d requests, %d failed before the ejection", sent.Load(), failed.Load())
}

// TestMaxConcurrentHoldsAcrossRetries: a request holds one max_concurrent
// permit across its retries, and while the last answer of exhausted retries
// streams to the client; a retried answer whose body never ends does not
// hold the retry up (it is closed unread, never drained).
func TestMaxConcurrentHoldsAcrossRetries(t *testing.T) {
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	a, b := httptest.NewServer(h), httptest.NewServer(h)
	released := false
	t.Cleanup(func() {
		if !released {
			close(release)
		}
		a.Close()
		b.Close()
	})
	ep := rtryEndpoint([]orchestrator.Target{{URL: a.URL}, {URL: b.URL}}, orchestrator.RetryConfig{Attempts: 1, Backoff: polDuration(time.Millisecond)})
	ep.MaxConcurrent = 1
	o := polNew(t, orchestrator.WithEndpoints(ep))
	gw := httptest.NewServer(o)
	t.Cleanup(gw.Close)

	resp, err := gw.Client().Get(gw.URL + "/orchestrator/svc/x")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "the last answer, as it came")
	// While its body streams, the permit is held: a second request is
	// refused at once. (Were it let through, its own answer would stream
	// until its context ends, and it would fail the check below.)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	second := httptest.NewRequestWithContext(ctx, http.MethodGet, "/orchestrator/svc/x", nil)
	polRequireProblem(t, polServe(o, second), http.StatusServiceUnavailable, "bulkhead-full", "svc")
	close(release)
	released = true
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// Closing the body gives the permit back.
	require.Eventually(t, func() bool {
		res := rtrySend(o, http.MethodGet, "")
		return !strings.Contains(res.Body, "bulkhead-full")
	}, polWait, polTick)
}
