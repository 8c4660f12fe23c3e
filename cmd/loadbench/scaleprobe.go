// The scale mode's probes of a running orchestratord: waits, timed
// requests, its counters and its RSS.

package main

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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

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
