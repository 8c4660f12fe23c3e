package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/config"
	"github.com/orchestrator-go/orchestrator/internal/server"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

func TestRunWithoutConfig(t *testing.T) {
	s := startServer(t, server.Options{Version: "v9.9.9-test"})
	_, port, err := net.SplitHostPort(s.addr)
	require.NoError(t, err)

	t.Run("the embedded default serves the built-in echo upstream", func(t *testing.T) {
		code, body := s.mustGet("/orchestrator/echo/v1/hello?x=1")
		require.Equal(t, http.StatusOK, code, "got %d %s; want 200 from the echo upstream", code, body)
		var echo struct {
			Service string `json:"service"`
			Method  string `json:"method"`
			Path    string `json:"path"`
			Query   string `json:"query"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &echo), "got body %q; want JSON", body)
		assert.Equal(t, "orchestratord built-in echo", echo.Service)
		assert.Equal(t, http.MethodGet, echo.Method)
		assert.Equal(t, "/hello", echo.Path, "got path %q; want /hello forwarded", echo.Path)
		assert.Equal(t, "x=1", echo.Query)
	})
	t.Run("the echo upstream shows that credentials arrived without echoing them", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodGet, s.base+"/orchestrator/echo/v1/hello", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer very-secret-value")
		res, err := s.client.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		var echo struct {
			Headers map[string][]string `json:"headers"`
		}
		require.NoError(t, json.NewDecoder(res.Body).Decode(&echo))
		assert.Equal(t, []string{"[present]"}, echo.Headers["Authorization"])
	})
	t.Run("the banner says where it listens and gives a first curl", func(t *testing.T) {
		out := s.stdout.String()
		assert.Contains(t, out, "orchestratord v9.9.9-test listening on http://127.0.0.1:"+port+"\n")
		assert.Contains(t, out, "try: curl http://localhost:"+port+"/orchestrator/echo/v1/hello\n")
		assert.Contains(t, out, "embedded default")
	})
	t.Run("the admin API is served at the root of the main listener", func(t *testing.T) {
		code, body := s.mustGet("/health")
		assert.Equal(t, http.StatusOK, code, "GET /health: %s", body)
		st := s.status()
		assert.Empty(t, st.Path, "got path %q; want none for the embedded default", st.Path)
		assert.False(t, st.Watching, "got watching; want false without a file")
	})
	t.Run("reload and sync answer 409 without a config file", func(t *testing.T) {
		code, body := s.do(http.MethodPost, "/config/reload", "")
		assert.Equal(t, http.StatusConflict, code, "POST /config/reload: %s", body)
		code, body = s.do(http.MethodPost, "/registry/sync", "")
		assert.Equal(t, http.StatusConflict, code, "POST /registry/sync: %s", body)
	})
	t.Run("admin routes cannot be reached through the prefix", func(t *testing.T) {
		code, _ := s.mustGet("/orchestrator/config/status")
		assert.Equal(t, http.StatusNotFound, code)
	})
	t.Run("Run returns nil when its context ends", func(t *testing.T) {
		assert.NoError(t, s.stop())
		assert.Contains(t, s.stderr.String(), `"message":"stopped"`)
	})
}

func TestRunWithAConfigFile(t *testing.T) {
	b := backend(t, "users")
	path := testutil.ConfigFile(t, "endpoints:\n"+endpointYAML("users", b.URL+"/api", "version: v1", `methods: ["GET"]`))
	s := startServer(t, server.Options{ConfigPath: path, Watch: true})

	t.Run("its endpoints are routed", func(t *testing.T) {
		code, body := s.mustGet("/orchestrator/users/v1/list")
		assert.Equal(t, http.StatusOK, code)
		assert.Equal(t, "users /api/list", body)
	})
	t.Run("the endpoint's settings apply", func(t *testing.T) {
		code, _ := s.do(http.MethodPost, "/orchestrator/users/v1/list", "{}")
		assert.Equal(t, http.StatusMethodNotAllowed, code)
	})
	t.Run("the banner names the file and says it is watched", func(t *testing.T) {
		assert.Contains(t, s.stdout.String(), "config:  "+path+" (watching: true)")
		assert.NotContains(t, s.stdout.String(), "try: curl", "got an echo curl; want none without the echo upstream")
	})
	t.Run("config status shows the file, its version and no error", func(t *testing.T) {
		st := s.status()
		assert.Equal(t, path, st.Path)
		assert.NotEmpty(t, st.Version)
		assert.NotNil(t, st.LoadedAt)
		assert.Zero(t, st.ReloadCount)
		assert.Nil(t, st.LastError)
		assert.True(t, st.Watching, "got watching false; want true")
	})
	t.Run("config endpoints are listed with source config", func(t *testing.T) {
		code, body := s.mustGet("/registry/endpoints/users_v1")
		require.Equal(t, http.StatusOK, code, body)
		var ep orchestrator.RegisteredEndpoint
		require.NoError(t, json.Unmarshal([]byte(body), &ep))
		assert.Equal(t, orchestrator.SourceConfig, ep.Source)
	})
}

func TestRunRefusesBadStarts(t *testing.T) {
	t.Run("a missing config file is an error", func(t *testing.T) {
		_, err := tryStartServer(t, server.Options{ConfigPath: filepath.Join(t.TempDir(), "absent.yaml")})
		require.Error(t, err)
		assert.True(t, errors.Is(err, os.ErrNotExist), "got %v; want a not-exist error", err)
	})
	t.Run("an invalid config file without watching is a located error", func(t *testing.T) {
		path := testutil.ConfigFile(t, "server:\n  port: 70000\n")
		_, err := tryStartServer(t, server.Options{ConfigPath: path})
		require.Error(t, err)
		var ce *config.Error
		require.True(t, errors.As(err, &ce), "got %T %v; want *config.Error", err, err)
		assert.Equal(t, path+":2:9: server.port: 70000 is not a TCP port (1-65535)", err.Error())
	})
	t.Run("a port that is not a number is an error", func(t *testing.T) {
		_, err := tryStartServer(t, server.Options{Port: "http"})
		require.Error(t, err)
		assert.Contains(t, err.Error(), `"http"`)
	})
	t.Run("a port out of range is an error", func(t *testing.T) {
		_, err := tryStartServer(t, server.Options{Port: "65536"})
		require.Error(t, err)
	})
	t.Run("an unknown log level is an error", func(t *testing.T) {
		_, err := tryStartServer(t, server.Options{LogLevel: "chatty"})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "chatty")
	})
	t.Run("a state file that is not JSON is an error", func(t *testing.T) {
		state := filepath.Join(t.TempDir(), "state.json")
		require.NoError(t, os.WriteFile(state, []byte("{"), 0o600))
		path := testutil.ConfigFile(t, fmt.Sprintf("registry:\n  state_file: %q\n", state))
		_, err := tryStartServer(t, server.Options{ConfigPath: path})
		require.Error(t, err)
		assert.Contains(t, err.Error(), state)
	})
}

// occupiedPort holds a loopback port for the test and returns it.
func occupiedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

func TestRunSettingsPrecedence(t *testing.T) {
	t.Run("the options' host and port win over the file's", func(t *testing.T) {
		taken := occupiedPort(t)
		path := testutil.ConfigFile(t, fmt.Sprintf("server:\n  host: 192.0.2.1\n  port: %d\n", taken))
		s := startServer(t, server.Options{ConfigPath: path, Host: "127.0.0.1", Port: "0"})
		host, port, err := net.SplitHostPort(s.addr)
		require.NoError(t, err)
		assert.Equal(t, "127.0.0.1", host)
		assert.NotEqual(t, strconv.Itoa(taken), port, "got the file's port; want the option's")
	})
	t.Run("the file's port is used when no option is given", func(t *testing.T) {
		taken := occupiedPort(t)
		path := testutil.ConfigFile(t, fmt.Sprintf("server:\n  host: 127.0.0.1\n  port: %d\n", taken))
		_, err := launch(t, server.Options{ConfigPath: path})
		require.Error(t, err, "got a start; want the file's (occupied) port tried")
		assert.True(t, errors.Is(err, syscall.EADDRINUSE), "got %v; want EADDRINUSE on port %d", err, taken)
	})
	t.Run("the file's host is used when no option is given", func(t *testing.T) {
		path := testutil.ConfigFile(t, "server:\n  host: 127.0.0.1\n")
		s, err := launch(t, server.Options{ConfigPath: path, Port: "0"})
		require.NoError(t, err)
		host, _, err := net.SplitHostPort(s.addr)
		require.NoError(t, err)
		assert.Equal(t, "127.0.0.1", host, "got %s; want the file's host", host)
	})
	infoLogged := func(t *testing.T, fileLevel, optLevel string) bool {
		t.Helper()
		path := testutil.ConfigFile(t, fmt.Sprintf("logging:\n  level: %s\n", fileLevel))
		s := startServer(t, server.Options{ConfigPath: path, LogLevel: optLevel})
		require.NoError(t, s.stop())
		return strings.Contains(s.stderr.String(), `"message":"shutting down"`)
	}
	t.Run("the option's log level wins over the file's", func(t *testing.T) {
		assert.False(t, infoLogged(t, "debug", "error"), "got info lines; want level error from the option")
		assert.True(t, infoLogged(t, "error", "info"), "got no info line; want level info from the option")
	})
	t.Run("the file's log level is used when no option is given", func(t *testing.T) {
		assert.False(t, infoLogged(t, "warn", ""), "got info lines; want level warn from the file")
		assert.True(t, infoLogged(t, "debug", ""), "got no info line; want level debug from the file")
	})
	t.Run("the file's log format is used", func(t *testing.T) {
		path := testutil.ConfigFile(t, "logging:\n  format: text\n")
		s := startServer(t, server.Options{ConfigPath: path})
		require.NoError(t, s.stop())
		assert.Contains(t, s.stderr.String(), "message=stopped")
	})
	t.Run("the options' admin token wins over the file's", func(t *testing.T) {
		path := testutil.ConfigFile(t, "admin:\n  token: from-the-file\n")
		s := startServer(t, server.Options{ConfigPath: path, AdminToken: "from-the-env"})
		for token, want := range map[string]int{"": 401, "from-the-file": 401, "from-the-env": 200} {
			req, err := http.NewRequest(http.MethodGet, s.base+"/config/status", nil)
			require.NoError(t, err)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			res, err := s.client.Do(req)
			require.NoError(t, err)
			res.Body.Close()
			assert.Equal(t, want, res.StatusCode, "token %q: got %d; want %d", token, res.StatusCode, want)
		}
	})
}

func TestRunSeparateAdminListener(t *testing.T) {
	b := backend(t, "svc")
	path := testutil.ConfigFile(t, "admin:\n  listen: 127.0.0.1:0\nendpoints:\n"+endpointYAML("svc", b.URL))
	s := startServer(t, server.Options{ConfigPath: path})
	require.NotEmpty(t, s.admin, "got no admin address from Ready; want the admin listener's")

	t.Run("the admin API answers on its own listener", func(t *testing.T) {
		res, err := s.client.Get("http://" + s.admin + "/config/status")
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusOK, res.StatusCode)
	})
	t.Run("the main listener serves the gateway but no admin route", func(t *testing.T) {
		code, body := s.mustGet("/orchestrator/svc/x")
		assert.Equal(t, http.StatusOK, code)
		assert.Equal(t, "svc /x", body)
		code, _ = s.mustGet("/config/status")
		assert.Equal(t, http.StatusNotFound, code)
	})
	t.Run("the banner shows the admin address", func(t *testing.T) {
		assert.Contains(t, s.stdout.String(), "admin:   http://"+s.admin+"/health")
	})
}

// TestRunPprof: the runtime profiles are off by default and, with
// admin.pprof, answer an authorized admin caller only.
func TestRunPprof(t *testing.T) {
	b := backend(t, "svc")
	get := func(s *testServer, path, token string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, s.base+path, nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := s.client.Do(req)
		require.NoError(t, err, "GET %s", path)
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return res.StatusCode, string(body)
	}
	const token = "pprof-test-token"

	t.Run("off by default", func(t *testing.T) {
		s := startServer(t, server.Options{ConfigPath: testutil.ConfigFile(t, "endpoints:\n"+endpointYAML("svc", b.URL)), AdminToken: token})
		code, body := get(s, "/debug/pprof/", token)
		assert.Equal(t, http.StatusNotFound, code, "GET /debug/pprof/: %s", body)
		code, body = get(s, "/debug/pprof/heap", token)
		assert.Equal(t, http.StatusNotFound, code, "GET /debug/pprof/heap: %s", body)
	})
	t.Run("on: answers the admin token and refuses anyone else", func(t *testing.T) {
		s := startServer(t, server.Options{ConfigPath: testutil.ConfigFile(t, "admin:\n  pprof: true\nendpoints:\n"+endpointYAML("svc", b.URL)), AdminToken: token})
		code, body := get(s, "/debug/pprof/", token)
		require.Equal(t, http.StatusOK, code, "GET /debug/pprof/: %s", body)
		assert.Contains(t, body, "heap")
		code, body = get(s, "/debug/pprof/heap?debug=1", token)
		require.Equal(t, http.StatusOK, code, "GET /debug/pprof/heap: %s", body)
		assert.Contains(t, body, "heap profile")
		code, body = get(s, "/debug/pprof/", "")
		assert.Equal(t, http.StatusUnauthorized, code, "GET /debug/pprof/ without the token: %s", body)
		code, body = get(s, "/debug/pprof/goroutine?debug=1", "wrong")
		assert.Equal(t, http.StatusUnauthorized, code, "GET /debug/pprof/goroutine with a wrong token: %s", body)
	})
}
