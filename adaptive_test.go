package orchestrator_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

// oneAtATime is an adaptive limit pinned at one request in flight, so
// that a test decides when the limiter is full.
var oneAtATime = &orchestrator.AdaptiveConcurrencyConfig{MinLimit: 1, MaxLimit: 1, InitialLimit: 1}

// adServeAsync serves a GET in the background and returns the recorder,
// readable once done is closed.
func adServeAsync(h http.Handler, path string) (*httptest.ResponseRecorder, chan struct{}) {
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	}()
	return rec, done
}

func adWait(t *testing.T, done chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(polWait):
		t.Fatalf("the request did not end within %v", polWait)
	}
}

func TestAdaptiveConcurrencyShedsOverTheLimit(t *testing.T) {
	backend := newPolHangingBackend(t)
	o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL, AdaptiveConcurrency: oneAtATime}))

	first, done := adServeAsync(o, "/orchestrator/svc/x")
	backend.waitEntered(t) // the one permit is held: the upstream has not answered

	res := polGet(o, "/orchestrator/svc/x")
	polRequireProblem(t, res, http.StatusServiceUnavailable, "load-shed", "svc")
	assert.Equal(t, "1", res.Header.Get("Retry-After"))
	v := polView(t, o, "svc")
	assert.Equal(t, uint64(1), v.Traffic.LoadShed)
	assert.Equal(t, 1, v.Traffic.AdaptiveLimit)
	s := obsScrapeOf(t, o)
	s.expect(t, 1, "orchestrator_load_shed_total", "endpoint", "svc")
	s.expect(t, 1, "orchestrator_adaptive_concurrency_limit", "endpoint", "svc")
	obsRequireCleanExposition(t, o)

	close(backend.release)
	adWait(t, done)
	assert.Equal(t, http.StatusOK, first.Code)
	polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusOK) // the permit came back
}

func TestAdaptivePermitGoesBackAtTheResponseHeaders(t *testing.T) {
	// A backend that answers ?quick at once, and otherwise sends its
	// headers at once, then holds the body until the test ends.
	headersSent := make(chan struct{}, 1)
	finish := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery == "quick" {
			io.WriteString(w, "quick")
			return
		}
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		headersSent <- struct{}{}
		select {
		case <-finish:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(backend.Close)
	var once sync.Once
	release := func() { once.Do(func() { close(finish) }) }
	t.Cleanup(release) // runs before backend.Close, also when the test fails
	o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL, AdaptiveConcurrency: oneAtATime}))

	_, done := adServeAsync(o, "/orchestrator/svc/slow")
	<-headersSent
	// The first body is still streaming; its permit went back with its
	// headers (as soon as the gateway read them), so another request is
	// let through: the limit counts requests waiting for their upstream.
	testutil.Eventually(t, polWait, "a second request admitted while the first body streams", func() (bool, string) {
		res := polGet(o, "/orchestrator/svc/x?quick")
		return res.Code == http.StatusOK, res.Body
	})
	release()
	adWait(t, done)
}

func TestLoadShedMayFallBack(t *testing.T) {
	backend := newPolHangingBackend(t)
	o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL, AdaptiveConcurrency: oneAtATime,
		Fallback: &orchestrator.FallbackConfig{Strategy: orchestrator.FallbackStaticResponse, Status: 200, Body: "from the fallback"}}))
	_, done := adServeAsync(o, "/orchestrator/svc/x")
	backend.waitEntered(t)
	res := polGet(o, "/orchestrator/svc/x")
	assert.Equal(t, http.StatusOK, res.Code)
	assert.Equal(t, "from the fallback", res.Body)
	close(backend.release)
	adWait(t, done)
}

func TestAdaptiveConcurrencyGlobalDefaultAndReload(t *testing.T) {
	backend := newPolHangingBackend(t)
	off := true
	eps := []orchestrator.Endpoint{
		{Name: "svc", URL: backend.URL},
		{Name: "free", URL: backend.URL, AdaptiveConcurrency: &orchestrator.AdaptiveConcurrencyConfig{Disabled: &off}},
	}
	o := polNew(t, orchestrator.WithAdaptiveConcurrency(*oneAtATime), orchestrator.WithEndpoints(eps...))

	_, done := adServeAsync(o, "/orchestrator/svc/x")
	backend.waitEntered(t)
	polRequireProblem(t, polGet(o, "/orchestrator/svc/x"), http.StatusServiceUnavailable, "load-shed", "svc")

	// A reload that leaves the section alone keeps the limiter, and the
	// permit it holds: the next request is still shed.
	eps[0].Timeout = polDuration(20 * time.Second)
	require.NoError(t, o.Apply(context.Background(), orchestrator.Desired{AdaptiveConcurrency: oneAtATime, Endpoints: eps}))
	polRequireProblem(t, polGet(o, "/orchestrator/svc/x"), http.StatusServiceUnavailable, "load-shed", "svc")
	assert.Equal(t, uint64(2), polView(t, o, "svc").Traffic.LoadShed)

	// The disabled endpoint has none.
	_, done2 := adServeAsync(o, "/orchestrator/free/x")
	backend.waitEntered(t)
	assert.Zero(t, polView(t, o, "free").Traffic.AdaptiveLimit)

	close(backend.release)
	adWait(t, done)
	adWait(t, done2)
}

func TestAdaptiveConcurrencyValidation(t *testing.T) {
	cases := []struct {
		cfg   orchestrator.AdaptiveConcurrencyConfig
		field string
	}{
		{orchestrator.AdaptiveConcurrencyConfig{MinLimit: -1}, "endpoints[0].adaptive_concurrency.min_limit"},
		{orchestrator.AdaptiveConcurrencyConfig{MinLimit: 10, MaxLimit: 5}, "endpoints[0].adaptive_concurrency.min_limit"},
		{orchestrator.AdaptiveConcurrencyConfig{MinLimit: 2, MaxLimit: 5, InitialLimit: 9}, "endpoints[0].adaptive_concurrency.initial_limit"},
	}
	for _, c := range cases {
		_, err := orchestrator.New(orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: "http://127.0.0.1:9", AdaptiveConcurrency: &c.cfg}))
		var verr *orchestrator.ValidationError
		require.True(t, errors.As(err, &verr), "error %v: want a *ValidationError", err)
		assert.Equal(t, c.field, verr.Errors[0].Field)
	}
}

// A reload that changes the limiter cuts no request in flight: the request
// gives its permit back to the limiter it took it from.
func TestAdaptiveReloadCutsNothingInFlight(t *testing.T) {
	backend := newPolHangingBackend(t)
	ep := orchestrator.Endpoint{Name: "svc", URL: backend.URL, AdaptiveConcurrency: oneAtATime}
	o := polNew(t, orchestrator.WithEndpoints(ep))
	first, done := adServeAsync(o, "/orchestrator/svc/x")
	backend.waitEntered(t)

	ep.AdaptiveConcurrency = &orchestrator.AdaptiveConcurrencyConfig{MinLimit: 1, MaxLimit: 2, InitialLimit: 2}
	require.NoError(t, o.Apply(context.Background(), orchestrator.Desired{Endpoints: []orchestrator.Endpoint{ep}}))
	assert.Equal(t, 2, polView(t, o, "svc").Traffic.AdaptiveLimit, "the new limiter serves")

	close(backend.release)
	adWait(t, done)
	assert.Equal(t, http.StatusOK, first.Code, "the request in flight finished")
	polRequireCode(t, polGet(o, "/orchestrator/svc/x"), http.StatusOK)
}
