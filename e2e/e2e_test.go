// Package e2e_test drives the real orchestratord binary end to end: it
// builds it, runs it as a subprocess on loopback in front of two httptest
// backends, and walks through a whole operator story — proxying, admin
// registration, hot reload, circuit breaking, graceful shutdown — plus the
// validate and version subcommands.
//
//	go test -race -count=1 ./e2e/
package e2e_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

const (
	// adminToken protects the admin API of the server under test. It must
	// never show up in its logs.
	adminToken = "e2e-admin-token-6b1f0c2d"
	// clientSecret is a credential a client sends to a backend through the
	// gateway: forwarded untouched, never logged.
	clientSecret = "Bearer e2e-client-secret-93ad"
	// shutdownTimeout is the server's server.shutdown_timeout.
	shutdownTimeout = 5 * time.Second
	// buildVersion is stamped into the binary with -ldflags -X main.version.
	buildVersion = "e2e-test"
)

// TestOrchestratord builds the binary once and runs every scenario on it.
func TestOrchestratord(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the orchestratord binary; skipped in -short mode")
	}
	if runtime.GOOS == "windows" {
		t.Skip("the story sends SIGTERM, which Windows processes cannot receive")
	}
	bin := buildBinary(t)

	t.Run("version", func(t *testing.T) { testVersion(t, bin) })
	t.Run("validate", func(t *testing.T) { testValidate(t, bin) })
	t.Run("story", func(t *testing.T) { testStory(t, bin) })
}

// moduleRoot is the directory holding go.mod, found from this file's path.
func moduleRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	dir := filepath.Dir(file)
	if !ok || !filepath.IsAbs(dir) {
		// Built with -trimpath: go test runs in the package directory.
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		dir = wd
	}
	root := filepath.Dir(dir)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found next to %s: %v", dir, err)
	}
	return root
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "orchestratord")
	args := []string{"build", "-o", bin, "-ldflags", "-X main.version=" + buildVersion}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/orchestratord")
	cmd := exec.Command("go", args...)
	cmd.Dir = moduleRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// cleanEnv is the environment without the variables orchestratord reads, so
// that the developer's shell cannot change what the tests see.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "HOST", "PORT", "CONFIG_PATH", "LOG_LEVEL", "ORCHESTRATOR_ADMIN_TOKEN":
			continue
		}
		env = append(env, kv)
	}
	return env
}

func testVersion(t *testing.T, bin string) {
	cmd := exec.Command(bin, "version")
	cmd.Env = cleanEnv()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("orchestratord version: %v", err)
	}
	want := regexp.MustCompile(`^orchestratord ` + regexp.QuoteMeta(buildVersion) + ` \(go\S+, \w+/\w+\)\n$`)
	if !want.Match(out) {
		t.Errorf("orchestratord version printed %q, want a line like %q", out, "orchestratord "+buildVersion+" (go1.26, linux/amd64)")
	}
}

