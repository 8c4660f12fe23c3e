package orchestrator_test

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/failsafe-go/failsafe-go/timeout"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

// retryOn503 stands for the retries still to come: one more try when the
// upstream answers 503. The response it discards is closed, as a retry
// policy must (its body carries the endpoint's concurrency permit).
func retryOn503() failsafe.Policy[*http.Response] {
	return retrypolicy.NewBuilder[*http.Response]().
		HandleIf(func(resp *http.Response, err error) bool {
			return err == nil && resp.StatusCode == http.StatusServiceUnavailable
		}).
		WithMaxRetries(1).
		WithDelay(0).
		OnRetry(func(e failsafe.ExecutionEvent[*http.Response]) {
			if resp := e.LastResult(); resp != nil {
				resp.Body.Close()
			}
		}).
		Build()
}

func TestARetriedTryGivesTheClientOneResponse(t *testing.T) {
	// Given a backend that answers 503 once, then 200, and an endpoint whose
	// executor retries a 503 once, with max_concurrent 1 so that the first
	// try's permit must come back before the second may run
	var hits atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.Header().Set("X-Try", "first")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "first try")
			return
		}
		w.Header().Set("X-Try", "second")
		io.WriteString(w, "second try")
	}))
	t.Cleanup(backend.Close)
	o, err := orchestrator.New(
		orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL, MaxConcurrent: 1}),
		orchestrator.WithPoliciesForTest(retryOn503()),
	)
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })
	gateway := httptest.NewServer(o)
	t.Cleanup(gateway.Close)

	// When a client sends one request on a raw connection
	conn, err := net.Dial("tcp", gateway.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(20*time.Second)))
	_, err = io.WriteString(conn, "GET /orchestrator/svc/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
	require.NoError(t, err)
	raw, err := io.ReadAll(conn)
	require.NoError(t, err)

	// Then the backend saw two tries and the client exactly one response:
	// the second's, with nothing of the first and nothing after it
	assert.EqualValues(t, 2, hits.Load(), "backend tries")
	br := bufio.NewReader(strings.NewReader(string(raw)))
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "second try", string(body))
	assert.Equal(t, []string{"second"}, resp.Header.Values("X-Try"))
	assert.Len(t, resp.Header.Values("X-Request-Id"), 1, "one X-Request-Id")
	rest, _ := io.ReadAll(br)
	assert.Empty(t, string(rest), "bytes after the one response")
	assert.Equal(t, 1, strings.Count(string(raw), "HTTP/1.1 "), "status lines in %q", raw)

	// And both tries went through the breaker: the 503 counted as a failure
	// and the 200 reset the run, so the endpoint reads healthy traffic
	view, err := o.Endpoint("svc")
	require.NoError(t, err)
	assert.Equal(t, orchestrator.BreakerClosed, view.CircuitBreakerState)
}

func TestTenMegabytesStreamIntactThroughTheExecutor(t *testing.T) {
	// Given a backend that sends 10 MB of random bytes in uneven chunks, and
	// an endpoint whose executor gives each try a context of its own (a
	// failsafe-go timeout), which failsafe-go cancels when the execution
	// ends unless the try defers it to the body's close
	const size = 10 << 20
	payload := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	want := sha256.Sum256(payload)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		flusher := w.(http.Flusher)
		for off, step := 0, 1; off < size; step = step*7%65521 + 1 {
			end := min(off+step, size)
			if _, err := w.Write(payload[off:end]); err != nil {
				return
			}
			flusher.Flush()
			off = end
		}
	}))
	t.Cleanup(backend.Close)
	o, err := orchestrator.New(
		orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL, MaxConcurrent: 1}),
		orchestrator.WithPoliciesForTest(timeout.New[*http.Response](time.Minute), retryOn503()),
	)
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })
	gateway := httptest.NewServer(o)
	t.Cleanup(gateway.Close)

	// When a client downloads it
	resp, err := gateway.Client().Get(gateway.URL + "/orchestrator/svc/blob")
	require.NoError(t, err)
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()

	// Then every byte arrives, in order
	require.NoError(t, err, "the stream was cut after %d bytes", n)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.EqualValues(t, size, n, "bytes received")
	assert.Equal(t, fmt.Sprintf("%x", want), fmt.Sprintf("%x", h.Sum(nil)), "sha256 of the body")

	// And the concurrency permit came back when the body ended: the next
	// request is served, not refused
	testutil.Eventually(t, 10*time.Second, "a request after the download is served", func() (bool, string) {
		resp, err := gateway.Client().Head(gateway.URL + "/orchestrator/svc/blob")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
}

func TestMaxConcurrentCountsARequestUntilItsBodyHasStreamed(t *testing.T) {
	// Given an endpoint capped at one request in flight, whose backend has
	// sent its headers and holds the body open
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fast" {
			return
		}
		io.WriteString(w, "first half,")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "second half")
	}))
	t.Cleanup(backend.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	o, err := orchestrator.New(orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL, MaxConcurrent: 1}))
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })
	gateway := httptest.NewServer(o)
	t.Cleanup(gateway.Close)
	streaming, err := gateway.Client().Get(gateway.URL + "/orchestrator/svc/stream")
	require.NoError(t, err)
	defer streaming.Body.Close()
	first := make([]byte, len("first half,"))
	_, err = io.ReadFull(streaming.Body, first)
	require.NoError(t, err)

	// When a second request arrives while the first body still streams
	resp, err := gateway.Client().Get(gateway.URL + "/orchestrator/svc/fast")
	require.NoError(t, err)
	resp.Body.Close()

	// Then it is refused: the first request is still in flight
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))

	// And once the first body ends, requests flow again
	close(release)
	rest, err := io.ReadAll(streaming.Body)
	require.NoError(t, err)
	assert.Equal(t, "second half", string(rest))
	testutil.Eventually(t, 10*time.Second, "a request after the stream ended is served", func() (bool, string) {
		resp, err := gateway.Client().Get(gateway.URL + "/orchestrator/svc/fast")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
}
