package main

// The scale mode (-scale): orchestratord with -scale-endpoints endpoints
// (10,000 by default), against the scale targets of issue 6, point 3.
//
//	go run ./internal/loadbench -scale
//
// It starts the backend role, then orchestratord twice on 127.0.0.1 with
// --port 0, each on a generated config of endpoints svc0..svcN-1 (version
// v1, all to the backend, access log off):
//
//  1. health checks off (health_check: {enabled: false}), the config file
//     watched. It reads VmRSS from /proc/<pid>/status after start and after
//     -scale-requests requests spread round-robin over every endpoint; times
//     three config reloads with every endpoint changed (preserve_host
//     flipped: not its timeout, see scaleConfig), from
//     the file write until GET /config/status shows reload_count one higher
//     (polled every 5 ms: the figure includes the watcher's 150 ms debounce,
//     printed beside it), and three POST /config/reload after a rewrite
//     (the response time, no debounce); then times 20 admin registrations
//     (POST /registry/endpoints) with the N endpoints present.
//  2. health checks on (interval 1s, health_check_path /health on every
//     endpoint; the backend answers it 200): once every endpoint is healthy,
//     it samples go_goroutines from /metrics and VmRSS once a second, ten
//     times, and reports the maximum of each and the RSS of every sample
//     (a start-up peak that settles is bounded; a climb is not).
//
// It prints a markdown table with each figure, its target and whether it is
// met. Only the median of each repeated measurement is in the table; the
// single values are printed under it.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// scaleDebounce is orchestratord's config watch debounce
// (reloadDebounce in internal/server/reload.go).
const scaleDebounce = 150 * time.Millisecond

// The scale targets of issue 6. The issue asks health checking to have
// "bounded goroutines and memory" without numbers: the bounds here are ours,
// fixed before the first run (one goroutine per endpoint would be 10,000).
const (
	scaleRSSTarget        = 64 << 20 // bytes
	scaleReloadTarget     = 250 * time.Millisecond
	scaleRegisterTarget   = 5 * time.Millisecond
	scaleGoroutinesTarget = 1000
	scaleReloads          = 3
	scaleRegistrations    = 20
	scaleHealthSamples    = 10
)

// scaleRow is one line of the scale report.
type scaleRow struct {
	figure string
	value  float64 // in unit
	unit   string  // "MiB", "ms" or "" (a count)
	target float64 // the value must be below it
}

func (r scaleRow) met() bool { return r.value < r.target }

