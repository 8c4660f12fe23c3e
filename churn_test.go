package orchestrator

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The churn test's sizes. A cycle registers, updates, serves and removes one
// endpoint.
const (
	// churnWarmup cycles run before the baseline is read, so that what is
	// allocated once and reused (see TestChurnKeepsHeapFlat) is in it.
	churnWarmup = 2_000
	// churnCycles run between the baseline and the final reading: the
	// 100,000 of the reliability issue. They take about 20 s; under the
	// race detector about 70 s on two cores, so a -race build (CI's) runs
	// churnRaceCycles, enough for the same per-cycle bound to catch the same
	// leaks, since the noise it must stay above is a few tens of kilobytes
	// whatever the count.
	churnCycles     = 100_000
	churnRaceCycles = 25_000
	// churnHealthEvery: every so many cycles the endpoint has an active
	// health check, so that the scheduler holds (and must drop) an entry.
	churnHealthEvery = 10
	// churnBytesPerCycle is the growth allowed per measured cycle: 10 B,
	// 1,000,000 B (0.95 MiB) over 100,000 cycles, 250,000 B over 25,000.
	// A leak of 16 B a cycle (a 16-byte object, the smallest that holds a
	// pointer and anything else; any map entry or string kept per id is
	// more) grows the heap by 1.6 times the bound and fails. What is
	// left without a leak measured 20-60 KB over 100,000 cycles, none of
	// it the gateway's: a loopback connection opened when a probe and a
	// request overlapped (about 20 KB of bufio buffers with both ends in
	// this process) and goroutine and thread descriptors, which the
	// runtime never frees, past the previous high-water mark.
	churnBytesPerCycle = 10
)

// churnRaceBuild reports whether the test binary was built with -race, as
// its build settings record.
func churnRaceBuild() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// churnCheckpoints are the total cycle counts (warm-up included) at which
// the live heap is read and logged, for a run of cycles after the warm-up:
// the 3,000 of the issue, the end of the warm-up (the baseline), the end.
func churnCheckpoints(cycles int) []int {
	var at []int
	for _, n := range []int{0, 1_000, churnWarmup, 3_000, 10_000, 50_000, 100_000} {
		if n < churnWarmup+cycles {
			at = append(at, n)
		}
	}
	return append(at, churnWarmup+cycles)
}

// churnHeap returns the heap as found (garbage included) and the live heap
// after two collections: the first frees what was unreachable, the second
// also what sync.Pools kept through the first (their victim caches), so
// pooled buffers are not counted as kept.
func churnHeap() (found, live runtime.MemStats) {
	runtime.ReadMemStats(&found)
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&live)
	return found, live
}

