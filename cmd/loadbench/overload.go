package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"
)

// The overload mode (-overload): a backend that serves -capacity requests
// at once, each for -service, and queues the rest, so that its latency
// under load is its queue's. orchestratord fronts it with three endpoints:
// no limit, a fixed max_concurrent of -capacity, and adaptive_concurrency.
// Each in turn gets -overload-conns closed-loop connections (a client told
// 503 waits 5 ms before its next request, as one that backs off a little
// would). It reports, per endpoint, the goodput (answers 200 per second),
// the latency of the admitted requests and the requests shed, against the
// unloaded latency (one connection) and the backend's capacity
// (capacity / unloaded latency).

// overloadRow is one endpoint's measured window.
type overloadRow struct {
	name          string
	goodput, shed float64 // per second
	p50, p99      time.Duration
	errors        int
}

// overloadReport is a whole run.
type overloadReport struct {
	unloaded time.Duration // p50 of one connection through the unlimited endpoint
	capacity float64       // requests per second the backend can serve
	rows     []overloadRow
}

func overloadRun(ctx context.Context, cfg config, stdout, stderr io.Writer) (overloadReport, error) {
	var rep overloadReport
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute+8*(cfg.duration+cfg.warmup))
	defer cancel()
	dir, bins, err := buildInTemp(ctx, "loadbench-overload-", cfg, stderr)
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(dir)
	ps := &procs{}
	defer ps.stopAll()
	env := childEnv()
	backend, err := ps.start(ctx, "backend", bins.loadbench, filepath.Join(dir, "backend.log"), env,
		"-role=backend", "-size="+strconv.Itoa(payloadSize), "-capacity="+strconv.Itoa(cfg.capacity), "-service="+cfg.service.String())
	if err != nil {
		return rep, err
	}
	conf := fmt.Appendf(nil, `# written by cmd/loadbench -overload
server: {host: 127.0.0.1}
logging: {level: warn, format: json, access_log: false}
health_check: {enabled: false}
circuit_breaker: {disabled: true}
endpoints:
  - {name: open, url: "http://%[1]s"}
  - {name: fixed, url: "http://%[1]s", max_concurrent: %[2]d}
  - name: adaptive
    url: "http://%[1]s"
    adaptive_concurrency: {min_limit: 1, max_limit: %[3]d, initial_limit: %[2]d}
`, backend.addr, cfg.capacity, cfg.overloadConns)
	gw, err := ps.startGateway(ctx, bins, dir, "overload", conf, env)
	if err != nil {
		return rep, err
	}
	base := "http://" + gw.addr + "/orchestrator/"
	client, tr := newClient(cfg.overloadConns)
	defer tr.CloseIdleConnections()

	// Unloaded: one connection.
	one := overloadDrive(ctx, client, base+"open/queue", 1, cfg.duration)
	rep.unloaded = one.p50
	if rep.unloaded <= 0 {
		return rep, fmt.Errorf("no answer through the unlimited endpoint (%d errors)", one.errors)
	}
	rep.capacity = float64(cfg.capacity) / rep.unloaded.Seconds()
	for _, name := range []string{"open", "fixed", "adaptive"} {
		overloadDrive(ctx, client, base+name+"/queue", cfg.overloadConns, cfg.warmup) // the adaptive limiter learns here
		row := overloadDrive(ctx, client, base+name+"/queue", cfg.overloadConns, cfg.duration)
		row.name = name
		rep.rows = append(rep.rows, row)
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
	}

	fmt.Fprintf(stdout, "### overload: a backend serving %d at once for %s each, queueing the rest; %d closed-loop connections\n\n",
		cfg.capacity, cfg.service, cfg.overloadConns)
	fmt.Fprintf(stdout, "Unloaded latency (one connection, p50): %s; capacity %d / %s = %.0f req/s.\n\n",
		fmtLatency(rep.unloaded), cfg.capacity, fmtLatency(rep.unloaded), rep.capacity)
	fmt.Fprintf(stdout, "| endpoint | goodput (200/s) | of capacity | p50 admitted | p99 admitted | p99 / unloaded | shed (503/s) | errors |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range rep.rows {
		fmt.Fprintf(stdout, "| %s | %.0f | %.0f%% | %s | %s | %.1fx | %.0f | %d |\n", r.name, r.goodput, 100*r.goodput/rep.capacity,
			fmtLatency(r.p50), fmtLatency(r.p99), float64(r.p99)/float64(rep.unloaded), r.shed, r.errors)
	}
	return rep, nil
}

// overloadDrive runs conns closed-loop connections against url for d.
func overloadDrive(ctx context.Context, client *http.Client, url string, conns int, d time.Duration) overloadRow {
	var (
		mu      sync.Mutex
		lat     []time.Duration
		shed    int
		errs    int
		wg      sync.WaitGroup
		started = time.Now()
	)
	deadline := started.Add(d)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var myShed, myErrs int
			pause := time.NewTimer(0)
			defer pause.Stop()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				status, err := get(ctx, client, url)
				switch {
				case err != nil:
					myErrs++
				case status == http.StatusOK:
					mine = append(mine, time.Since(t0))
				case status == http.StatusServiceUnavailable:
					myShed++
					pause.Reset(5 * time.Millisecond)
					select {
					case <-pause.C:
					case <-ctx.Done():
					}
				default:
					myErrs++
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			shed += myShed
			errs += myErrs
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(started).Seconds()
	slices.Sort(lat)
	return overloadRow{goodput: float64(len(lat)) / elapsed, shed: float64(shed) / elapsed,
		p50: percentile(lat, 0.50), p99: percentile(lat, 0.99), errors: errs}
}

// get sends a GET and reads the whole answer, returning its status.
func get(ctx context.Context, client *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}
