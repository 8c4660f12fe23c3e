package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

const waitFor = 10 * time.Second

// runSync runs a command that returns by itself.
func runSync(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// clearEnv makes sure the environment of the machine running the tests does
// not leak into them.
func clearEnv(t *testing.T) {
	for _, k := range []string{"HOST", "PORT", "CONFIG_PATH", "LOG_LEVEL", "ORCHESTRATOR_ADMIN_TOKEN"} {
		t.Setenv(k, "")
	}
}

func TestVersion(t *testing.T) {
	code, stdout, stderr := runSync("version")
	assert.Equal(t, 0, code, "got exit %d; want 0", code)
	want := fmt.Sprintf("orchestratord %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	assert.Equal(t, want, stdout, "got %q; want %q", stdout, want)
	assert.Contains(t, stdout, runtime.Version(), "got no Go version in %q", stdout)
	assert.Empty(t, stderr)
}

func TestValidate(t *testing.T) {
	t.Run("a valid file exits 0 and says ok", func(t *testing.T) {
		seed, err := os.ReadFile("../../testdata/seed.yaml") // docs/DESIGN.md's seed config, verbatim
		require.NoError(t, err)
		path := testutil.ConfigFile(t, string(seed))
		code, stdout, stderr := runSync("validate", path)
		assert.Equal(t, 0, code, "got exit %d (%s); want 0", code, stderr)
		assert.Equal(t, path+": ok\n", stdout)
		assert.Empty(t, stderr)
	})
	t.Run("an invalid file exits 1 with one file:line:column: message line per error", func(t *testing.T) {
		path := testutil.ConfigFile(t, `server:
  port: 70000
endpoints:
  - name: a
  - name: b
    url: "ftp://b"
    methods: [GET, "BAD METHOD"]
logging:
  level: loud
`)
		code, stdout, stderr := runSync("validate", path)
		assert.Equal(t, 1, code, "got exit %d; want 1", code)
		assert.Empty(t, stdout)
		want := []string{
			path + ":2:9: server.port: 70000 is not a TCP port (1-65535)",
			path + ":4:5: endpoints[0].url: is required",
			path + `:6:10: endpoints[1].url: "ftp://b" must use http or https`,
			path + `:7:20: endpoints[1].methods[1]: "BAD METHOD" is not an HTTP method`,
			path + `:9:10: logging.level: unknown level "loud"; want debug, info, warn or error`,
		}
		got := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		assert.Equal(t, want, got, "got %q; want %q", got, want)
		assert.True(t, strings.HasSuffix(stderr, "\n"), "got %q; want a final newline", stderr)
	})
	t.Run("unknown fields and wrong types are all reported with their position", func(t *testing.T) {
		path := testutil.ConfigFile(t, "endpoints:\n  - name: a\n    url: http://127.0.0.1:1\n    timout: 3\n    disabled: sometimes\nservr:\n  port: 1\n")
		code, _, stderr := runSync("validate", path)
		assert.Equal(t, 1, code)
		want := []string{
			path + `:4:5: endpoints[0].timout: unknown field "timout" (did you mean "timeout"?)`,
			path + ":5:15: endpoints[0].disabled: must be true or false",
			path + `:6:1: servr: unknown field "servr" (did you mean "server"?)`,
		}
		got := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		assert.Equal(t, want, got, "got %q; want %q", got, want)
	})
	t.Run("problems of decoding and of validation are listed together", func(t *testing.T) {
		// Issue 13, point 6: an unknown field and a bad duration used to
		// hide the bad url and the empty name until they were fixed.
		four, err := os.ReadFile("../../testdata/four-problems.yaml")
		require.NoError(t, err)
		path := testutil.ConfigFile(t, string(four))
		code, stdout, stderr := runSync("validate", path)
		assert.Equal(t, 1, code)
		assert.Empty(t, stdout)
		want := []string{
			path + `:6:3: server.colour: unknown field "colour"`,
			path + `:10:14: endpoints[0].timeout: invalid duration "5 parsecs": want seconds (30) or a Go duration ("250ms", "1m30s")`,
			path + `:12:10: endpoints[1].url: "ftp://127.0.0.1:9002" must use http or https`,
			path + ":13:11: endpoints[2].name: is required",
		}
		got := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		assert.Equal(t, want, got, "got %q; want %q", got, want)
	})
	t.Run("every error line matches file:line:column: message", func(t *testing.T) {
		path := testutil.ConfigFile(t, "endpoints:\n  - name: [x\n")
		code, _, stderr := runSync("validate", path)
		assert.Equal(t, 1, code)
		line := regexp.MustCompile(`^` + regexp.QuoteMeta(path) + `:\d+:\d+: \S.*$`)
		for _, l := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
			assert.Regexp(t, line, l)
		}
	})
	t.Run("a file with no document or a null endpoints list exits 1", func(t *testing.T) {
		// A file truncated for a rewrite must not pass for a config that
		// serves nothing; "endpoints: []" says so on purpose.
		for _, content := range []string{"", "  \n", "# only a comment\n", "---\n", "endpoints: ~\n", "endpoints:\n"} {
			path := testutil.ConfigFile(t, content)
			code, stdout, stderr := runSync("validate", path)
			assert.Equal(t, 1, code, "%q: got exit %d; want 1", content, code)
			assert.Empty(t, stdout, "%q", content)
			assert.Regexp(t, `^`+regexp.QuoteMeta(path)+`:\d+:\d+: \S`, stderr, "%q", content)
		}
		path := testutil.ConfigFile(t, "endpoints: []\n")
		code, stdout, _ := runSync("validate", path)
		assert.Equal(t, 0, code)
		assert.Equal(t, path+": ok\n", stdout)
	})
	t.Run("a second document exits 1 naming its line", func(t *testing.T) {
		path := testutil.ConfigFile(t, "endpoints: []\n---\nendpoints: []\n")
		code, _, stderr := runSync("validate", path)
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, path+":2:")
	})
	t.Run("a missing file exits 1 naming it", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "absent.yaml")
		code, stdout, stderr := runSync("validate", path)
		assert.Equal(t, 1, code)
		assert.Empty(t, stdout)
		assert.Contains(t, stderr, path)
	})
	t.Run("no path or two paths is a usage error", func(t *testing.T) {
		code, _, stderr := runSync("validate")
		assert.Equal(t, 2, code)
		assert.Contains(t, stderr, "usage: orchestratord validate [--diff ADMIN_URL] PATH")
		code, _, _ = runSync("validate", "a.yaml", "b.yaml")
		assert.Equal(t, 2, code)
	})
}