// TestChurnKeepsHeapFlat registers, updates, calls and removes endpoints
// with fresh ids 100,000 times (25,000 under -race) and requires the live
// heap after GC to stay where it was after a warm-up: whatever a cycle
// touches (the registry, the route table and its copy-on-write indexes,
// breakers, health state, the scheduler, metrics, watch events) must give
// back what it took for the removed endpoint.
//
// The issue saw heap in use grow from 2.1 to 4.0 MB over 3,000 cycles.
// The log shows why that is no leak: read without a collection, the heap
// holds garbage until it reaches the runtime's minimum GC goal of 4 MiB
// (the live heap is far below it), so any two readings land anywhere on
// that saw-tooth between about 0.5 and 4 MB. The live heap grows about
// 120 KB in the first 1,000 cycles (the loopback connections of requests
// and probes, goroutine descriptors) and is flat after.
func TestChurnKeepsHeapFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 register/update/delete cycles take about 20 s; skipped with -short")
	}
	cycles := churnCycles
	if churnRaceBuild() {
		cycles = churnRaceCycles
	}
	checkpoints := churnCheckpoints(cycles)
	started := time.Now()
	ctx := context.Background()

	// Two loopback upstreams, so that an update can move an endpoint (a new
	// upstream drops its traffic and health state).
	backend := func(name string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name)
		}))
	}
	a, b := backend("a"), backend("b")
	defer a.Close()
	defer b.Close()

	// The default HTTP prober on the gateway's transport, which also says
	// which endpoint it probed, so that a health cycle can wait for the
	// first probe without sleeping. Sends never block: a late probe of a
	// removed endpoint must not hold up the scheduler.
	probed := make(chan string, 64)
	var prober HTTPProber
	o, err := New(
		WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		WithProber(ProberFunc(func(ctx context.Context, target ProbeTarget) error {
			err := prober.Probe(ctx, target)
			select {
			case probed <- target.EndpointID:
			default:
			}
			return err
		})),
	)
	require.NoError(t, err)
	defer o.Close()
	// Set before any endpoint exists: no probe can run before this line.
	prober.Client = &http.Client{Transport: o.transport, CheckRedirect: noRedirects}
	setNames := len(o.MetricsSet().ListMetricNames())

	waitProbe := func(id string) {
		t.Helper()
		deadline := time.NewTimer(10 * time.Second)
		defer deadline.Stop()
		for {
			select {
			case got := <-probed:
				if got == id {
					return
				}
			case <-deadline.C:
				t.Fatalf("%s was not probed within 10s of its registration", id)
			}
		}
	}

	serve := func(id, want string) {
		t.Helper()
		rec := httptest.NewRecorder()
		o.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/orchestrator/"+id+"/v1/x", nil))
		if rec.Code != http.StatusOK || rec.Body.String() != want {
			t.Fatalf("GET %s: got %d %q; want 200 %q", id, rec.Code, rec.Body.String(), want)
		}
	}

	cycle := func(i int) {
		t.Helper()
		id := fmt.Sprintf("svc-%d", i)
		health := i%churnHealthEvery == 0
		ep := Endpoint{ID: id, Name: id, Version: "v1", URL: a.URL, Timeout: Duration(5 * time.Second)}
		if health {
			ep.HealthCheckPath = "/healthz"
			ep.HealthCheck = &HealthCheckConfig{Interval: Duration(20 * time.Millisecond)}
		}
		if health {
			// Room for this endpoint's probe reports: only late probes of
			// earlier endpoints can be waiting, and none is waited for.
			for len(probed) > 0 {
				<-probed
			}
		}
		_, err := o.Register(ctx, ep)
		require.NoError(t, err, "Register %s", id)
		if health {
			// Its first probe has run, so the scheduler holds the endpoint
			// for the next one (queued, or about to be): the update and the
			// removal below must replace and then drop that entry.
			waitProbe(id)
			require.Equal(t, 1, o.checker.Len(), "scheduler entries while %s is checked", id)
		}

		// Even cycles move the endpoint to the other upstream (fresh traffic
		// and health state, a new probe scheduled); odd ones change only
		// its timeout (the state carries over). Both rebuild the breaker.
		want := "a"
		if i%2 == 0 {
			ep.URL, want = b.URL, "b"
		}
		ep.Timeout = Duration(6 * time.Second)
		_, err = o.Update(ctx, ep)
		require.NoError(t, err, "Update %s", id)

		// One request: creates the failsafe breaker, the request counter
		// and the latency histogram of the endpoint.
		serve(id, want)
		if i == 0 {
			var text strings.Builder
			o.WritePrometheus(&text)
			require.Contains(t, text.String(), `orchestrator_requests_total{endpoint="svc-0",method="GET",status="200"} 1`,
				"the cycle does not create the series it means to")
			require.Contains(t, text.String(), `orchestrator_request_duration_seconds_count{endpoint="svc-0"} 1`)
		}

		require.NoError(t, o.Deregister(ctx, id), "Deregister %s", id)
	}

	// syncWatch waits until the gateway has applied every registry event
	// so far: events are delivered in order, so once a sentinel written
	// straight to the registry is routed, the events before it are applied
	// (and its removal likewise). No event is then left queued in the
	// watcher to be counted as kept.
	syncWatch := func() {
		t.Helper()
		const sentinel = "churn-sentinel"
		poll := func(want bool) {
			deadline := time.Now().Add(10 * time.Second)
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for {
				_, err := o.Endpoint(sentinel)
				if (err == nil) == want {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("registry watch: sentinel routed = %v after 10s; want %v", !want, want)
				}
				<-tick.C
			}
		}
		_, err := o.Registry().Put(ctx, Registration{Endpoint: Endpoint{ID: sentinel, Name: sentinel, URL: a.URL}.Normalized(), Source: SourceAPI}, IfAbsent)
		require.NoError(t, err)
		poll(true)
		_, err = o.Registry().Delete(ctx, sentinel, IfAny)
		require.NoError(t, err)
		poll(false)
	}

	// noSeriesLeft checks that no removed endpoint is written or named.
	noSeriesLeft := func(at int) {
		t.Helper()
		var text strings.Builder
		o.WritePrometheus(&text)
		for _, line := range strings.Split(text.String(), "\n") {
			require.NotContains(t, line, `endpoint="svc-`, "after %d cycles the exposition still has a series of a removed endpoint", at)
			require.NotContains(t, line, `endpoint="churn-`, "after %d cycles the exposition still has the sentinel's series", at)
		}
		require.Contains(t, text.String(), `orchestrator_registry_endpoints{source="api"} 0`)
		assert.Len(t, o.MetricsSet().ListMetricNames(), setNames, "after %d cycles the metrics set holds other names than at the start", at)
	}

	var base runtime.MemStats
	next := 0 // index in churnCheckpoints
	for i := 0; ; i++ {
		if next < len(checkpoints) && i == checkpoints[next] {
			syncWatch()
			noSeriesLeft(i)
			found, ms := churnHeap()
			t.Logf("after %6d cycles: live HeapAlloc %7d B, HeapInuse %7d B; before GC HeapAlloc %7d B, HeapInuse %7d B, GC goal %7d B; %3d GCs, %.1fs",
				i, ms.HeapAlloc, ms.HeapInuse, found.HeapAlloc, found.HeapInuse, found.NextGC, found.NumGC, time.Since(started).Seconds())
			if i == churnWarmup {
				base = ms
			}
			next++
		}
		if i == churnWarmup+cycles {
			break
		}
		cycle(i)
	}
	_, end := churnHeap()

	growth := int64(end.HeapAlloc) - int64(base.HeapAlloc)
	bound := int64(cycles * churnBytesPerCycle)
	t.Logf("HeapAlloc over %d cycles after warm-up: %d B -> %d B, growth %d B (%.2f B/cycle); bound %d B",
		cycles, base.HeapAlloc, end.HeapAlloc, growth, float64(growth)/float64(cycles), bound)
	assert.Less(t, growth, bound, "live heap grew %d B over %d cycles (%.1f B/cycle): something a cycle creates outlives its endpoint",
		growth, cycles, float64(growth)/float64(cycles))

	// Everything a cycle created is gone: the registry, the route table
	// and its indexes, the writer's maps and the health scheduler.
	list, err := o.Registry().List(ctx)
	require.NoError(t, err)
	assert.Empty(t, list.Registrations, "registry")
	assert.Empty(t, o.Routes(), "routes")
	assert.Empty(t, o.Endpoints(), "endpoints")
	tbl := o.table.Load()
	assert.Zero(t, tbl.ids.Len(), "route table ids")
	assert.Zero(t, tbl.paths.Len(), "route table paths")
	o.mu.Lock()
	assert.Empty(t, o.entries, "entries")
	assert.Empty(t, o.byName, "byName")
	assert.Empty(t, o.dirtyIDs, "dirtyIDs")
	assert.Empty(t, o.dirtyNames, "dirtyNames")
	o.mu.Unlock()
	assert.Zero(t, o.checker.Len(), "health scheduler entries")
}
