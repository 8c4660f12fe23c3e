package testutil

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
)

// LogBuffer is a bytes.Buffer that is safe for concurrent Write and String:
// a slog handler, a server's output or a subprocess's copy goroutine writes
// into it while the test reads what has been written so far. Its zero value
// is an empty buffer ready to use; it must not be copied after first use.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p to the buffer. It never fails.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// JSONLines decodes every line written so far, skipping blank ones. Each
// line must be one JSON object, as a slog JSON handler writes them; any
// other line fails the test.
func (b *LogBuffer) JSONLines(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: got invalid JSON (%v); want one JSON object per line", sc.Text(), err)
			return nil
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading the log lines: %v", err)
		return nil
	}
	return out
}

// JSONLinesOf returns the lines of JSONLines whose "logger" attribute (the
// component logger that wrote them, such as "orchestrator.access") is
// logger, in the order written.
func (b *LogBuffer) JSONLinesOf(t testing.TB, logger string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, m := range b.JSONLines(t) {
		if m["logger"] == logger {
			out = append(out, m)
		}
	}
	return out
}