func (r scaleRow) format(v float64) string {
	switch r.unit {
	case "MiB":
		return fmt.Sprintf("%.1f MiB", v)
	case "ms":
		return fmt.Sprintf("%.2f ms", v)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

// scale runs the scale mode and prints its report to stdout; progress goes
// to stderr.
func scale(ctx context.Context, cfg config, stdout, stderr io.Writer) ([]scaleRow, error) {
	if runtime.GOOS != "linux" {
		return nil, errors.New("loadbench reads /proc/<pid>/status: Linux only")
	}
	timeout := cfg.timeout
	if timeout == 0 {
		timeout = 15 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	n := cfg.scaleEndpoints

	dir, err := os.MkdirTemp("", "loadbench-scale-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(stderr, "loadbench: building into %s\n", dir)
	bins, err := build(ctx, dir, cfg.orchestratord)
	if err != nil {
		return nil, err
	}
	ps := &procs{}
	defer ps.stopAll()
	env := childEnv()
	backend, err := ps.start(ctx, "backend", bins.loadbench, filepath.Join(dir, "backend.log"), env,
		"-role=backend", "-size="+strconv.Itoa(payloadSize))
	if err != nil {
		return nil, err
	}
	backendURL := "http://" + backend.addr
	client, tr := newClient(32)
	defer tr.CloseIdleConnections()

	var rows []scaleRow
	var notes []string
	note := func(format string, a ...any) { notes = append(notes, fmt.Sprintf(format, a...)) }

	// Run 1: health checks off.
	confPath := filepath.Join(dir, "scale.yaml")
	if err := os.WriteFile(confPath, scaleConfig(backendURL, n, false, false), 0o600); err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "loadbench: starting orchestratord with %d endpoints, health checks off\n", n)
	t0 := time.Now()
	gw, err := ps.start(ctx, "orchestratord", bins.orchestratord, filepath.Join(dir, "orchestratord.log"), env,
		"--config", confPath, "--host", "127.0.0.1", "--port", "0", "--watch=true")
	if err != nil {
		return nil, err
	}
	base := "http://" + gw.addr
	if err := waitServing(ctx, client, gw, fmt.Sprintf("%s/orchestrator/svc%d/v1/fast", base, n-1)); err != nil {
		return nil, err
	}
	note("Start-up with %d endpoints, health checks off (process start until svc%d/v1 answers 200): %.0f ms.",
		n, n-1, ms(time.Since(t0)))
	rss, err := vmRSS(gw.pid())
	if err != nil {
		return nil, err
	}
	rows = append(rows, scaleRow{"RSS after start, health checks off", mib(rss), "MiB", mib(scaleRSSTarget)})

	fmt.Fprintf(stderr, "loadbench: %d requests over %d endpoints\n", cfg.scaleRequests, n)
	ok, errs, firstErr, elapsed := spread(ctx, client, base, n, cfg.scaleRequests)
	if ok == 0 {
		return nil, fmt.Errorf("no request succeeded: %s", orCtx(ctx, firstErr))
	}
	if rss, err = vmRSS(gw.pid()); err != nil {
		return nil, err
	}
	rows = append(rows, scaleRow{fmt.Sprintf("RSS after %d requests over all endpoints", cfg.scaleRequests), mib(rss), "MiB", mib(scaleRSSTarget)})
	note("The %d requests (32 connections, endpoint i%%%d for request i): %d answered 200, %d failed%s, in %.1f s.",
		cfg.scaleRequests, n, ok, errs, firstErrNote(firstErr), elapsed.Seconds())
	if g, err := goroutines(ctx, client, base); err == nil {
		note("go_goroutines with health checks off, after the requests: %d.", g)
	}

	// Reloads through the file watch: from the write to reload_count+1.
	preserveHost := false
	var watched []time.Duration
	for i := range scaleReloads {
		fmt.Fprintf(stderr, "loadbench: reload %d/%d through the file watch\n", i+1, scaleReloads)
		before, err := reloadCount(ctx, client, base)
		if err != nil {
			return nil, err
		}
		preserveHost = !preserveHost
		data := scaleConfig(backendURL, n, preserveHost, false)
		start := time.Now()
		if err := os.WriteFile(confPath, data, 0o600); err != nil {
			return nil, err
		}
		if err := waitReloadCount(ctx, client, gw, base, before+1); err != nil {
			return nil, err
		}
		watched = append(watched, time.Since(start))
	}
	raw := medianDuration(watched)
	rows = append(rows,
		scaleRow{"config reload via the file watch: write to reload_count+1 (raw, includes the 150 ms debounce)", ms(raw), "ms", ms(scaleReloadTarget)},
		scaleRow{"the same minus the 150 ms debounce (subtracted here, explicitly)", ms(raw - scaleDebounce), "ms", ms(scaleReloadTarget)})
	note("Reloads through the file watch (every endpoint's preserve_host flipped), raw: %s; the debounce is %v.",
		fmtDurations(watched), scaleDebounce)

	// Reloads through POST /config/reload, right after a rewrite: the
	// watcher's debounced read comes after and finds the content applied.
	var posted []time.Duration
	for i := range scaleReloads {
		fmt.Fprintf(stderr, "loadbench: reload %d/%d through POST /config/reload\n", i+1, scaleReloads)
		before, err := reloadCount(ctx, client, base)
		if err != nil {
			return nil, err
		}
		preserveHost = !preserveHost
		if err := os.WriteFile(confPath, scaleConfig(backendURL, n, preserveHost, false), 0o600); err != nil {
			return nil, err
		}
		d, err := timedPost(ctx, client, base+"/config/reload", "", http.StatusOK)
		if err != nil {
			return nil, err
		}
		posted = append(posted, d)
		after, err := reloadCount(ctx, client, base)
		if err != nil {
			return nil, err
		}
		if after != before+1 {
			return nil, fmt.Errorf("POST /config/reload: reload_count %d, want %d", after, before+1)
		}
		// Let the watcher's debounced (no-op) read pass before the next
		// measurement.
		if err := pause(ctx, 2*scaleDebounce); err != nil {
			return nil, err
		}
	}
	rows = append(rows, scaleRow{"config reload via POST /config/reload: response time (no debounce)", ms(medianDuration(posted)), "ms", ms(scaleReloadTarget)})
	note("POST /config/reload after a rewrite changing every endpoint: %s.", fmtDurations(posted))

	// Admin registrations with the n endpoints present.
	fmt.Fprintf(stderr, "loadbench: %d admin registrations\n", scaleRegistrations)
	var regs []time.Duration
	for i := range scaleRegistrations {
		body := fmt.Sprintf(`{"name":"reg%d","version":"v1","url":%q}`, i, backendURL)
		d, err := timedPost(ctx, client, base+"/registry/endpoints", body, http.StatusCreated)
		if err != nil {
			return nil, err
		}
		regs = append(regs, d)
	}
	slices.Sort(regs)
	rows = append(rows,
		scaleRow{fmt.Sprintf("admin registration (POST /registry/endpoints), median of %d", scaleRegistrations), ms(medianDuration(regs)), "ms", ms(scaleRegisterTarget)},
		scaleRow{fmt.Sprintf("admin registration, p99 of %d (nearest rank: the slowest)", scaleRegistrations), ms(percentile(regs, 0.99)), "ms", ms(scaleRegisterTarget)})
	if err := stopProc(gw); err != nil {
		return nil, err
	}

	// Run 2: health checks on.
	confPath2 := filepath.Join(dir, "scale-health.yaml")
	if err := os.WriteFile(confPath2, scaleConfig(backendURL, n, false, true), 0o600); err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "loadbench: starting orchestratord with %d endpoints, health checks on (1s)\n", n)
	t0 = time.Now()
	gw, err = ps.start(ctx, "orchestratord-health", bins.orchestratord, filepath.Join(dir, "orchestratord-health.log"), env,
		"--config", confPath2, "--host", "127.0.0.1", "--port", "0", "--watch=false")
	if err != nil {
		return nil, err
	}
	base = "http://" + gw.addr
	if err := waitServing(ctx, client, gw, fmt.Sprintf("%s/orchestrator/svc%d/v1/fast", base, n-1)); err != nil {
		return nil, err
	}
	healthy, err := waitHealthy(ctx, client, gw, base, n)
	if err != nil {
		return nil, err
	}
	note("Health checks on: %d of %d endpoints healthy %.1f s after the process started.", healthy, n, time.Since(t0).Seconds())
	var maxG int
	var maxRSS int64
	var samples []string // RSS over time: "bounded" means it does not climb
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := range scaleHealthSamples {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-tick.C:
			}
		}
		rss, err := vmRSS(gw.pid())
		if err != nil {
			return nil, err
		}
		g, err := goroutines(ctx, client, base)
		if err != nil {
			return nil, err
		}
		maxRSS, maxG = max(maxRSS, rss), max(maxG, g)
		samples = append(samples, fmt.Sprintf("%.1f", mib(rss)))
	}
	note("Health checks on: RSS at the %d samples 1 s apart (a probe round each): %s MiB.",
		scaleHealthSamples, strings.Join(samples, ", "))
	rows = append(rows,
		scaleRow{fmt.Sprintf("goroutines (go_goroutines), health checks on every 1s, max of %d samples 1 s apart", scaleHealthSamples), float64(maxG), "", scaleGoroutinesTarget},
		scaleRow{"RSS, health checks on, max of the same samples", mib(maxRSS), "MiB", mib(scaleRSSTarget)})
	if err := stopProc(gw); err != nil {
		return nil, err
	}

	printScale(stdout, n, bins.source, rows, notes)
	return rows, nil
}

