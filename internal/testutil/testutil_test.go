package testutil_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/internal/problem"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

// fakeTB records a fatal failure instead of ending the test, so that the
// failure paths of the helpers can be checked. The helpers return after
// Fatalf, so a Fatalf that returns is safe.
type fakeTB struct {
	testing.TB
	fatal string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) { f.fatal = fmt.Sprintf(format, args...) }

func TestLogBufferConcurrentWritesAndReads(t *testing.T) {
	var b testutil.LogBuffer
	const writers, lines = 8, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				fmt.Fprintf(&b, "{\"writer\":%d,\"i\":%d}\n", w, i)
			}
		}()
	}
	// Read while they write: the race detector checks the locking.
	for range 50 {
		_ = b.String()
	}
	wg.Wait()
	got := b.JSONLines(t)
	assert.Len(t, got, writers*lines, "got %d lines; want every write whole, on its own line", len(got))
}

func TestLogBufferJSONLines(t *testing.T) {
	var b testutil.LogBuffer
	b.Write([]byte(`{"logger":"orchestrator.access","message":"a"}` + "\n\n  \n"))
	b.Write([]byte(`{"logger":"orchestrator.config","message":"b"}` + "\n"))
	b.Write([]byte(`{"logger":"orchestrator.access","message":"c"}` + "\n"))

	all := b.JSONLines(t)
	require.Len(t, all, 3, "blank lines are skipped")
	var msgs []string
	for _, l := range b.JSONLinesOf(t, "orchestrator.access") {
		msgs = append(msgs, l["message"].(string))
	}
	assert.Equal(t, []string{"a", "c"}, msgs, "the access lines, in order")
	assert.Empty(t, b.JSONLinesOf(t, "orchestrator.none"))

	t.Run("a line that is not a JSON object fails the test", func(t *testing.T) {
		var bad testutil.LogBuffer
		bad.Write([]byte("{\"ok\":1}\nplain text\n"))
		f := &fakeTB{TB: t}
		assert.Nil(t, bad.JSONLines(f))
		assert.Contains(t, f.fatal, `log line "plain text": got invalid JSON`)
	})
}

func TestEventually(t *testing.T) {
	t.Run("returns once cond holds", func(t *testing.T) {
		calls := 0
		testutil.Eventually(t, 10*time.Second, "the third call", func() (bool, string) {
			calls++
			return calls == 3, fmt.Sprint(calls)
		})
		assert.Equal(t, 3, calls)
	})
	t.Run("a cond that holds at once is called once", func(t *testing.T) {
		calls := 0
		testutil.Eventually(t, 10*time.Second, "anything", func() (bool, string) { calls++; return true, "" })
		assert.Equal(t, 1, calls)
	})
	t.Run("fails after the timeout with what and the last state", func(t *testing.T) {
		f := &fakeTB{TB: t}
		start := time.Now()
		n := 0
		testutil.Eventually(f, 30*time.Millisecond, "the impossible", func() (bool, string) {
			n++
			return false, fmt.Sprintf("call %d", n)
		})
		assert.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond, "gave up before the timeout")
		assert.Equal(t, fmt.Sprintf("gave up after 30ms waiting for the impossible; last: call %d", n), f.fatal)
	})
	t.Run("an empty last state is left out", func(t *testing.T) {
		f := &fakeTB{TB: t}
		testutil.Eventually(f, time.Millisecond, "x", func() (bool, string) { return false, "" })
		assert.Equal(t, "gave up after 1ms waiting for x", f.fatal)
	})
}

// TestProblemDecodesWhatTheGatewayWrites decodes a document written by
// internal/problem, with every member set, and checks that Problem has a
// field for each member Details writes.
func TestProblemDecodesWhatTheGatewayWrites(t *testing.T) {
	d := struct {
		problem.Details
		Omitted int `json:"omitted,omitempty"`
	}{
		Details: problem.Details{
			Type: problem.TypePrefix + "invalid-config", Title: "Invalid configuration", Status: 400,
			Detail: "the configuration has 2 errors", Instance: "/config/reload",
			RequestID: "req-1", EndpointID: "svc_v1",
			Errors: []orchestrator.FieldError{{Field: "endpoints[0].url", Message: "is required", Line: 3, Column: 5}},
		},
		Omitted: 1,
	}
	body, err := json.Marshal(d)
	require.NoError(t, err)
	var p testutil.Problem
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&p), "every member has a field in Problem: %s", body)
	assert.Equal(t, testutil.Problem{
		Type: "urn:orchestrator:problem:invalid-config", Title: "Invalid configuration", Status: 400,
		Detail: "the configuration has 2 errors", Instance: "/config/reload",
		RequestID: "req-1", EndpointID: "svc_v1",
		Errors:  []testutil.FieldError{{Field: "endpoints[0].url", Message: "is required", Line: 3, Column: 5}},
		Omitted: 1,
	}, p)
	// FieldError has orchestrator.FieldError's fields: it converts.
	assert.Equal(t, d.Errors.([]orchestrator.FieldError)[0], orchestrator.FieldError(p.Errors[0]))

	names := func(typ reflect.Type) map[string]bool {
		out := map[string]bool{}
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			out[name] = true
		}
		return out
	}
	have := names(reflect.TypeFor[testutil.Problem]())
	for name := range names(reflect.TypeFor[problem.Details]()) {
		assert.True(t, have[name], "problem.Details writes %q; Problem has no field for it", name)
	}
}

func TestFiles(t *testing.T) {
	path := testutil.ConfigFile(t, "endpoints: []\n")
	assert.Equal(t, "config.yaml", filepath.Base(path))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "endpoints: []\n", string(got))

	testutil.ReplaceFile(t, path, "endpoints:\n  - name: a\n")
	got, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "endpoints:\n  - name: a\n", string(got))
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1, "got %v; want the temporary file renamed away", entries)

	other := filepath.Join(filepath.Dir(path), "other.txt")
	testutil.WriteFile(t, other, "x")
	info, err := os.Stat(other)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	f := &fakeTB{TB: t}
	testutil.WriteFile(f, filepath.Join(filepath.Dir(path), "no", "such", "dir"), "x")
	assert.Contains(t, f.fatal, "writing ")
}

func TestRefusedURLRefusesDials(t *testing.T) {
	u := testutil.RefusedURL(t)
	if !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Fatalf("RefusedURL: got %q; want a loopback http URL", u)
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(u, "http://"))
	if err == nil {
		conn.Close()
		t.Fatalf("dial %s: got a connection; want it refused", u)
	}
}
