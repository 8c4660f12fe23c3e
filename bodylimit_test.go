package orchestrator_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

func TestMaxBodyBytes(t *testing.T) {
	var complete atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err == nil {
			complete.Add(1)
		}
	}))
	t.Cleanup(backend.Close)
	o, err := orchestrator.New(
		orchestrator.WithMaxBodyBytes(1024),
		orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL, CircuitBreaker: &orchestrator.CircuitBreakerConfig{FailureThreshold: 1}}),
	)
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })
	gw := httptest.NewServer(o)
	t.Cleanup(gw.Close)

	post := func(t *testing.T, body io.Reader, size int64) *http.Response {
		req, err := http.NewRequest(http.MethodPost, gw.URL+"/orchestrator/svc/upload", body)
		require.NoError(t, err)
		req.ContentLength = size
		resp, err := gw.Client().Do(req)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	t.Run("a body within the limit passes", func(t *testing.T) {
		resp := post(t, bytes.NewReader(make([]byte, 1024)), 1024)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.EqualValues(t, 1, complete.Load())
	})
	t.Run("a declared Content-Length over the limit gets 413 without reaching the backend", func(t *testing.T) {
		resp := post(t, bytes.NewReader(make([]byte, 1025)), 1025)
		assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "status: got %d; want 413", resp.StatusCode)
		assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
		assert.EqualValues(t, 1, complete.Load(), "the backend received the oversized body")
	})
	t.Run("a chunked body that grows past the limit gets 413 and never arrives whole", func(t *testing.T) {
		// Length unknown (-1): sent chunked, cut by the gateway while streaming.
		resp := post(t, io.MultiReader(strings.NewReader(strings.Repeat("x", 4096))), -1)
		assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "status: got %d; want 413", resp.StatusCode)
		assert.EqualValues(t, 1, complete.Load(), "the backend received the oversized body whole")
	})
	t.Run("oversized bodies are the client's fault: the breaker stays closed", func(t *testing.T) {
		v, err := o.Endpoint("svc")
		require.NoError(t, err)
		assert.Equal(t, orchestrator.BreakerClosed, v.CircuitBreakerState)
		resp := post(t, bytes.NewReader([]byte("ok")), 2)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	})
}
