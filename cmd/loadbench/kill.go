package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The kill mode (-kill): orchestratord in front of three backend processes
// as three targets of one endpoint, with retries on (attempts 2) and
// outlier detection at its defaults, under closed-loop load; a third of the
// way through, one backend is killed. It reports the requests that failed
// before the dead target was ejected, and after (the acceptance is none
// after), and how long the ejection took.

// killReport is what one kill run measured.
type killReport struct {
	requests, failedBefore, failedAfter int64
	firstFailure                        string
	toEjection                          time.Duration // from the kill to the ejection seen in the admin API
	ejected                             bool
}

func killRun(ctx context.Context, cfg config, stdout, stderr io.Writer) (killReport, error) {
	var rep killReport
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute+3*cfg.duration)
	defer cancel()
	dir, bins, err := buildInTemp(ctx, "loadbench-kill-", cfg, stderr)
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(dir)
	ps := &procs{}
	defer ps.stopAll()
	env := childEnv()
	var backends []*proc
	for _, name := range []string{"a", "b", "c"} {
		p, err := ps.start(ctx, "backend-"+name, bins.loadbench, filepath.Join(dir, "backend-"+name+".log"), env,
			"-role=backend", "-size="+strconv.Itoa(payloadSize), "-delay=5ms")
		if err != nil {
			return rep, err
		}
		backends = append(backends, p)
	}
	conf := fmt.Appendf(nil, `# written by cmd/loadbench -kill
server: {host: 127.0.0.1}
logging: {level: warn, format: json, access_log: false}
health_check: {enabled: false}
endpoints:
  - name: bench
    version: v1
    targets:
      - {id: a, url: "http://%s"}
      - {id: b, url: "http://%s"}
      - {id: c, url: "http://%s"}
    retry: {attempts: 2}
`, backends[0].addr, backends[1].addr, backends[2].addr)
	gw, err := ps.startGateway(ctx, bins, dir, "kill", conf, env)
	if err != nil {
		return rep, err
	}
	t := &target{name: "orchestratord", url: "http://" + gw.addr + "/orchestrator/bench/v1", proxy: gw}
	if err := waitReady(ctx, t); err != nil {
		return rep, err
	}

	var ejected atomic.Bool
	var requests, before, after atomic.Int64
	var firstMu sync.Mutex
	client, tr := newClient(32)
	defer tr.CloseIdleConnections()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				wasEjected := ejected.Load()
				requests.Add(1)
				if err := once(ctx, client, scenarioByName["fast"], t.url+"/fast"); err != nil {
					if wasEjected {
						after.Add(1)
					} else {
						before.Add(1)
					}
					firstMu.Lock()
					if rep.firstFailure == "" {
						rep.firstFailure = err.Error()
					}
					firstMu.Unlock()
				}
			}
		}()
	}
	total := 3 * cfg.duration
	timer := time.NewTimer(total / 3)
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
	fmt.Fprintf(stderr, "loadbench: killing backend c after %d requests\n", requests.Load())
	killedAt := time.Now()
	backends[2].stdin.Close()
	backends[2].cmd.Process.Kill()
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for time.Since(killedAt) < total && ctx.Err() == nil {
		if targetEjected(ctx, "http://"+gw.addr+"/registry/endpoints/bench_v1", "c") {
			rep.toEjection = time.Since(killedAt)
			ejected.Store(true)
			break
		}
		<-poll.C
	}
	rep.ejected = ejected.Load()
	end := time.NewTimer(total * 2 / 3)
	select {
	case <-end.C:
	case <-ctx.Done():
	}
	close(stop)
	wg.Wait()
	rep.requests, rep.failedBefore, rep.failedAfter = requests.Load(), before.Load(), after.Load()
	fmt.Fprintf(stdout, "### kill: one of three targets killed under load (32 connections, retry attempts 2, outlier detection defaults)\n\n")
	fmt.Fprintf(stdout, "| requests | failed before the ejection | failed after it | kill to ejection |\n|---|---|---|---|\n")
	eject := "not seen"
	if rep.ejected {
		eject = rep.toEjection.Round(time.Millisecond).String()
	}
	fmt.Fprintf(stdout, "| %d | %d | %d | %s |\n", rep.requests, rep.failedBefore, rep.failedAfter, eject)
	if rep.firstFailure != "" {
		fmt.Fprintf(stdout, "\nFirst failure: %s\n", rep.firstFailure)
	}
	if !rep.ejected {
		return rep, fmt.Errorf("the killed target was not ejected within %s", total)
	}
	return rep, nil
}

// targetEjected asks the admin API whether the endpoint's target is ejected.
func targetEjected(ctx context.Context, viewURL, target string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, viewURL, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var view struct {
		Targets []struct {
			ID      string `json:"id"`
			Ejected bool   `json:"ejected"`
		} `json:"targets"`
	}
	if json.NewDecoder(resp.Body).Decode(&view) != nil {
		return false
	}
	for _, tg := range view.Targets {
		if tg.ID == target {
			return tg.Ejected
		}
	}
	return false
}