// scaleConfig is orchestratord's config with n endpoints svc0..svcN-1, all
// to the backend, each with preserve_host as given (a reload flips it to
// change every endpoint); health checks on (every 1s, on /health) or off.
//
// Not a per-endpoint timeout, which would be the obvious field to change
// (nor max_concurrent, which gives every endpoint a bulkhead and so changes
// what is measured):
// goccy/go-yaml decodes a TextUnmarshaler (orchestrator.Duration) by
// re-formatting the node, and its formatter walks every token of the file
// from the first, so a duration per endpoint makes parsing quadratic
// (10,000 endpoints with a timeout each: minutes). See BENCHMARKS.md.
func scaleConfig(backendURL string, n int, preserveHost, health bool) []byte {
	var b bytes.Buffer
	b.WriteString("# written by internal/loadbench -scale\nserver:\n  host: 127.0.0.1\nlogging:\n  level: info\n  format: json\n  access_log: false\n")
	if health {
		b.WriteString("health_check:\n  enabled: true\n  interval: 1s\n")
	} else {
		b.WriteString("health_check: {enabled: false}\n")
	}
	b.WriteString("endpoints:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: svc%d\n    version: v1\n    url: %q\n    preserve_host: %t\n", i, backendURL, preserveHost)
		if health {
			b.WriteString("    health_check_path: /health\n")
		}
	}
	return b.Bytes()
}