func testValidate(t *testing.T, bin string) {
	dir := t.TempDir()
	run := func(path string) (code int, stdout, stderr string) {
		t.Helper()
		cmd := exec.Command(bin, "validate", path)
		cmd.Env = cleanEnv()
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &exit):
			return exit.ExitCode(), o.String(), e.String()
		default:
			t.Fatalf("running orchestratord validate: %v", err)
		}
		return 0, o.String(), e.String()
	}

	t.Run("decode errors", func(t *testing.T) {
		bad := filepath.Join(dir, "unknown-field.yaml")
		testutil.WriteFile(t, bad, "endpoints:\n  - name: svc\n    url: \"http://127.0.0.1:1\"\n    colour: blue\n")
		code, stdout, stderr := run(bad)
		if code != 1 {
			t.Fatalf("exit code %d, want 1; stdout %q stderr %q", code, stdout, stderr)
		}
		lines := nonEmptyLines(stderr)
		if len(lines) == 0 {
			t.Fatal("no error lines on stderr")
		}
		for _, l := range lines {
			if !strings.HasPrefix(l, bad+":") || !regexp.MustCompile(`^.+:\d+:\d+: `).MatchString(l) {
				t.Errorf("line %q is not \"%s:line:column: message\"", l, bad)
			}
		}
		if !strings.Contains(stderr, bad+":4:5: ") || !strings.Contains(stderr, "colour") {
			t.Errorf("the unknown field colour (line 4, column 5) is not reported:\n%s", stderr)
		}
	})

	t.Run("validation errors", func(t *testing.T) {
		bad := filepath.Join(dir, "invalid.yaml")
		testutil.WriteFile(t, bad, strings.Join([]string{
			"server:",
			"  port: 70000",
			"endpoints:",
			"  - name: svc",
			"    url: \"ftp://example.com\"",
			"  - name: \"bad name\"",
			"    url: \"http://127.0.0.1:1\"",
			"",
		}, "\n"))
		code, stdout, stderr := run(bad)
		if code != 1 {
			t.Fatalf("exit code %d, want 1; stdout %q stderr %q", code, stdout, stderr)
		}
		lines := nonEmptyLines(stderr)
		if len(lines) < 3 {
			t.Fatalf("want one line per error (3), got:\n%s", stderr)
		}
		for _, l := range lines {
			if !regexp.MustCompile(`^` + regexp.QuoteMeta(bad) + `:\d+:\d+: `).MatchString(l) {
				t.Errorf("line %q is not \"%s:line:column: message\"", l, bad)
			}
		}
		for _, want := range []string{bad + ":2:", bad + ":5:", bad + ":6:"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("no error located at %s...:\n%s", want, stderr)
			}
		}
	})

	t.Run("good file", func(t *testing.T) {
		good := filepath.Join(moduleRoot(t), "examples", "config.yaml")
		code, stdout, stderr := run(good)
		if code != 0 || !strings.Contains(stdout, ": ok") {
			t.Fatalf("validate %s: exit %d, stdout %q, stderr %q", good, code, stdout, stderr)
		}
	})
}

// ---- the story ---------------------------------------------------------------

// backend is an httptest upstream that echoes what reached it, fails its
// /flaky paths on demand and holds its /slow paths until released.
type backend struct {
	name        string
	srv         *httptest.Server
	failFlaky   atomic.Bool
	flakyHits   atomic.Int64
	slowStarted chan struct{}
	release     chan struct{}
	releaseOnce sync.Once
}

// echoed is what a backend answers: the request as it saw it.
type echoed struct {
	Backend       string `json:"backend"`
	Method        string `json:"method"`
	Path          string `json:"path"`
	Query         string `json:"query"`
	Authorization string `json:"authorization"`
	RequestID     string `json:"request_id"`
	Host          string `json:"host"`
}

func newBackend(t *testing.T, name string) *backend {
	b := &backend{name: name, slowStarted: make(chan struct{}, 1), release: make(chan struct{})}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.EscapedPath()
		if strings.Contains(path, "/flaky") {
			b.flakyHits.Add(1)
			if b.failFlaky.Load() {
				http.Error(w, "backend "+name+" is failing", http.StatusInternalServerError)
				return
			}
		}
		if strings.HasSuffix(path, "/slow") {
			select {
			case b.slowStarted <- struct{}{}:
			default:
			}
			select {
			case <-b.release:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(echoed{
			Backend: name, Method: r.Method, Path: path, Query: r.URL.RawQuery,
			Authorization: r.Header.Get("Authorization"), RequestID: r.Header.Get("X-Request-ID"), Host: r.Host,
		})
	}))
	// Cleanups run last-in first-out: this one, registered before the
	// gateway's, runs after the gateway process is gone.
	t.Cleanup(func() {
		b.releaseSlow()
		b.srv.Close()
	})
	return b
}

