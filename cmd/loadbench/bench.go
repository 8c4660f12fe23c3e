package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// target is one thing the load is sent to.
type target struct {
	name  string
	url   string // prepended to the scenario's path
	proxy *proc  // nil for direct
}

// sample is what one target measured in one round.
type sample struct {
	round      int
	rps        float64
	p50, p99   time.Duration
	proxyCPU   time.Duration // per request; 0 for direct
	backendCPU time.Duration // per request
	ok, errors int
	firstErr   string
}

// scenarioReport is one scenario's samples, by target, one per round.
type scenarioReport struct {
	scenario scenario
	samples  map[string][]sample
	run      []sample // in the order run, for the per-round rows
	runNames []string
}

// bench runs the whole benchmark and prints its report to stdout; progress
// goes to stderr.
func bench(ctx context.Context, cfg config, stdout, stderr io.Writer) ([]scenarioReport, error) {
	if runtime.GOOS != "linux" {
		return nil, errors.New("loadbench reads /proc/<pid>/stat: Linux only")
	}
	timeout := cfg.timeout
	if timeout == 0 {
		planned := time.Duration(len(cfg.scenarios)*cfg.rounds*len(cfg.targets)) * (cfg.duration + cfg.warmup)
		timeout = 6*time.Minute + 2*planned
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	dir, bins, err := buildInTemp(ctx, "loadbench-", cfg, stderr)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	ps := &procs{}
	defer ps.stopAll()
	env := childEnv()
	backend, err := ps.start(ctx, "backend", bins.loadbench, filepath.Join(dir, "backend.log"), env,
		"-role=backend", "-size="+strconv.Itoa(payloadSize), "-delay=5ms")
	if err != nil {
		return nil, err
	}
	backendURL := "http://" + backend.addr
	var targets []*target
	gatewayLogs := map[string]string{}
	for _, name := range cfg.targets {
		t := &target{name: name}
		logPath := filepath.Join(dir, strings.ReplaceAll(name, "+", "-")+".log")
		switch name {
		case targetDirect:
			t.url = backendURL
		case targetBare, targetBarePool:
			args := []string{"-role=bare", "-target=" + backendURL}
			if name == targetBarePool {
				args = append(args, "-pool")
			}
			if t.proxy, err = ps.start(ctx, name, bins.loadbench, logPath, env, args...); err != nil {
				return nil, err
			}
			t.url = "http://" + t.proxy.addr
		case targetGateway, targetGatewayLog, targetGateway3, targetBaseline:
			confPath := filepath.Join(dir, strings.ReplaceAll(name, "+", "-")+".yaml")
			conf := gatewayConfig(backendURL, name == targetGatewayLog)
			if name == targetGateway3 {
				conf = threeTargetConfig(backendURL)
			}
			if err := os.WriteFile(confPath, conf, 0o600); err != nil {
				return nil, err
			}
			bin := bins.orchestratord
			if name == targetBaseline {
				if bin, err = filepath.Abs(cfg.baseline); err != nil {
					return nil, err
				}
			}
			if t.proxy, err = ps.start(ctx, name, bin, logPath, env,
				"--config", confPath, "--host", "127.0.0.1", "--port", "0", "--watch=false"); err != nil {
				return nil, err
			}
			t.url = "http://" + t.proxy.addr + "/orchestrator/bench/v1"
			gatewayLogs[name] = logPath
		}
		if err := waitReady(ctx, t); err != nil {
			return nil, err
		}
		targets = append(targets, t)
	}

	tck, tckSource := clockTicks(ctx)
	printHeader(stdout, cfg, tck, tckSource, bins.source)
	var reports []scenarioReport
	for _, name := range cfg.scenarios {
		sc := scenarioByName[name]
		rep, err := runScenario(ctx, cfg, sc, targets, backend, tck, stderr)
		if err != nil {
			return reports, err
		}
		reports = append(reports, rep)
		printScenario(stdout, cfg, rep)
	}
	for _, name := range cfg.targets {
		if path, ok := gatewayLogs[name]; ok {
			lines, size := countLines(path)
			fmt.Fprintf(stdout, "%s wrote %d log lines (%.1f MiB) to its stderr (a file).\n", name, lines, float64(size)/(1<<20))
		}
	}
	fmt.Fprintf(stdout, "Load average (1, 5, 15 min) after the load: %s.\n", loadAvg())
	return reports, nil
}

// gatewayConfig is orchestratord's config: one endpoint to the backend,
// health checks off, no admin token; the circuit breaker, routing, health
// state and metrics stay on, as they are by default.
func gatewayConfig(backendURL string, accessLog bool) []byte {
	return fmt.Appendf(nil, `# written by cmd/loadbench
server:
  host: 127.0.0.1
logging:
  level: info
  format: json
  access_log: %t
health_check:
  enabled: false
endpoints:
  - name: bench
    version: v1
    url: %q
`, accessLog, backendURL)
}

// threeTargetConfig is gatewayConfig with the one url as three targets,
// the backend under /t/a, /t/b and /t/c (it strips the prefix), balanced
// round robin, with retries (two attempts) and outlier detection on:
// everything an endpoint of several targets pays for per request.
func threeTargetConfig(backendURL string) []byte {
	return fmt.Appendf(nil, `# written by cmd/loadbench
server:
  host: 127.0.0.1
logging:
  level: info
  format: json
  access_log: false
health_check:
  enabled: false
endpoints:
  - name: bench
    version: v1
    targets:
      - {id: a, url: %q}
      - {id: b, url: %q}
      - {id: c, url: %q}
    retry:
      attempts: 2
`, backendURL+"/t/a", backendURL+"/t/b", backendURL+"/t/c")
}

// waitReady polls the target with the fast request until it answers 200,
// for at most 10 s.
func waitReady(ctx context.Context, t *target) error {
	client, tr := newClient(1)
	defer tr.CloseIdleConnections()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		last = once(ctx, client, scenarioByName["fast"], t.url+"/fast")
		if last == nil {
			return nil
		}
		if t.proxy != nil {
			if err := t.proxy.alive(); err != nil {
				return err
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is not answering: %v", t.name, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// runScenario runs cfg.rounds rounds; round r sends the load to the
// targets in their order rotated by r.
func runScenario(ctx context.Context, cfg config, sc scenario, targets []*target, backend *proc, tck float64, stderr io.Writer) (scenarioReport, error) {
	rep := scenarioReport{scenario: sc, samples: map[string][]sample{}}
	for r := range cfg.rounds {
		for i := range targets {
			t := targets[(i+r)%len(targets)]
			fmt.Fprintf(stderr, "loadbench: %s round %d/%d: %s\n", sc.name, r+1, cfg.rounds, t.name)
			s, err := measure(ctx, cfg, sc, t, backend, tck)
			if err != nil {
				return rep, fmt.Errorf("%s, round %d, %s: %w", sc.name, r+1, t.name, err)
			}
			s.round = r + 1
			rep.samples[t.name] = append(rep.samples[t.name], s)
			rep.run = append(rep.run, s)
			rep.runNames = append(rep.runNames, t.name)
		}
	}
	return rep, nil
}

// measure warms the target up, then drives it for cfg.duration, reading
// the proxy's and the backend's CPU time just before and just after.
func measure(ctx context.Context, cfg config, sc scenario, t *target, backend *proc, tck float64) (sample, error) {
	client, tr := newClient(sc.conns)
	defer tr.CloseIdleConnections()
	url := t.url + sc.path
	if cfg.warmup > 0 {
		if w := drive(ctx, client, url, sc, cfg.warmup); w.ok == 0 {
			return sample{}, fmt.Errorf("no request succeeded in the warm-up: %s", orCtx(ctx, w.firstErr))
		}
	}
	proxyPID := 0
	if t.proxy != nil {
		proxyPID = t.proxy.pid()
	}
	p0, b0, err := readTicks(proxyPID, backend.pid())
	if err != nil {
		return sample{}, err
	}
	res := drive(ctx, client, url, sc, cfg.duration)
	p1, b1, err := readTicks(proxyPID, backend.pid())
	if err != nil {
		return sample{}, err
	}
	if err := ctx.Err(); err != nil {
		return sample{}, err
	}
	for _, p := range []*proc{t.proxy, backend} {
		if p != nil {
			if err := p.alive(); err != nil {
				return sample{}, err
			}
		}
	}
	if res.ok == 0 {
		return sample{}, fmt.Errorf("no request succeeded: %s", res.firstErr)
	}
	slices.Sort(res.latencies)
	served := float64(res.ok + res.errors)
	perReq := func(ticks uint64) time.Duration {
		return time.Duration(float64(ticks) / tck * float64(time.Second) / served)
	}
	s := sample{
		rps:        float64(res.ok) / res.elapsed.Seconds(),
		p50:        percentile(res.latencies, 0.50),
		p99:        percentile(res.latencies, 0.99),
		backendCPU: perReq(b1 - b0),
		ok:         res.ok,
		errors:     res.errors,
		firstErr:   res.firstErr,
	}
	if t.proxy != nil {
		s.proxyCPU = perReq(p1 - p0)
	}
	return s, nil
}

func orCtx(ctx context.Context, msg string) string {
	if err := ctx.Err(); err != nil {
		return err.Error()
	}
	return msg
}

// readTicks reads the proxy's (0: none) and the backend's CPU ticks.
func readTicks(proxyPID, backendPID int) (proxy, backend uint64, err error) {
	if proxyPID != 0 {
		if proxy, err = cpuTicks(proxyPID); err != nil {
			return 0, 0, err
		}
	}
	backend, err = cpuTicks(backendPID)
	return proxy, backend, err
}

// countLines counts a file's lines and bytes.
func countLines(path string) (lines, size int64) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		lines += int64(bytes.Count(buf[:n], []byte{'\n'}))
		size += int64(n)
		if err != nil {
			return lines, size
		}
	}
}

// The report.

func printHeader(w io.Writer, cfg config, tck float64, tckSource, source string) {
	fmt.Fprintf(w, "loadbench %s: %s/%s, %d CPUs (%s), GOMAXPROCS %d, %s\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), cpuModel(), runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Fprintf(w, "orchestratord: %s.\n", source)
	fmt.Fprintf(w, "CPU time from /proc/<pid>/stat (utime+stime) at %g ticks/s (%s): %.0f ms per reading.\n",
		tck, tckSource, 1000/tck)
	fmt.Fprintf(w, "Each round: %v warm-up, then %v measured per target; targets rotate from round to round.\n",
		cfg.warmup, cfg.duration)
	fmt.Fprintf(w, "Figures are medians over %d round(s); ratios are medians of the per-round ratios to bare.\n", cfg.rounds)
	fmt.Fprintf(w, "The load generator runs in this process, on the same CPUs as the targets.\n")
	fmt.Fprintf(w, "Load average (1, 5, 15 min) before the load: %s.\n", loadAvg())
}

// loadAvg is the first three fields of /proc/loadavg: on a shared machine
// it says how much else was running.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown model"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown model"
}

func printScenario(w io.Writer, cfg config, rep scenarioReport) {
	sc := rep.scenario
	fmt.Fprintf(w, "\n### %s: %s\n\n", sc.name, sc.about)
	if !cfg.quiet {
		fmt.Fprintf(w, "Rounds, in the order run:\n\n")
		fmt.Fprintf(w, "| round | target | req/s | p50 | p99 | proxy CPU/req | backend CPU/req | errors |\n")
		fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|\n")
		for i, s := range rep.run {
			proxyCPU := "-"
			if rep.runNames[i] != targetDirect {
				proxyCPU = fmtCPU(s.proxyCPU)
			}
			fmt.Fprintf(w, "| %d | %s | %.0f | %s | %s | %s | %s | %d |\n", s.round, rep.runNames[i], s.rps,
				fmtLatency(s.p50), fmtLatency(s.p99), proxyCPU, fmtCPU(s.backendCPU), s.errors)
		}
		fmt.Fprintln(w)
	}

	names := targetNames(rep)
	direct, hasDirect := rep.samples[targetDirect]
	bare, hasBare := rep.samples[targetBare]
	addedP99 := func(ss []sample) []float64 {
		if !hasDirect {
			return nil
		}
		var out []float64
		for i, s := range ss {
			out = append(out, float64(s.p99-direct[i].p99))
		}
		return out
	}
	printMedians(w, rep, names, addedP99)
	printPairedCPU(w, rep, names)
	if !hasBare {
		fmt.Fprintf(w, "\n(no bare target: no ratios)\n")
		return
	}
	ratio := func(ss []sample, f func(sample) float64) string {
		var rs []float64
		for i, s := range ss {
			if b := f(bare[i]); b > 0 {
				rs = append(rs, f(s)/b)
			}
		}
		if len(rs) == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx", median(rs))
	}
	bareAdded := addedP99(bare)
	fmt.Fprintf(w, "\nRatios to bare (median of the per-round ratios):\n\n")
	fmt.Fprintf(w, "| target | req/s | p50 | p99 | p99 added over direct | proxy CPU/req |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|\n")
	for _, name := range names {
		ss := rep.samples[name]
		added, cpu := "-", "-"
		if name != targetDirect {
			cpu = ratio(ss, func(s sample) float64 { return float64(s.proxyCPU) })
			if hasDirect {
				var rs []float64
				for i, a := range addedP99(ss) {
					if bareAdded[i] > 0 {
						rs = append(rs, a/bareAdded[i])
					}
				}
				if len(rs) > 0 {
					added = fmt.Sprintf("%.2fx", median(rs))
				}
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", name,
			ratio(ss, func(s sample) float64 { return s.rps }),
			ratio(ss, func(s sample) float64 { return float64(s.p50) }),
			ratio(ss, func(s sample) float64 { return float64(s.p99) }),
			added, cpu)
	}
}

// printMedians prints each target's medians over the rounds.
func printMedians(w io.Writer, rep scenarioReport, names []string, addedP99 func([]sample) []float64) {
	_, hasDirect := rep.samples[targetDirect]
	fmt.Fprintf(w, "Medians:\n\n")
	fmt.Fprintf(w, "| target | req/s | p50 | p99 | p99 added over direct | proxy CPU/req | backend CPU/req | errors |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|\n")
	for _, name := range names {
		ss := rep.samples[name]
		added := "-"
		if name != targetDirect && hasDirect {
			added = fmtLatency(time.Duration(median(addedP99(ss))))
		}
		proxyCPU := "-"
		if name != targetDirect {
			proxyCPU = fmtCPU(time.Duration(median(field(ss, func(s sample) float64 { return float64(s.proxyCPU) }))))
		}
		errs := 0
		for _, s := range ss {
			errs += s.errors
		}
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %s | %s | %s | %d |\n", name,
			median(field(ss, func(s sample) float64 { return s.rps })),
			fmtLatency(time.Duration(median(field(ss, func(s sample) float64 { return float64(s.p50) })))),
			fmtLatency(time.Duration(median(field(ss, func(s sample) float64 { return float64(s.p99) })))),
			added, proxyCPU,
			fmtCPU(time.Duration(median(field(ss, func(s sample) float64 { return float64(s.backendCPU) })))),
			errs)
	}
}

// printPairedCPU prints each proxy's CPU per request against each
// reference measured in the same run (the pooled bare proxy, the bare one,
// the baseline build): the median of the per-round ratios, with their
// spread (lowest and highest), since two targets of one round share the
// machine's state of the moment while rounds do not.
func printPairedCPU(w io.Writer, rep scenarioReport, names []string) {
	refs := []string{targetBarePool, targetBare, targetBaseline}
	if _, ok := rep.samples[targetGateway3]; ok {
		// Three targets with retries against one url, in the same rounds.
		refs = append(refs, targetGateway)
	}
	for _, ref := range refs {
		base, ok := rep.samples[ref]
		if !ok {
			continue
		}
		fmt.Fprintf(w, "\nProxy CPU/req against %s, per round (median, lowest-highest):\n\n", ref)
		fmt.Fprintf(w, "| target | CPU/req ratio | spread | rounds |\n|---|---|---|---|\n")
		for _, name := range names {
			if name == ref || name == targetDirect {
				continue
			}
			var rs []float64
			for i, s := range rep.samples[name] {
				if i < len(base) && base[i].proxyCPU > 0 {
					rs = append(rs, float64(s.proxyCPU)/float64(base[i].proxyCPU))
				}
			}
			if len(rs) == 0 {
				continue
			}
			fmt.Fprintf(w, "| %s | %.3fx | %.3f-%.3f | %d |\n", name, median(rs), slices.Min(rs), slices.Max(rs), len(rs))
		}
	}
}

// targetNames are the scenario's targets in the order of the first round.
func targetNames(rep scenarioReport) []string {
	var names []string
	for i, s := range rep.run {
		if s.round == 1 {
			names = append(names, rep.runNames[i])
		}
	}
	return names
}

func field(ss []sample, f func(sample) float64) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}

func fmtLatency(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

func fmtCPU(d time.Duration) string {
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}
