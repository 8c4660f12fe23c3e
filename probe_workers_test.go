package orchestrator_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

// probeSchedulerGoroutines counts the goroutines that run the probe
// scheduler's code (internal/schedule): its loop and its workers, of every
// gateway alive. A goroutine is counted by the frames it runs, not by the
// "created by" line that names its parent.
func probeSchedulerGoroutines() int {
	n := 0
	for _, g := range strings.Split(polStacks(), "\n\n") {
		for _, line := range strings.Split(g, "\n") {
			if !strings.HasPrefix(line, "created by ") && strings.Contains(line, "orchestrator/internal/schedule.") {
				n++
				break
			}
		}
	}
	return n
}

// probeWaitAtMost polls count until it returns at most want or polWait has
// passed, and returns its last answer. It polls on the test's goroutine, not
// through require.Eventually, which would run count on a goroutine of its own.
func probeWaitAtMost(count func() int, want int) int {
	deadline := time.Now().Add(polWait)
	for {
		n := count()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		<-time.After(polTick)
	}
}

func TestProbeWorkersStartWithTheFirstProbedEndpoint(t *testing.T) {
	// Given an upstream with a health check path, started before counting
	backend := newPolBackend(t, "svc", http.StatusOK)
	before := runtime.NumGoroutine()
	schedBefore := probeSchedulerGoroutines()

	// When a gateway starts with the default prober and only an endpoint
	// without a health check path, which the default prober never probes
	o, err := orchestrator.New(
		orchestrator.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Interval: polDuration(time.Hour)}),
		orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "nopath", URL: "http://127.0.0.1:9070"}),
	)
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })

	// Then it starts no probe goroutine, and only a few goroutines in all
	// (not a pool of WithHealthCheckConcurrency's 32 idle workers)
	afterNew := runtime.NumGoroutine()
	t.Logf("goroutines: %d before New, %d after New with no endpoint to probe", before, afterNew)
	require.Equal(t, schedBefore, probeSchedulerGoroutines(), "probe scheduler goroutines after New: got %d more; want none\n%s",
		probeSchedulerGoroutines()-schedBefore, polStacks())
	assert.LessOrEqual(t, afterNew-before, 4, "goroutines New started: got %d; want a few, no probe workers", afterNew-before)

	// When the first endpoint that needs probing is registered
	_, err = o.Register(context.Background(), orchestrator.Endpoint{Name: "svc", URL: backend.URL, HealthCheckPath: "/health"})
	require.NoError(t, err)

	// Then it is probed, by goroutines started for it, no more of them
	// than the concurrency bound (32) and the scheduler's loop
	polWaitStatus(t, o, "svc", orchestrator.StatusHealthy)
	started := probeSchedulerGoroutines() - schedBefore
	t.Logf("goroutines: %d after the first probed endpoint (%d probe scheduler goroutines)", runtime.NumGoroutine(), started)
	assert.Positive(t, started, "probe scheduler goroutines once an endpoint needs probing: got none; want some")
	assert.LessOrEqual(t, started, 33, "probe scheduler goroutines: got %d; want at most 32 workers and a loop", started)

	// When the gateway is closed
	require.NoError(t, o.Close())

	// Then every goroutine it started is gone
	got := probeWaitAtMost(probeSchedulerGoroutines, schedBefore)
	require.Equal(t, schedBefore, got, "probe scheduler goroutines after Close: got %d; want %d\n%s", got, schedBefore, polStacks())
	got = probeWaitAtMost(runtime.NumGoroutine, before)
	t.Logf("goroutines: %d after Close", got)
	require.LessOrEqual(t, got, before, "goroutines after Close: got %d; want at most %d\n%s", got, before, polStacks())

	// And an endpoint registered on the closed gateway starts none again
	o.Register(context.Background(), orchestrator.Endpoint{Name: "late", URL: "http://127.0.0.1:9071", HealthCheckPath: "/health"})
	got = probeSchedulerGoroutines()
	assert.Equal(t, schedBefore, got, "probe scheduler goroutines after a registration on a closed gateway: got %d; want %d\n%s", got, schedBefore, polStacks())
}
