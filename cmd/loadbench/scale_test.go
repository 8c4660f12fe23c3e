package main

import (
	"bytes"
	"context"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestScaleTiny runs the scale mode with 200 endpoints and checks that its
// table has every row, each with a positive figure and a verdict.
func TestScaleTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts processes")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/<pid>/status")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command to build the targets")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"-scale", "-scale-endpoints=200", "-scale-requests=2000", "-timeout=3m"}, &stdout, &stderr)
	out := stdout.String()
	if code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr.String())
	}
	t.Logf("report:\n%s", out)
	if !strings.Contains(out, "200 endpoints (svc0..svc199, v1)") {
		t.Errorf("no endpoint count in the header:\n%s", out)
	}

	var rows [][]string
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| figure |") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for k := range cells {
			cells[k] = strings.TrimSpace(cells[k])
		}
		rows = append(rows, cells)
	}
	want := []string{
		"RSS after start, health checks off",
		"RSS after 2000 requests over all endpoints",
		"config reload via the file watch",
		"the same minus the 150 ms debounce",
		"config reload via POST /config/reload",
		"admin registration (POST /registry/endpoints), median",
		"admin registration, p99",
		"goroutines (go_goroutines), health checks on",
		"RSS, health checks on",
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d:\n%s", len(rows), len(want), out)
	}
	for i, prefix := range want {
		row := rows[i]
		if len(row) != 4 || !strings.HasPrefix(row[0], prefix) {
			t.Errorf("row %d = %q, want a figure starting %q and 4 cells", i, row, prefix)
			continue
		}
		if v := number(t, row[1]); v <= 0 {
			t.Errorf("%s: value %q, want positive", row[0], row[1])
		}
		if !strings.HasPrefix(row[2], "< ") || number(t, strings.TrimPrefix(row[2], "< ")) <= 0 {
			t.Errorf("%s: target %q", row[0], row[2])
		}
		if row[3] != "met" && row[3] != "not met" {
			t.Errorf("%s: verdict %q", row[0], row[3])
		}
	}
}

func TestScaleConfig(t *testing.T) {
	off := string(scaleConfig("http://127.0.0.1:1", 3, true, false))
	if !strings.Contains(off, "health_check: {enabled: false}") || !strings.Contains(off, "access_log: false") ||
		!strings.Contains(off, "  - name: svc2\n") || strings.Contains(off, "svc3") ||
		strings.Count(off, "preserve_host: true") != 3 || strings.Contains(off, "health_check_path") {
		t.Errorf("health checks off:\n%s", off)
	}
	on := string(scaleConfig("http://127.0.0.1:1", 3, false, true))
	if !strings.Contains(on, "  enabled: true\n  interval: 1s\n") || strings.Count(on, "health_check_path: /health") != 3 {
		t.Errorf("health checks on:\n%s", on)
	}
}
