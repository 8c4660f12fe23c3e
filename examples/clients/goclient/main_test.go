package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchestrator-go/orchestrator/internal/server"
)

// waitFor bounds every wait of these tests.
const waitFor = 30 * time.Second

// The credentials each call must deliver to the upstream, in call order,
// byte for byte. The basic one is written out rather than computed, so
// that a client encoding it wrongly cannot agree with the test.
var wantCredentials = []struct {
	call, header, value string
}{
	{"bearer token", "Authorization", "Bearer " + bearerToken},
	{"API key", "X-Api-Key", apiKey},
	{"basic credentials", "Authorization", "Basic YWxpY2U6b3BlbiBzZXNhbWU="}, // alice:open sesame
}

// TestBuiltInEcho runs both clients against orchestratord as a user first
// meets it: no config file, the embedded default's echo/v1 endpoint in
// front of the built-in echo upstream, which reports each credential as
// "[present]".
func TestBuiltInEcho(t *testing.T) {
	base := startOrchestratord(t, "")

	t.Run("go", func(t *testing.T) {
		var out bytes.Buffer
		if err := run(testContext(t), base, &out); err != nil {
			t.Fatalf("run: %v\noutput:\n%s", err, &out)
		}
		got := out.String()
		for _, want := range []string{
			"== bearer token: the upstream saw GET /hello\n",
			"== API key: the upstream saw GET /hello\n",
			"== basic credentials: the upstream saw GET /hello\n",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("the output lacks %q:\n%s", want, got)
			}
		}
		if n := strings.Count(got, "   Authorization: [present]\n"); n != 2 {
			t.Errorf("the echo reported Authorization %d times, want 2 (bearer, basic):\n%s", n, got)
		}
		if n := strings.Count(got, "   X-Api-Key: [present]\n"); n != 1 {
			t.Errorf("the echo reported X-Api-Key %d times, want 1:\n%s", n, got)
		}
	})

	t.Run("go_unknown_endpoint", func(t *testing.T) {
		var out bytes.Buffer
		err := run(testContext(t), base+"/no-such-endpoint", &out)
		if err == nil || !strings.Contains(err.Error(), "404") {
			t.Errorf("run against an unknown endpoint: got %v, want an error naming the 404", err)
		}
	})

	t.Run("curl", func(t *testing.T) {
		got := runCurlScript(t, base)
		if n := strings.Count(got, `"service": "orchestratord built-in echo"`); n != 3 {
			t.Errorf("the script got %d answers from the built-in echo, want 3:\n%s", n, got)
		}
		if n := strings.Count(got, `"[present]"`); n != 3 {
			t.Errorf("the echo reported %d credentials, want 3:\n%s", n, got)
		}
	})
}

// TestCredentialsPassThrough runs both clients against orchestratord with a
// config file whose echo/v1 endpoint is an upstream that records what
// reached it, and checks that each call delivered its credential byte for
// byte, and only that one.
func TestCredentialsPassThrough(t *testing.T) {
	rec := &recorder{}
	upstream := httptest.NewServer(rec) // 127.0.0.1
	t.Cleanup(upstream.Close)
	config := filepath.Join(t.TempDir(), "orchestrator.yaml")
	yaml := "endpoints:\n" +
		"  - name: echo\n" +
		"    version: v1\n" +
		"    url: \"" + upstream.URL + "\"\n" +
		"    health_check_path: /health\n"
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	base := startOrchestratord(t, config)

	t.Run("go", func(t *testing.T) {
		var out bytes.Buffer
		if err := run(testContext(t), base, &out); err != nil {
			t.Fatalf("run: %v\noutput:\n%s", err, &out)
		}
		checkCredentials(t, rec.take())
	})

	t.Run("curl", func(t *testing.T) {
		runCurlScript(t, base)
		checkCredentials(t, rec.take())
	})
}

