package orchestrator_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

func TestMaxConcurrentAnswers503AtOnceWhenFull(t *testing.T) {
	// Given an endpoint capped at two requests in flight and a backend that
	// holds every request until released
	var hits atomic.Int64
	entered := make(chan struct{}, 8)
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		entered <- struct{}{}
		<-release
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(backend.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	o, err := orchestrator.New(orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL, MaxConcurrent: 2}))
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })

	codes := make(chan int, 2)
	for range 2 {
		go func() {
			rec := httptest.NewRecorder()
			o.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/orchestrator/svc/slow", nil))
			codes <- rec.Code
		}()
	}
	for range 2 {
		select {
		case <-entered:
		case <-time.After(10 * time.Second):
			t.Fatal("the first two requests did not reach the backend")
		}
	}

	// When a third request arrives
	rec := httptest.NewRecorder()
	o.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/orchestrator/svc/x", nil))

	// Then it is refused with a 503 problem without reaching the backend
	require.Equal(t, http.StatusServiceUnavailable, rec.Code, "status: got %d; want 503", rec.Code)
	var p struct {
		Type       string `json:"type"`
		EndpointID string `json:"endpoint_id"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
	assert.Equal(t, "urn:orchestrator:problem:bulkhead-full", p.Type)
	assert.Equal(t, "svc", p.EndpointID)
	assert.EqualValues(t, 2, hits.Load(), "backend hits: got %d; want 2", hits.Load())

	// And once the first two finish, requests flow again
	close(release)
	for range 2 {
		assert.Equal(t, http.StatusOK, <-codes)
	}
	rec = httptest.NewRecorder()
	o.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/orchestrator/svc/x", nil))
	assert.Equal(t, http.StatusOK, rec.Code, "status after release: got %d; want 200", rec.Code)
}

func TestMaxConcurrentMustNotBeNegative(t *testing.T) {
	err := orchestrator.Endpoint{Name: "svc", URL: "http://127.0.0.1:1", MaxConcurrent: -1}.Validate()
	var verr *orchestrator.ValidationError
	require.ErrorAs(t, err, &verr)
	require.Len(t, verr.Errors, 1)
	assert.Equal(t, "max_concurrent", verr.Errors[0].Field)
}