func (b *backend) releaseSlow() { b.releaseOnce.Do(func() { close(b.release) }) }

// gateway is a running orchestratord subprocess.
type gateway struct {
	cmd    *exec.Cmd
	stdout *testutil.LogBuffer
	stderr *testutil.LogBuffer
	addr   string // 127.0.0.1:port
	base   string // http://127.0.0.1:port
	done   chan struct{}
	err    error // cmd.Wait's result, set before done closes
	client *http.Client
}

func startGateway(t *testing.T, bin string, args ...string) *gateway {
	t.Helper()
	g := &gateway{
		cmd:    exec.Command(bin, args...),
		stdout: &testutil.LogBuffer{},
		stderr: &testutil.LogBuffer{},
		done:   make(chan struct{}),
		client: &http.Client{Timeout: 10 * time.Second},
	}
	g.cmd.Env = cleanEnv()
	g.cmd.Stdout, g.cmd.Stderr = g.stdout, g.stderr
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		g.err = g.cmd.Wait()
		close(g.done)
	}()
	t.Cleanup(func() {
		if !g.exited() {
			g.cmd.Process.Kill()
			<-g.done
		}
		g.client.CloseIdleConnections()
		if t.Failed() {
			t.Logf("orchestratord stdout:\n%s", g.stdout.String())
			t.Logf("orchestratord stderr:\n%s", tail(g.stderr.String(), 60))
		}
	})

	// The banner's first line names the bound address:
	// "orchestratord VERSION listening on http://127.0.0.1:PORT".
	banner := regexp.MustCompile(`listening on http://(127\.0\.0\.1:\d+)\n`)
	testutil.Eventually(t, 15*time.Second, "the start banner", func() (bool, string) {
		if g.exited() {
			t.Fatalf("orchestratord exited before serving: %v\nstdout:\n%s\nstderr:\n%s", g.err, g.stdout.String(), g.stderr.String())
		}
		m := banner.FindStringSubmatch(g.stdout.String())
		if m == nil {
			return false, g.stdout.String()
		}
		g.addr = m[1]
		return true, ""
	})
	g.base = "http://" + g.addr
	return g
}

func (g *gateway) exited() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string {
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body))
}

// do sends a request to the gateway. Admin requests carry the token.
func (g *gateway) do(t *testing.T, method, path string, body any, header ...string) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, g.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (g *gateway) admin(t *testing.T, method, path string, body any) response {
	t.Helper()
	return g.do(t, method, path, body, "Authorization", "Bearer "+adminToken)
}

// adminJSON sends an admin request, checks its status and decodes the answer.
func (g *gateway) adminJSON(t *testing.T, method, path string, body any, wantStatus int, out any) {
	t.Helper()
	r := g.admin(t, method, path, body)
	if r.status != wantStatus {
		t.Fatalf("%s %s: %s, want %d", method, path, r, wantStatus)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, path, r.body, err)
		}
	}
}

// proxied sends a request through the gateway and decodes the backend's echo.
func (g *gateway) proxied(t *testing.T, path string) (response, echoed) {
	t.Helper()
	r := g.do(t, http.MethodGet, path, nil)
	var e echoed
	if r.status == http.StatusOK {
		if err := json.Unmarshal(r.body, &e); err != nil {
			t.Fatalf("GET %s: the backend's answer %q: %v", path, r.body, err)
		}
	}
	return r, e
}

type configStatus struct {
	Path        string  `json:"path"`
	Version     string  `json:"version"`
	ReloadCount int64   `json:"reload_count"`
	LastError   *string `json:"last_error"`
	Watching    bool    `json:"watching"`
}

type breakerState struct {
	ID    string `json:"id"`
	State string `json:"state"`
}