func TestUsageErrors(t *testing.T) {
	clearEnv(t)
	t.Run("an unknown flag exits 2 with the usage", func(t *testing.T) {
		code, _, stderr := runSync("--bogus")
		assert.Equal(t, 2, code)
		assert.Contains(t, stderr, "usage:")
	})
	t.Run("an unexpected argument exits 2 naming it", func(t *testing.T) {
		code, _, stderr := runSync("serve")
		assert.Equal(t, 2, code)
		assert.Contains(t, stderr, `unexpected argument "serve"`)
	})
	t.Run("-h prints the usage and exits 0", func(t *testing.T) {
		code, _, stderr := runSync("-h")
		assert.Equal(t, 0, code)
		for _, want := range []string{"orchestratord validate [--diff ADMIN_URL] PATH", "orchestratord version", "-config", "-host", "-port", "-log-level", "-watch"} {
			assert.Contains(t, stderr, want)
		}
	})
	t.Run("a config that cannot start exits 1 with the reason", func(t *testing.T) {
		path := testutil.ConfigFile(t, "server:\n  port: 70000\n")
		code, _, stderr := runSync("--config", path, "--watch=false", "--host", "127.0.0.1", "--port", "0")
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, path+":2:9: server.port")
	})
	t.Run("a watched config with bad endpoints exits 1 with every problem", func(t *testing.T) {
		path := testutil.ConfigFile(t, "endpoints:\n  - name: svc\n    url: ftp://nowhere\n  - name: \"\"\n    url: http://127.0.0.1:1\n")
		code, _, stderr := runSync("--config", path, "--host", "127.0.0.1", "--port", "0")
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, path+":3:10: endpoints[0].url: ")
		assert.Contains(t, stderr, path+":4:11: endpoints[1].name: ")
	})
	t.Run("a bad log level exits 1", func(t *testing.T) {
		code, _, stderr := runSync("--host", "127.0.0.1", "--port", "0", "--log-level", "loud")
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, "loud")
	})
}

