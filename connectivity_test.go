package orchestrator_test

import (
	"context"
	"net"
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

// ctRecorder is a backend that records the method and path of every
// request and answers HEAD with headStatus (GET with 200).
type ctRecorder struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func newCTRecorder(t *testing.T, headStatus int) *ctRecorder {
	t.Helper()
	b := &ctRecorder{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.seen = append(b.seen, r.Method+" "+r.URL.Path)
		b.mu.Unlock()
		assert.Empty(t, r.Header.Get("Authorization"), "a connectivity test carries no credentials")
		if r.Method == http.MethodHead {
			w.WriteHeader(headStatus)
			return
		}
		w.Write([]byte("ok"))
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *ctRecorder) requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.seen...)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCheckTargets(t *testing.T) {
	t.Run("each target is tested: HEAD, GET only where HEAD is refused, a closed port refused", func(t *testing.T) {
		head := newCTRecorder(t, http.StatusNoContent)
		noHead := newCTRecorder(t, http.StatusMethodNotAllowed)
		closed := testutil.RefusedURL(t)
		o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", Targets: []orchestrator.Target{
			{ID: "head", URL: head.URL + "/api/v1"},
			{ID: "nohead", URL: noHead.URL + "/base"},
			{ID: "closed", URL: closed},
		}}))

		checks, err := o.CheckTargets(context.Background(), "svc")
		require.NoError(t, err)
		require.Len(t, checks, 3)

		assert.Equal(t, "head", checks[0].TargetID)
		assert.True(t, checks[0].Reachable)
		assert.Equal(t, http.StatusNoContent, checks[0].Status)
		assert.Equal(t, http.MethodHead, checks[0].Method)
		assert.Equal(t, head.URL+"/api/v1", checks[0].URL, "without health_check_path the base path is tested")
		assert.Empty(t, checks[0].ErrorKind)
		assert.Positive(t, checks[0].Latency.Std())
		assert.Equal(t, []string{"HEAD /api/v1"}, head.requests())

		assert.Equal(t, "nohead", checks[1].TargetID)
		assert.True(t, checks[1].Reachable)
		assert.Equal(t, http.StatusOK, checks[1].Status)
		assert.Equal(t, http.MethodGet, checks[1].Method)
		assert.Equal(t, []string{"HEAD /base", "GET /base"}, noHead.requests(), "GET follows a refused HEAD, and nothing else is sent")

		assert.Equal(t, "closed", checks[2].TargetID)
		assert.False(t, checks[2].Reachable)
		assert.Zero(t, checks[2].Status)
		assert.Equal(t, "refused", checks[2].ErrorKind)
		assert.NotEmpty(t, checks[2].Error)
	})

	t.Run("health_check_path is tested when set, and the test changes no state", func(t *testing.T) {
		backend := newCTRecorder(t, http.StatusInternalServerError)
		o := polNew(t,
			orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Enabled: polPtr(false)}),
			orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL + "/api", HealthCheckPath: "/healthz",
				CircuitBreaker: &orchestrator.CircuitBreakerConfig{FailureThreshold: 1}}))
		for range 3 {
			checks, err := o.CheckTargets(context.Background(), "svc")
			require.NoError(t, err)
			require.Len(t, checks, 1)
			assert.Equal(t, backend.URL+"/healthz", checks[0].URL)
			assert.True(t, checks[0].Reachable, "any HTTP answer is reachable")
			assert.Equal(t, http.StatusInternalServerError, checks[0].Status)
		}
		assert.Equal(t, []string{"HEAD /healthz", "HEAD /healthz", "HEAD /healthz"}, backend.requests())
		v := polView(t, o, "svc")
		assert.Equal(t, orchestrator.BreakerClosed, v.CircuitBreakerState, "a 500 to a test is not a failure of real traffic")
		assert.Zero(t, v.ConsecutiveRequestFailures)
	})

	t.Run("an address the upstream guard refuses is never dialled", func(t *testing.T) {
		o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "meta", URL: "http://169.254.169.254/latest"}))
		checks, err := o.CheckTargets(context.Background(), "meta")
		require.NoError(t, err)
		require.Len(t, checks, 1)
		assert.False(t, checks[0].Reachable)
		assert.Equal(t, "guard", checks[0].ErrorKind, "error: %s", checks[0].Error)
	})

	t.Run("a target that does not answer times out at the health check timeout", func(t *testing.T) {
		backend := newPolHangingBackend(t)
		o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL,
			HealthCheck: &orchestrator.HealthCheckConfig{Timeout: polDuration(100 * time.Millisecond)}}))
		checks, err := o.CheckTargets(context.Background(), "svc")
		require.NoError(t, err)
		assert.False(t, checks[0].Reachable)
		assert.Equal(t, "timeout", checks[0].ErrorKind, "error: %s", checks[0].Error)
		assert.GreaterOrEqual(t, checks[0].Latency.Std(), 100*time.Millisecond)
	})

	t.Run("a certificate the target transport does not trust is a tls error", func(t *testing.T) {
		backend := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		t.Cleanup(backend.Close)
		o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL}))
		checks, err := o.CheckTargets(context.Background(), "svc")
		require.NoError(t, err)
		assert.False(t, checks[0].Reachable)
		assert.Equal(t, "tls", checks[0].ErrorKind, "error: %s", checks[0].Error)
	})

	t.Run("a name that does not resolve is a dns error", func(t *testing.T) {
		// The transport fails as a dial to an unknown host does, so that
		// no test sends a DNS query.
		failing := roundTripFunc(func(*http.Request) (*http.Response, error) {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "svc.invalid", IsNotFound: true}}
		})
		o := polNew(t, orchestrator.WithTransport(failing), orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: "http://127.0.0.1:9"}))
		checks, err := o.CheckTargets(context.Background(), "svc")
		require.NoError(t, err)
		assert.False(t, checks[0].Reachable)
		assert.Equal(t, "dns", checks[0].ErrorKind, "error: %s", checks[0].Error)
	})

	t.Run("an unknown id is ErrNotFound", func(t *testing.T) {
		o := polNew(t)
		_, err := o.CheckTargets(context.Background(), "nope")
		assert.ErrorIs(t, err, orchestrator.ErrNotFound)
	})
}