// storyConfig is the config file of the story; extra is appended to the
// endpoints list.
func storyConfig(dir string, a, b *backend, betaURL, extra string) string {
	return fmt.Sprintf(`# written by the e2e test
server:
  host: 127.0.0.1
  shutdown_timeout: %s
admin:
  token: %s
registry:
  state_file: %s
logging:
  level: info
  format: json
circuit_breaker:
  failure_threshold: 3
  reset_timeout: 60
health_check:
  enabled: false
endpoints:
  - name: alpha
    version: v1
    url: "%s/alpha"
    methods: [GET, POST]
    circuit_breaker:
      reset_timeout: "300ms"
  - name: beta
    url: "%s"
    timeout: 5
  - name: flaky
    version: v1
    url: "%s/flaky"
%s`, shutdownTimeout, adminToken, filepath.Join(dir, "state.json"), a.srv.URL, betaURL, b.srv.URL, extra)
}

func testStory(t *testing.T, bin string) {
	a, b := newBackend(t, "A"), newBackend(t, "B")
	dir := t.TempDir()
	configPath := filepath.Join(dir, "config.yaml")
	testutil.WriteFile(t, configPath, storyConfig(dir, a, b, b.srv.URL+"/beta", ""))

	// --port 0: a free port, reported by the banner. The host comes from the
	// file (127.0.0.1).
	g := startGateway(t, bin, "--config", configPath, "--port", "0")

	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	step("1 proxy a config endpoint", func(t *testing.T) {
		r := g.do(t, http.MethodGet, "/health", nil)
		if r.status != http.StatusOK || !bytes.Contains(r.body, []byte(`"ok"`)) {
			t.Fatalf("GET /health: %s", r)
		}

		r = g.do(t, http.MethodGet, "/orchestrator/alpha/v1/users/42?q=go&x=%2F", nil,
			"Authorization", clientSecret, "X-Request-ID", "e2e-request-1")
		if r.status != http.StatusOK {
			t.Fatalf("proxied GET: %s", r)
		}
		var e echoed
		if err := json.Unmarshal(r.body, &e); err != nil {
			t.Fatal(err)
		}
		want := echoed{Backend: "A", Method: "GET", Path: "/alpha/users/42", Query: "q=go&x=%2F",
			Authorization: clientSecret, RequestID: "e2e-request-1", Host: strings.TrimPrefix(a.srv.URL, "http://")}
		if e != want {
			t.Errorf("the backend saw %+v, want %+v", e, want)
		}
		if got := r.header.Get("X-Request-ID"); got != "e2e-request-1" {
			t.Errorf("X-Request-ID echoed as %q", got)
		}

		r = g.do(t, http.MethodDelete, "/orchestrator/alpha/v1/users/42", nil)
		if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") == "" {
			t.Errorf("DELETE on a GET/POST endpoint: %s (Allow %q), want 405 with Allow", r, r.header.Get("Allow"))
		}
		r = g.do(t, http.MethodGet, "/orchestrator/nope/v1/x", nil)
		if r.status != http.StatusNotFound || !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
			t.Errorf("unknown endpoint: %s (%s), want a 404 problem document", r, r.header.Get("Content-Type"))
		}
		// Unversioned: the second segment belongs to the rest.
		if r, e := g.proxied(t, "/orchestrator/beta/v9/items"); r.status != http.StatusOK || e.Backend != "B" || e.Path != "/beta/v9/items" {
			t.Errorf("unversioned endpoint: %s, backend saw %+v", r, e)
		}
	})

	step("2 register an endpoint through the admin API", func(t *testing.T) {
		gamma := map[string]any{"name": "gamma", "version": "v1", "url": b.srv.URL + "/gamma", "methods": []string{"GET"}}
		if r := g.do(t, http.MethodPost, "/registry/endpoints", gamma); r.status != http.StatusUnauthorized {
			t.Fatalf("POST /registry/endpoints without the token: %s, want 401", r)
		}
		var reg struct {
			ID     string `json:"id"`
			Source string `json:"source"`
		}
		g.adminJSON(t, http.MethodPost, "/registry/endpoints", gamma, http.StatusCreated, &reg)
		if reg.ID != "gamma_v1" || reg.Source != "api" {
			t.Errorf("registered %+v, want id gamma_v1 from source api", reg)
		}
		// Routable at once.
		if r, e := g.proxied(t, "/orchestrator/gamma/v1/items?page=2"); r.status != http.StatusOK || e.Backend != "B" || e.Path != "/gamma/items" || e.Query != "page=2" {
			t.Fatalf("through the registered endpoint: %s, backend saw %+v", r, e)
		}
		if r := g.admin(t, http.MethodPost, "/registry/endpoints", gamma); r.status != http.StatusConflict {
			t.Errorf("registering gamma twice: %s, want 409", r)
		}
		// The file owns its endpoints.
		if r := g.admin(t, http.MethodDelete, "/registry/endpoints/beta", nil); r.status != http.StatusConflict {
			t.Errorf("DELETE of a config-owned endpoint: %s, want 409", r)
		}
		// Persisted for the next start.
		state, err := os.ReadFile(filepath.Join(dir, "state.json"))
		if err != nil || !bytes.Contains(state, []byte("gamma")) {
			t.Errorf("the state file does not hold gamma: %v %s", err, state)
		}
	})

	step("3 hot reload of the config file", func(t *testing.T) {
		var before configStatus
		g.adminJSON(t, http.MethodGet, "/config/status", nil, http.StatusOK, &before)
		if !before.Watching || before.Path != configPath || before.LastError != nil {
			t.Fatalf("/config/status before the edit: %+v", before)
		}

		// Move beta to backend A and add delta, saved the way editors do:
		// a new file renamed over the old one.
		edited := storyConfig(dir, a, b, a.srv.URL+"/beta-moved", `  - name: delta
    url: "`+b.srv.URL+`/delta"
`)
		testutil.ReplaceFile(t, configPath, edited)
		var after configStatus
		testutil.Eventually(t, 10*time.Second, "the edited config to be applied", func() (bool, string) {
			g.adminJSON(t, http.MethodGet, "/config/status", nil, http.StatusOK, &after)
			if after.ReloadCount <= before.ReloadCount {
				return false, fmt.Sprintf("reload_count still %d (last_error %v)", after.ReloadCount, deref(after.LastError))
			}
			r, e := g.proxied(t, "/orchestrator/delta/hello")
			if r.status != http.StatusOK || e.Path != "/delta/hello" {
				return false, "delta: " + r.String()
			}
			return true, ""
		})
		if r, e := g.proxied(t, "/orchestrator/beta/items"); r.status != http.StatusOK || e.Backend != "A" || e.Path != "/beta-moved/items" {
			t.Errorf("the changed beta endpoint: %s, backend saw %+v", r, e)
		}
		// A reload of the file leaves API-owned endpoints alone.
		if r, _ := g.proxied(t, "/orchestrator/gamma/v1/items"); r.status != http.StatusOK {
			t.Errorf("gamma after the reload: %s", r)
		}

		// An invalid file changes nothing: the last good config serves on.
		testutil.ReplaceFile(t, configPath, edited+"    colour: blue\n")
		var broken configStatus
		testutil.Eventually(t, 10*time.Second, "the invalid config to be reported", func() (bool, string) {
			g.adminJSON(t, http.MethodGet, "/config/status", nil, http.StatusOK, &broken)
			return broken.LastError != nil, fmt.Sprintf("%+v", broken)
		})
		if !strings.Contains(*broken.LastError, "colour") || broken.ReloadCount != after.ReloadCount || broken.Version != after.Version {
			t.Errorf("/config/status after an invalid edit: %+v (error %q), want the last good version %s still applied", broken, *broken.LastError, after.Version)
		}
		if r, _ := g.proxied(t, "/orchestrator/delta/hello"); r.status != http.StatusOK {
			t.Errorf("delta while the file is invalid: %s", r)
		}
		testutil.ReplaceFile(t, configPath, edited)
		testutil.Eventually(t, 10*time.Second, "the fixed config to be applied", func() (bool, string) {
			var st configStatus
			g.adminJSON(t, http.MethodGet, "/config/status", nil, http.StatusOK, &st)
			return st.LastError == nil && st.ReloadCount > after.ReloadCount, fmt.Sprintf("%+v", st)
		})
	})

	step("4 circuit breaker trips and recovers", func(t *testing.T) {
		if r, _ := g.proxied(t, "/orchestrator/flaky/v1/x"); r.status != http.StatusOK {
			t.Fatalf("flaky while healthy: %s", r)
		}
		b.failFlaky.Store(true)
		// failure_threshold: 3 consecutive 5xx open the breaker.
		for i := range 3 {
			if r := g.do(t, http.MethodGet, "/orchestrator/flaky/v1/x", nil); r.status < 500 {
				t.Fatalf("failing request %d: %s, want a 5xx", i+1, r)
			}
		}
		var st breakerState
		testutil.Eventually(t, 5*time.Second, "the breaker to open", func() (bool, string) {
			g.adminJSON(t, http.MethodGet, "/circuit-breaker/endpoints/flaky_v1", nil, http.StatusOK, &st)
			return st.State == "open", st.State
		})

		hits := b.flakyHits.Load()
		r := g.do(t, http.MethodGet, "/orchestrator/flaky/v1/x", nil)
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("request with the breaker open: %s, want 503", r)
		}
		if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
			t.Errorf("Retry-After %q, want whole seconds within reset_timeout (60)", r.header.Get("Retry-After"))
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
			t.Errorf("Content-Type %q, want a problem document", ct)
		}
		if n := b.flakyHits.Load(); n != hits {
			t.Errorf("the open breaker let %d requests through to the backend", n-hits)
		}

		// The backend recovers, the breaker stays open (reset_timeout 60s)
		// until an operator resets it.
		b.failFlaky.Store(false)
		if r := g.do(t, http.MethodGet, "/orchestrator/flaky/v1/x", nil); r.status != http.StatusServiceUnavailable {
			t.Errorf("still open before the reset: %s", r)
		}
		g.adminJSON(t, http.MethodPost, "/circuit-breaker/reset/flaky_v1", nil, http.StatusOK, &st)
		if st.State != "closed" {
			t.Errorf("after POST /circuit-breaker/reset: state %q", st.State)
		}
		if r, e := g.proxied(t, "/orchestrator/flaky/v1/x"); r.status != http.StatusOK || e.Path != "/flaky/x" {
			t.Errorf("after the reset: %s", r)
		}

		// alpha's breaker has reset_timeout 300ms, but a trip by hand is an
		// operator override: it holds the breaker open past reset_timeout,
		// and only a reset closes it.
		g.adminJSON(t, http.MethodPost, "/circuit-breaker/trip/alpha_v1", nil, http.StatusOK, &st)
		if st.State != "open" {
			t.Fatalf("after POST /circuit-breaker/trip: state %q", st.State)
		}
		for held := time.Now().Add(600 * time.Millisecond); time.Now().Before(held); {
			if r := g.do(t, http.MethodGet, "/orchestrator/alpha/v1/x", nil); r.status != http.StatusServiceUnavailable {
				t.Fatalf("alpha while tripped (past its 300ms reset_timeout): %s, want 503", r)
			}
		}
		g.adminJSON(t, http.MethodPost, "/circuit-breaker/reset/alpha_v1", nil, http.StatusOK, &st)
		if r, _ := g.proxied(t, "/orchestrator/alpha/v1/x"); r.status != http.StatusOK {
			t.Errorf("alpha after the reset: %s", r)
		}
		g.adminJSON(t, http.MethodGet, "/circuit-breaker/endpoints/alpha_v1", nil, http.StatusOK, &st)
		if st.State != "closed" {
			t.Errorf("alpha's breaker after the reset: %q, want closed", st.State)
		}
	})

	step("5 graceful shutdown on SIGTERM", func(t *testing.T) {
		// A slow request on its own connection, held by the backend.
		slowClient := &http.Client{Transport: &http.Transport{}, Timeout: 20 * time.Second}
		defer slowClient.CloseIdleConnections()
		type result struct {
			status int
			body   []byte
			err    error
		}
		slow := make(chan result, 1)
		go func() {
			resp, err := slowClient.Get(g.base + "/orchestrator/alpha/v1/slow")
			if err != nil {
				slow <- result{err: err}
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			slow <- result{status: resp.StatusCode, body: body, err: err}
		}()
		select {
		case <-a.slowStarted:
		case r := <-slow:
			t.Fatalf("the slow request ended before reaching the backend: %+v", r)
		case <-time.After(10 * time.Second):
			t.Fatal("the slow request never reached the backend")
		}

		g.client.CloseIdleConnections()
		if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		signalled := time.Now()

		// The listener closes: new connections are refused while the slow
		// request is still in flight.
		testutil.Eventually(t, 5*time.Second, "new connections to be refused", func() (bool, string) {
			c, err := net.DialTimeout("tcp", g.addr, time.Second)
			if err == nil {
				c.Close()
				return false, "a new connection was accepted"
			}
			return true, ""
		})
		if g.exited() {
			t.Fatalf("orchestratord exited before the in-flight request finished: %v", g.err)
		}
		select {
		case r := <-slow:
			t.Fatalf("the in-flight request ended before the backend answered: %+v", r)
		default:
		}

		a.releaseSlow()
		select {
		case r := <-slow:
			var e echoed
			if r.err != nil || r.status != http.StatusOK {
				t.Errorf("the in-flight request: status %d, err %v, body %q; want 200", r.status, r.err, r.body)
			} else if err := json.Unmarshal(r.body, &e); err != nil || e.Path != "/alpha/slow" {
				t.Errorf("the in-flight request got %q, want the backend's answer for /alpha/slow", r.body)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the in-flight request never completed")
		}

		select {
		case <-g.done:
		case <-time.After(shutdownTimeout + 5*time.Second):
			t.Fatalf("orchestratord still running %v after SIGTERM", time.Since(signalled))
		}
		if took := time.Since(signalled); took > shutdownTimeout {
			t.Errorf("shutdown took %v, more than shutdown_timeout %v", took, shutdownTimeout)
		}
		if g.err != nil || g.cmd.ProcessState.ExitCode() != 0 {
			t.Errorf("orchestratord exited with %v (code %d), want 0", g.err, g.cmd.ProcessState.ExitCode())
		}
	})

	step("logs", func(t *testing.T) {
		logs := g.stderr.String()
		for _, secret := range []string{adminToken, strings.TrimPrefix(clientSecret, "Bearer ")} {
			if strings.Contains(logs, secret) {
				t.Errorf("a secret (%q) appears in the logs", secret)
			}
		}
		access := false
		for _, line := range nonEmptyLines(logs) {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Errorf("log line is not JSON: %q", line)
				continue
			}
			for _, k := range []string{"timestamp", "level", "message"} {
				if _, ok := rec[k]; !ok {
					t.Errorf("log line without %q: %s", k, line)
				}
			}
			if rec["endpoint_id"] == "alpha_v1" && rec["request_id"] == "e2e-request-1" && rec["status_code"] != nil && rec["response_time"] != nil {
				access = true
			}
		}
		if !access {
			t.Error("no access log line for the first proxied request (endpoint_id alpha_v1, request_id e2e-request-1)")
		}
	})
}

// ---- helpers -----------------------------------------------------------------

func nonEmptyLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