// waitServing polls url until it answers 200, for at most 2 minutes.
func waitServing(ctx context.Context, client *http.Client, p *proc, url string) error {
	return poll(ctx, p, 20*time.Millisecond, 2*time.Minute, func() (bool, error) {
		return once(ctx, client, scenarioByName["fast"], url) == nil, nil
	}, "answering "+url)
}

// waitReloadCount polls GET /config/status every 5 ms until reload_count
// reaches want, for at most 30 s.
func waitReloadCount(ctx context.Context, client *http.Client, p *proc, base string, want int64) error {
	return poll(ctx, p, 5*time.Millisecond, 30*time.Second, func() (bool, error) {
		c, err := reloadCount(ctx, client, base)
		return err == nil && c >= want, nil
	}, fmt.Sprintf("reload_count %d", want))
}

// waitHealthy polls GET /health/summary until n endpoints are healthy, for
// at most 2 minutes; it returns how many are.
func waitHealthy(ctx context.Context, client *http.Client, p *proc, base string, n int) (int, error) {
	healthy := 0
	err := poll(ctx, p, 100*time.Millisecond, 2*time.Minute, func() (bool, error) {
		var s struct {
			ByStatus map[string]int `json:"by_status"`
		}
		if err := getJSON(ctx, client, base+"/health/summary", &s); err != nil {
			return false, nil
		}
		healthy = s.ByStatus["healthy"]
		return healthy >= n, nil
	}, fmt.Sprintf("%d healthy endpoints", n))
	return healthy, err
}

