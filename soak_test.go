package orchestrator_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

var soakDuration = flag.Duration("soak", 15*time.Second, "how long TestChaosSoak runs (go test -run ChaosSoak -soak=10m for a long run)")

// TestChaosSoak puts load on several endpoints while one backend flaps
// between healthy, failing, resetting and hanging, its breaker trips and
// recovers, the config is re-applied and endpoints are registered and
// removed. Stable endpoints must answer every request; the faulty one only
// with the designed 502/503/504; afterwards goroutines and heap return to
// where they were.
func TestChaosSoak(t *testing.T) {
	goroutinesBefore := runtime.NumGoroutine()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	func() {
		stable := make([]*httptest.Server, 3)
		for i := range stable {
			name := fmt.Sprintf("stable%d", i)
			stable[i] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				io.WriteString(w, name)
			}))
			defer stable[i].Close()
		}
		// The flaky backend's mode: 0 ok, 1 answers 500, 2 resets the
		// connection, 3 hangs past the endpoint timeout.
		var mode atomic.Int32
		hang := make(chan struct{})
		flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch mode.Load() {
			case 1:
				w.WriteHeader(http.StatusInternalServerError)
				io.WriteString(w, "backend failure")
			case 2:
				if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
					c.Close()
				}
			case 3:
				select {
				case <-hang:
				case <-r.Context().Done():
				}
			default:
				io.WriteString(w, "flaky")
			}
		}))
		defer flaky.Close()
		defer close(hang)

		endpoints := func(flakyTimeout time.Duration) []orchestrator.Endpoint {
			eps := []orchestrator.Endpoint{{
				Name: "flaky", URL: flaky.URL, Timeout: orchestrator.Duration(flakyTimeout),
				CircuitBreaker: &orchestrator.CircuitBreakerConfig{FailureThreshold: 3, ResetTimeout: orchestrator.Duration(100 * time.Millisecond)},
			}}
			for i, s := range stable {
				eps = append(eps, orchestrator.Endpoint{Name: fmt.Sprintf("stable%d", i), Version: "v1", URL: s.URL})
			}
			return eps
		}
		o, err := orchestrator.New(orchestrator.WithEndpoints(endpoints(150 * time.Millisecond)...))
		require.NoError(t, err)
		defer o.Close()
		gw := httptest.NewServer(o)
		defer gw.Close()
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
		defer client.CloseIdleConnections()

		ctx, stop := context.WithTimeout(context.Background(), *soakDuration)
		defer stop()
		var wg sync.WaitGroup
		var stableOK, stableBad, flakyOK, flakyDesigned, flakyOther, churnOK atomic.Int64
		var firstBad atomic.Value

		// Load.
		for w := 0; w < 6; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; ctx.Err() == nil; i++ {
					var path, want string
					switch i % 5 {
					case 0, 1, 2:
						n := i % 3
						path, want = fmt.Sprintf("/orchestrator/stable%d/v1/x", n), fmt.Sprintf("stable%d", n)
					case 3:
						path = "/orchestrator/flaky/x"
					default:
						path = "/orchestrator/churn/x"
					}
					method := http.MethodGet
					if i%7 == 0 {
						method = http.MethodPost
					}
					req, _ := http.NewRequest(method, gw.URL+path, nil)
					resp, err := client.Do(req)
					code, body := 0, ""
					if err == nil {
						b, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						code, body = resp.StatusCode, string(b)
					}
					switch {
					case want != "":
						if err == nil && code == http.StatusOK && body == want {
							stableOK.Add(1)
						} else {
							stableBad.Add(1)
							firstBad.CompareAndSwap(nil, fmt.Sprintf("%s %s: %d %q %v", method, path, code, body, err))
						}
					case path == "/orchestrator/flaky/x":
						switch code {
						case http.StatusOK:
							flakyOK.Add(1)
						case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
							flakyDesigned.Add(1)
						case http.StatusInternalServerError:
							// The backend's own failure, passed through as sent.
							if body == "backend failure" {
								flakyDesigned.Add(1)
							} else {
								flakyOther.Add(1)
								firstBad.CompareAndSwap(nil, fmt.Sprintf("flaky: %d %q", code, body))
							}
						default:
							flakyOther.Add(1)
							firstBad.CompareAndSwap(nil, fmt.Sprintf("flaky: %d %q %v", code, body, err))
						}
					default:
						if code == http.StatusOK || code == http.StatusNotFound {
							churnOK.Add(1)
						}
					}
				}
			}()
		}
		// The flapping backend.
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(150 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					mode.Store(int32(i % 4))
				}
			}
		}()
		// Config re-applied (the flaky timeout changes, so its route and
		// breaker are rebuilt), endpoints registered and removed.
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				switch i % 3 {
				case 0:
					cfg := orchestrator.Desired{Endpoints: endpoints(time.Duration(150+i%2*50) * time.Millisecond)}
					if err := o.Apply(ctx, cfg); err != nil && ctx.Err() == nil {
						firstBad.CompareAndSwap(nil, "apply: "+err.Error())
					}
				case 1:
					o.Register(ctx, orchestrator.Endpoint{Name: "churn", URL: stable[0].URL})
				case 2:
					o.Deregister(ctx, "churn")
				}
			}
		}()
		wg.Wait()

		t.Logf("stable ok %d, bad %d; flaky ok %d, designed errors %d, other %d; churn answered %d",
			stableOK.Load(), stableBad.Load(), flakyOK.Load(), flakyDesigned.Load(), flakyOther.Load(), churnOK.Load())
		if v := firstBad.Load(); v != nil {
			t.Errorf("first unexpected answer: %v", v)
		}
		assert.Zero(t, stableBad.Load(), "failed requests to stable endpoints: got %d; want 0", stableBad.Load())
		assert.Zero(t, flakyOther.Load(), "undesigned answers from the faulty endpoint: got %d; want 0", flakyOther.Load())
		assert.Positive(t, stableOK.Load())
		assert.Positive(t, flakyOK.Load(), "the faulty endpoint never recovered")
		assert.Positive(t, flakyDesigned.Load(), "the faulty endpoint never failed: the soak tested nothing")

		// The breaker really tripped along the way (the soak exercised it).
		var exposition strings.Builder
		o.WritePrometheus(&exposition)
		opened := false
		for _, line := range strings.Split(exposition.String(), "\n") {
			if strings.HasPrefix(line, `orchestrator_circuit_breaker_opens_total{endpoint="flaky"} `) {
				opened = !strings.HasSuffix(line, " 0")
			}
		}
		assert.True(t, opened, "the flaky endpoint's breaker never opened during the soak")
	}()

	// Everything is stopped: goroutines and heap come back.
	deadline := time.Now().Add(15 * time.Second)
	for runtime.NumGoroutine() > goroutinesBefore+2 && time.Now().Before(deadline) {
		runtime.Gosched()
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), goroutinesBefore+2, "goroutines: before %d, after %d", goroutinesBefore, runtime.NumGoroutine())
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapInuse) - int64(before.HeapInuse)
	assert.Less(t, growth, int64(16<<20), "heap in use grew by %d bytes over the soak", growth)
}