func checkCredentials(t *testing.T, seen []seenRequest) {
	t.Helper()
	if len(seen) != len(wantCredentials) {
		t.Fatalf("the upstream saw %d requests, want %d: %+v", len(seen), len(wantCredentials), seen)
	}
	for i, want := range wantCredentials {
		got := seen[i]
		if got.method != http.MethodGet || got.path != "/hello" {
			t.Errorf("%s: the upstream saw %s %s, want GET /hello", want.call, got.method, got.path)
		}
		if v := got.header.Values(want.header); len(v) != 1 || v[0] != want.value {
			t.Errorf("%s: the upstream saw %s %q, want exactly [%q]", want.call, want.header, v, want.value)
		}
		for _, other := range []string{"Authorization", "X-Api-Key"} {
			if other != want.header && got.header.Get(other) != "" {
				t.Errorf("%s: the upstream also saw %s %q", want.call, other, got.header.Values(other))
			}
		}
	}
}

// TestReadmeCredentials keeps the README's curl lines on the credentials
// the clients send.
func TestReadmeCredentials(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"'Authorization: Bearer " + bearerToken + "'",
		"'X-API-Key: " + apiKey + "'",
		"-u '" + basicUser + ":" + basicPassword + "'",
	} {
		if !bytes.Contains(readme, []byte(want)) {
			t.Errorf("examples/clients/README.md does not show %s", want)
		}
	}
}

// recorder is an echo upstream that answers as the built-in one does
// (credentials shown as "[present]") and keeps what reached it.
type recorder struct {
	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	method, path string
	header       http.Header
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/health" { // the gateway's health probe
		return
	}
	rec.mu.Lock()
	rec.seen = append(rec.seen, seenRequest{r.Method, r.URL.EscapedPath(), r.Header.Clone()})
	rec.mu.Unlock()
	shown := make(map[string][]string, len(r.Header))
	for k, v := range r.Header {
		switch k {
		case "Authorization", "X-Api-Key":
			v = []string{"[present]"}
		}
		shown[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(echoed{Method: r.Method, Path: r.URL.EscapedPath(), Headers: shown})
}

// take returns what reached the upstream since the last take.
func (rec *recorder) take() []seenRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	seen := rec.seen
	rec.seen = nil
	return seen
}

// startOrchestratord runs the reference server in-process, as
// `orchestratord --host 127.0.0.1 --port 0 [--config configPath]` would,
// and returns the gateway's base URL. The test's cleanup stops it and
// requires a clean shutdown.
func startOrchestratord(t *testing.T, configPath string) string {
	t.Helper()
	logs := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Options{
			ConfigPath: configPath,
			Host:       "127.0.0.1",
			Port:       "0",
			Stdout:     logs,
			Stderr:     logs,
			Ready:      func(main, _ net.Addr) { ready <- main },
		})
	}()
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("orchestratord did not start: %v\n%s", err, logs)
	case <-time.After(waitFor):
		cancel()
		<-done
		t.Fatalf("orchestratord was not serving within %v:\n%s", waitFor, logs)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("orchestratord shut down with %v", err)
		}
		if t.Failed() {
			t.Logf("orchestratord's output:\n%s", logs)
		}
	})
	return "http://" + addr.String() + "/orchestrator"
}

// runCurlScript runs ../curl.sh against the gateway at base and returns its
// output. Without curl (or bash) on PATH it skips, unless
// ORCHESTRATOR_REQUIRE_CURL=1 makes that a failure.
func runCurlScript(t *testing.T, base string) string {
	t.Helper()
	for _, tool := range []string{"curl", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("ORCHESTRATOR_REQUIRE_CURL") == "1" {
				t.Fatalf("%s is not on PATH, and ORCHESTRATOR_REQUIRE_CURL=1", tool)
			}
			t.Skipf("%s is not on PATH: the curl examples are not tested (ORCHESTRATOR_REQUIRE_CURL=1 makes this a failure)", tool)
		}
	}
	cmd := exec.CommandContext(testContext(t), "bash", filepath.Join("..", "curl.sh"))
	// Only what the script needs: no proxy settings, and a HOME without a
	// .curlrc, so that the user's curl configuration cannot change the
	// requests.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "GATEWAY=" + base}
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("GATEWAY=%s bash curl.sh: %v\nstdout:\n%s\nstderr:\n%s", base, err, &stdout, &stderr)
	}
	return stdout.String()
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

// lockedBuffer collects the server's output, written from its goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