// poll calls cond every interval until it reports true, p exits, ctx
// ends or limit passes.
func poll(ctx context.Context, p *proc, interval, limit time.Duration, cond func() (bool, error), what string) error {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		done, err := cond()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if err := p.alive(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not %s within %v", p.name, what, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// pause waits d unless ctx ends first.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// spread sends total GETs of /fast over 32 connections, request i to
// endpoint svc(i%n).
func spread(ctx context.Context, client *http.Client, base string, n, total int) (ok, errs int, firstErr string, elapsed time.Duration) {
	var (
		next     atomic.Int64
		okCount  atomic.Int64
		errCount atomic.Int64
		once1    sync.Once
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				url := fmt.Sprintf("%s/orchestrator/svc%d/v1/fast", base, i%n)
				if err := once(ctx, client, scenarioByName["fast"], url); err != nil {
					errCount.Add(1)
					once1.Do(func() { firstErr = err.Error() })
					continue
				}
				okCount.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(okCount.Load()), int(errCount.Load()), firstErr, time.Since(start)
}

// timedPost POSTs body (JSON) to url, reads the whole answer and returns
// the time from sending to the end of the answer; any status but want is an
// error.
func timedPost(ctx context.Context, client *http.Client, url, body string, want int) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != want {
		return 0, fmt.Errorf("POST %s: status %d, want %d: %s", url, resp.StatusCode, want, bytes.TrimSpace(b))
	}
	return d, nil
}

func getJSON(ctx context.Context, client *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// reloadCount is reload_count from GET /config/status.
func reloadCount(ctx context.Context, client *http.Client, base string) (int64, error) {
	var s struct {
		ReloadCount *int64 `json:"reload_count"`
	}
	if err := getJSON(ctx, client, base+"/config/status", &s); err != nil {
		return 0, err
	}
	if s.ReloadCount == nil {
		return 0, errors.New("GET /config/status: no reload_count")
	}
	return *s.ReloadCount, nil
}

// goroutines is the go_goroutines sample of the gateway's /metrics.
func goroutines(ctx context.Context, client *http.Client, base string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	g := -1
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok && g < 0 {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("/metrics: go_goroutines %q: %v", v, err)
			}
			g = int(f)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if g < 0 {
		return 0, errors.New("/metrics: no go_goroutines line")
	}
	return g, nil
}

// vmRSS is a process's resident set size, from VmRSS in
// /proc/<pid>/status, in bytes.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return kb << 10, nil
				}
			}
			return 0, fmt.Errorf("/proc/%d/status: VmRSS %q", pid, v)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// stopProc kills one process and waits (bounded) for it; stopAll may do it
// again, harmlessly.
func stopProc(p *proc) error {
	p.stdin.Close()
	p.cmd.Process.Kill()
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("%s did not exit within 5 s of SIGKILL", p.name)
	}
}

func printScale(w io.Writer, n int, source string, rows []scaleRow, notes []string) {
	fmt.Fprintf(w, "loadbench -scale %s: %s/%s, %d CPUs (%s), GOMAXPROCS %d, %s\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), cpuModel(), runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Fprintf(w, "orchestratord: %s; %d endpoints (svc0..svc%d, v1), access log off.\n", source, n, n-1)
	fmt.Fprintf(w, "Load average (1, 5, 15 min) at the end: %s.\n\n", loadAvg())
	fmt.Fprintf(w, "| figure | value | target | met |\n|---|---|---|---|\n")
	for _, r := range rows {
		met := "not met"
		if r.met() {
			met = "met"
		}
		fmt.Fprintf(w, "| %s | %s | < %s | %s |\n", r.figure, r.format(r.value), r.format(r.target), met)
	}
	fmt.Fprintln(w)
	for _, s := range notes {
		fmt.Fprintf(w, "- %s\n", s)
	}
}

func medianDuration(ds []time.Duration) time.Duration {
	fs := make([]float64, len(ds))
	for i, d := range ds {
		fs[i] = float64(d)
	}
	return time.Duration(median(fs))
}

func fmtDurations(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = fmt.Sprintf("%.1f ms", ms(d))
	}
	return strings.Join(s, ", ")
}

func firstErrNote(s string) string {
	if s == "" {
		return ""
	}
	return " (first: " + s + ")"
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }
