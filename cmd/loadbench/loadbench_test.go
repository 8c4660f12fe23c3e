package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestTinyRun runs the whole tool in a tiny configuration, both scenarios,
// and checks that the report has a row per target with positive figures.
// The orchestratord+accesslog target is left out to save time: it is the
// same binary with another config.
func TestTinyRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts processes")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/<pid>/stat")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command to build the targets")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{
		"-duration=300ms", "-warmup=100ms", "-rounds=1", "-scenarios=fast,slow",
		"-targets=direct,bare,orchestratord", "-timeout=2m",
	}, &stdout, &stderr)
	out := stdout.String()
	if code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr.String())
	}
	t.Logf("report:\n%s", out)

	for _, sc := range []string{"fast", "slow"} {
		i := strings.Index(out, "\n### "+sc+":")
		if i < 0 {
			t.Fatalf("no %s section", sc)
		}
		section := out[i+1:]
		if j := strings.Index(section[1:], "\n### "); j >= 0 {
			section = section[:j+1]
		}
		medians := table(t, section, "Medians:")
		for _, name := range []string{"direct", "bare", "orchestratord"} {
			row, ok := medians[name]
			if !ok {
				t.Fatalf("%s: no row for %s in:\n%s", sc, name, section)
			}
			// target | req/s | p50 | p99 | added | proxy CPU | backend CPU | errors
			if rps := number(t, row[1]); rps <= 0 {
				t.Errorf("%s %s: req/s %v", sc, name, rps)
			}
			if p50, p99 := number(t, row[2]), number(t, row[3]); p50 <= 0 || p99 < p50 {
				t.Errorf("%s %s: p50 %v, p99 %v", sc, name, p50, p99)
			}
			if cpu := number(t, row[6]); cpu <= 0 {
				t.Errorf("%s %s: backend CPU/req %v", sc, name, cpu)
			}
			if name == "direct" {
				if row[5] != "-" {
					t.Errorf("%s direct: proxy CPU %q, want -", sc, row[5])
				}
				continue
			}
			if cpu := number(t, row[5]); cpu <= 0 {
				t.Errorf("%s %s: proxy CPU/req %v", sc, name, cpu)
			}
			if errs := number(t, row[7]); errs != 0 {
				t.Errorf("%s %s: %v errors", sc, name, errs)
			}
		}
		ratios := table(t, section, "Ratios to bare")
		if got := ratios["bare"]; len(got) < 6 || got[1] != "1.00x" || got[5] != "1.00x" {
			t.Errorf("%s: bare's ratios %q, want 1.00x", sc, got)
		}
		if got := ratios["orchestratord"]; len(got) < 6 || number(t, got[5]) <= 0 || number(t, got[1]) <= 0 {
			t.Errorf("%s: orchestratord's ratios %q", sc, got)
		}
	}
	if !strings.Contains(out, "orchestratord wrote 0 log lines") {
		t.Errorf("orchestratord with the access log off wrote log lines:\n%s", out)
	}
}

// table returns the rows of the markdown table after the line starting
// with title, by their first cell.
func table(t *testing.T, section, title string) map[string][]string {
	t.Helper()
	i := strings.Index(section, "\n"+title)
	if i < 0 {
		t.Fatalf("no %q table in:\n%s", title, section)
	}
	rows := map[string][]string{}
	started := false
	for _, line := range strings.Split(section[i+1:], "\n")[1:] {
		if !strings.HasPrefix(line, "|") {
			if started {
				break
			}
			continue
		}
		started = true
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for k := range cells {
			cells[k] = strings.TrimSpace(cells[k])
		}
		rows[cells[0]] = cells
	}
	return rows
}

// number parses "123", "1.50 ms", "42.0 µs" or "0.95x".
func number(t *testing.T, cell string) float64 {
	t.Helper()
	f := strings.Fields(cell)
	if len(f) == 0 {
		t.Fatalf("empty cell")
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "x"), 64)
	if err != nil {
		t.Fatalf("cell %q: %v", cell, err)
	}
	return v
}

// TestCPUTicks reads this process's own CPU time while burning some: it
// must grow within a few seconds.
func TestCPUTicks(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/<pid>/stat")
	}
	before, err := cpuTicks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for x := 0; ; x++ {
		if x%100000 == 0 {
			after, err := cpuTicks(os.Getpid())
			if err != nil {
				t.Fatal(err)
			}
			if after > before {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("CPU ticks still %d after 5 s of spinning", after)
			}
		}
	}
}

func TestPercentileAndMedian(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	if p := percentile(d, 0.5); p != 50 {
		t.Errorf("p50 = %d, want 50", p)
	}
	if p := percentile(d, 0.99); p != 99 {
		t.Errorf("p99 = %d, want 99", p)
	}
	if p := percentile(d[:1], 0.99); p != 1 {
		t.Errorf("p99 of one = %d, want 1", p)
	}
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median = %v, want 2", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median = %v, want 2.5", m)
	}
}

func TestFlags(t *testing.T) {
	var stderr bytes.Buffer
	for _, args := range [][]string{
		{"-scenarios=nope"},
		{"-targets=caddy"},
		{"-rounds=0"},
		{"-duration=0s"},
		{"extra"},
	} {
		if code := run(context.Background(), args, &stderr, &stderr); code != 2 {
			t.Errorf("%q: exit code %d, want 2", args, code)
		}
	}
}

// TestKillMode runs the kill mode briefly: the killed target is ejected,
// and no request fails after the ejection.
func TestKillMode(t *testing.T) {
	requireProcesses(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cfg := modeFlags(t, &stderr, "-kill", "-duration=1s")
	rep, err := killRun(ctx, cfg, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("report:\n%s", stdout.String())
	if !rep.ejected || rep.requests == 0 {
		t.Fatalf("ejected %v after %d requests", rep.ejected, rep.requests)
	}
	if rep.failedAfter != 0 {
		t.Errorf("%d requests failed after the ejection (first: %s)", rep.failedAfter, rep.firstFailure)
	}
}

// TestOverloadMode runs the overload mode briefly: every endpoint answers,
// the unlimited one sheds nothing, and the limited ones shed while the
// backend's queue is full.
func TestOverloadMode(t *testing.T) {
	requireProcesses(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cfg := modeFlags(t, &stderr, "-overload", "-duration=1s", "-warmup=500ms", "-overload-conns=32")
	rep, err := overloadRun(ctx, cfg, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("report:\n%s", stdout.String())
	if len(rep.rows) != 3 || rep.unloaded <= 0 {
		t.Fatalf("got %d rows, unloaded %v; want 3 rows and a latency", len(rep.rows), rep.unloaded)
	}
	for _, r := range rep.rows {
		if r.goodput <= 0 || r.errors != 0 {
			t.Errorf("%s: goodput %.0f/s, %d errors; want answers and no errors", r.name, r.goodput, r.errors)
		}
	}
	if rep.rows[0].shed != 0 {
		t.Errorf("open: %.0f shed/s; want none without a limit", rep.rows[0].shed)
	}
	if rep.rows[1].shed == 0 {
		t.Errorf("fixed: no request shed by max_concurrent %d under %d connections", cfg.capacity, cfg.overloadConns)
	}
	for _, want := range []string{"| open |", "| fixed |", "| adaptive |", "p99 admitted"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}

// requireProcesses skips a test that builds and starts processes in
// -short mode, or where there is no go command to build them.
func requireProcesses(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and starts processes")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command to build the targets")
	}
}

// modeFlags parses a mode's flags or fails the test.
func modeFlags(t *testing.T, stderr io.Writer, args ...string) config {
	t.Helper()
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