// serving is one run() of the server, stopped with SIGTERM as in
// production.
type serving struct {
	t      *testing.T
	stdout *testutil.LogBuffer
	stderr *testutil.LogBuffer
	code   chan int
	host   string
	port   string
}

var listening = regexp.MustCompile(`listening on https?://(\S+):(\d+)\n`)

// serve runs run(args) until it prints where it listens. It fails the test
// when run exits first.
func serve(t *testing.T, args ...string) *serving {
	t.Helper()
	s := &serving{t: t, stdout: &testutil.LogBuffer{}, stderr: &testutil.LogBuffer{}, code: make(chan int, 1)}
	go func() { s.code <- run(args, s.stdout, s.stderr) }()
	testutil.Eventually(t, waitFor, "run to print where it listens", func() (bool, string) {
		if m := listening.FindStringSubmatch(s.stdout.String()); m != nil {
			s.host, s.port = m[1], m[2]
			return true, ""
		}
		select {
		case code := <-s.code:
			t.Fatalf("run exited %d before serving; stderr:\n%s", code, s.stderr)
		default:
		}
		return false, "stdout:\n" + s.stdout.String()
	})
	// The banner is printed after the signal handler is installed, so the
	// SIGTERM below is caught by run, never by the default action.
	t.Cleanup(func() { s.stop() })
	return s
}

// stop sends SIGTERM to the process, as an orchestrator would, and returns
// run's exit code.
func (s *serving) stop() int {
	s.t.Helper()
	if s.code == nil {
		return -1
	}
	require.NoError(s.t, syscall.Kill(os.Getpid(), syscall.SIGTERM))
	select {
	case code := <-s.code:
		s.code = nil
		return code
	case <-time.After(3 * waitFor):
		s.t.Fatal("run did not return after SIGTERM")
		return -1
	}
}

func (s *serving) get(path string) (int, string) {
	s.t.Helper()
	client := &http.Client{Timeout: waitFor, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	res, err := client.Get("http://" + net.JoinHostPort("127.0.0.1", s.port) + path)
	require.NoError(s.t, err, "GET %s", path)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(s.t, err)
	return res.StatusCode, string(body)
}

// busyPort holds a loopback port for the test.
func busyPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func backendServer(t *testing.T) *httptest.Server {
	t.Helper()
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend %s", r.URL.Path)
	}))
	t.Cleanup(b.Close)
	return b
}

func TestServeWithoutConfig(t *testing.T) {
	clearEnv(t)
	s := serve(t, "--host", "127.0.0.1", "--port", "0")
	t.Run("the echo endpoint answers the first curl", func(t *testing.T) {
		code, body := s.get("/orchestrator/echo/v1/hello")
		assert.Equal(t, http.StatusOK, code)
		assert.Contains(t, body, `"path": "/hello"`)
	})
	t.Run("the banner prints where it listens and the first curl", func(t *testing.T) {
		out := s.stdout.String()
		assert.Contains(t, out, "orchestratord "+version+" listening on http://127.0.0.1:"+s.port+"\n")
		assert.Contains(t, out, "try: curl http://localhost:"+s.port+"/orchestrator/echo/v1/hello\n")
	})
	t.Run("SIGTERM shuts it down with exit 0", func(t *testing.T) {
		assert.Equal(t, 0, s.stop())
		assert.Contains(t, s.stderr.String(), `"message":"stopped"`)
	})
}

func TestSettingsPrecedence(t *testing.T) {
	t.Run("flags win over the environment", func(t *testing.T) {
		clearEnv(t)
		busy := busyPort(t)
		t.Setenv("HOST", "192.0.2.1")
		t.Setenv("PORT", busy)
		t.Setenv("CONFIG_PATH", filepath.Join(t.TempDir(), "absent.yaml"))
		t.Setenv("LOG_LEVEL", "error")
		good := testutil.ConfigFile(t, "endpoints: []\n")
		s := serve(t, "--host", "127.0.0.1", "--port", "0", "--config", good, "--log-level", "info")
		assert.Equal(t, "127.0.0.1", s.host)
		assert.NotEqual(t, busy, s.port, "got the environment's port; want the flag's")
		assert.Contains(t, s.stdout.String(), "config:  "+good)
		assert.Equal(t, 0, s.stop())
		assert.Contains(t, s.stderr.String(), `"message":"shutting down"`, "got no info line; want the flag's level info over LOG_LEVEL=error")
	})
	t.Run("the environment wins over the file", func(t *testing.T) {
		clearEnv(t)
		busy := busyPort(t)
		b := backendServer(t)
		path := testutil.ConfigFile(t, fmt.Sprintf("server:\n  host: 192.0.2.1\n  port: %s\nlogging:\n  level: debug\nendpoints:\n  - name: svc\n    url: %q\n", busy, b.URL))
		t.Setenv("HOST", "127.0.0.1")
		t.Setenv("PORT", "0")
		t.Setenv("CONFIG_PATH", path)
		t.Setenv("LOG_LEVEL", "error")
		s := serve(t)
		assert.Equal(t, "127.0.0.1", s.host)
		assert.NotEqual(t, busy, s.port, "got the file's port; want PORT's")
		code, body := s.get("/orchestrator/svc/x")
		assert.Equal(t, "200 backend /x", fmt.Sprint(code, " ", body), "got the wrong answer; want CONFIG_PATH's endpoint")
		assert.Equal(t, 0, s.stop())
		assert.NotContains(t, s.stderr.String(), `"level":"INFO"`, "got info lines; want LOG_LEVEL=error over the file's debug")
	})
	t.Run("the file wins over the defaults", func(t *testing.T) {
		clearEnv(t)
		busy := busyPort(t)
		path := testutil.ConfigFile(t, fmt.Sprintf("server:\n  host: 127.0.0.1\n  port: %s\n", busy))
		code, _, stderr := runSync("--config", path)
		assert.Equal(t, 1, code, "got exit %d; want 1 from binding the file's busy port", code)
		assert.Contains(t, stderr, "127.0.0.1:"+busy)
		assert.Contains(t, stderr, "address already in use")
	})
	t.Run("the file's log level wins over the default", func(t *testing.T) {
		clearEnv(t)
		path := testutil.ConfigFile(t, "logging:\n  level: warn\n")
		s := serve(t, "--config", path, "--host", "127.0.0.1", "--port", "0")
		assert.Equal(t, 0, s.stop())
		assert.NotContains(t, s.stderr.String(), `"message":"shutting down"`, "got an info line; want the file's level warn")
	})
	t.Run("the default log level is info", func(t *testing.T) {
		clearEnv(t)
		s := serve(t, "--host", "127.0.0.1", "--port", "0")
		assert.Equal(t, 0, s.stop())
		assert.Contains(t, s.stderr.String(), `"message":"shutting down"`)
		assert.NotContains(t, s.stderr.String(), `"level":"DEBUG"`)
	})
	t.Run("ORCHESTRATOR_ADMIN_TOKEN protects the admin API", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("ORCHESTRATOR_ADMIN_TOKEN", "env-token")
		s := serve(t, "--host", "127.0.0.1", "--port", "0")
		code, _ := s.get("/config/status")
		assert.Equal(t, http.StatusUnauthorized, code)
		code, _ = s.get("/health")
		assert.Equal(t, http.StatusOK, code, "got /health refused; want it open")
	})
	t.Run("--watch=false turns hot reload off", func(t *testing.T) {
		clearEnv(t)
		path := testutil.ConfigFile(t, "endpoints: []\n")
		s := serve(t, "--config", path, "--watch=false", "--host", "127.0.0.1", "--port", "0")
		assert.Contains(t, s.stdout.String(), "(watching: false)")
		_, body := s.get("/config/status")
		assert.Contains(t, body, `"watching":false`)
	})
	t.Run("watching is on by default", func(t *testing.T) {
		clearEnv(t)
		path := testutil.ConfigFile(t, "endpoints: []\n")
		s := serve(t, "--config", path, "--host", "127.0.0.1", "--port", "0")
		assert.Contains(t, s.stdout.String(), "(watching: true)")
	})
}
