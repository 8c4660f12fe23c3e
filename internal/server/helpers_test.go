package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator/admin"
	"github.com/orchestrator-go/orchestrator/internal/server"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

// waitFor bounds every wait of these tests.
const waitFor = 10 * time.Second

// eventually is testutil.Eventually bound to waitFor, this package's bound
// on every wait, for the conditions here that have no state worth reporting
// on a timeout. It exists only so that its call sites need not repeat
// waitFor.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, waitFor, what, func() (bool, string) { return cond(), "" })
}

// testServer is one server.Run driven in-process.
type testServer struct {
	t      *testing.T
	addr   string // main listener, host:port
	admin  string // admin listener when separate, else ""
	base   string // http(s)://addr
	cancel context.CancelFunc
	done   chan struct{}
	err    error // Run's result, valid once done is closed
	stdout *testutil.LogBuffer
	stderr *testutil.LogBuffer
	client *http.Client
}

// startServer runs server.Run on a loopback port and waits until it
// serves. The test's cleanup stops it and requires a clean shutdown.
func startServer(t *testing.T, opts server.Options) *testServer {
	t.Helper()
	s, err := tryStartServer(t, opts)
	require.NoError(t, err, "server.Run failed to start")
	return s
}

// tryStartServer is startServer that returns Run's error when it fails
// before serving.
func tryStartServer(t *testing.T, opts server.Options) (*testServer, error) {
	t.Helper()
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == "" {
		opts.Port = "0"
	}
	return launch(t, opts)
}

// launch runs server.Run with opts exactly as given (apart from the output
// buffers and the Ready hook).
func launch(t *testing.T, opts server.Options) (*testServer, error) {
	t.Helper()
	s := &testServer{
		t:      t,
		done:   make(chan struct{}),
		stdout: &testutil.LogBuffer{},
		stderr: &testutil.LogBuffer{},
	}
	opts.Stdout, opts.Stderr = s.stdout, s.stderr
	type addrs struct{ main, admin net.Addr }
	ready := make(chan addrs, 1)
	opts.Ready = func(main, admin net.Addr) { ready <- addrs{main, admin} }
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		defer close(s.done)
		s.err = server.Run(ctx, opts)
	}()
	select {
	case a := <-ready:
		s.addr = a.main.String()
		if a.admin != nil {
			s.admin = a.admin.String()
		}
	case <-s.done:
		cancel()
		return nil, s.err
	case <-time.After(waitFor):
		cancel()
		t.Fatalf("server.Run did not become ready within %v; stderr:\n%s", waitFor, s.stderr)
	}
	s.base = "http://" + s.addr
	s.client = &http.Client{Timeout: waitFor, Transport: &http.Transport{}}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("got Run() = %v at cleanup; want nil", err)
		}
		s.client.CloseIdleConnections()
	})
	return s, nil
}

// stop cancels Run's context and returns its result. It may be called
// more than once.
func (s *testServer) stop() error {
	s.t.Helper()
	s.cancel()
	select {
	case <-s.done:
		return s.err
	case <-time.After(3 * waitFor):
		s.t.Fatalf("server.Run did not return within %v of its context ending", 3*waitFor)
		return nil
	}
}

// get fetches path from the main listener and returns the status and body.
func (s *testServer) get(path string) (int, string, error) {
	res, err := s.client.Get(s.base + path)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res.StatusCode, string(body), err
}

// mustGet is get that fails the test on a transport error.
func (s *testServer) mustGet(path string) (int, string) {
	s.t.Helper()
	code, body, err := s.get(path)
	require.NoError(s.t, err, "GET %s", path)
	return code, body
}

// do sends a request with a JSON body and returns the status and body.
func (s *testServer) do(method, path, body string) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	require.NoError(s.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := s.client.Do(req)
	require.NoError(s.t, err, "%s %s", method, path)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(s.t, err)
	return res.StatusCode, string(b)
}

// status returns GET /config/status.
func (s *testServer) status() admin.ConfigStatus {
	s.t.Helper()
	code, body := s.mustGet("/config/status")
	require.Equal(s.t, http.StatusOK, code, "GET /config/status: %s", body)
	var st admin.ConfigStatus
	require.NoError(s.t, json.Unmarshal([]byte(body), &st), "GET /config/status: %s", body)
	return st
}

// waitReloads waits until /config/status counts n successful reloads.
func (s *testServer) waitReloads(n int64) admin.ConfigStatus {
	s.t.Helper()
	var st admin.ConfigStatus
	eventually(s.t, fmt.Sprintf("reload_count %d", n), func() bool {
		st = s.status()
		if st.ReloadCount > n {
			s.t.Fatalf("got reload_count %d; want %d", st.ReloadCount, n)
		}
		return st.ReloadCount == n
	})
	return st
}

// waitError waits until /config/status shows a last error.
func (s *testServer) waitError() admin.ConfigStatus {
	s.t.Helper()
	var st admin.ConfigStatus
	eventually(s.t, "a last_error in /config/status", func() bool {
		st = s.status()
		return st.LastError != nil
	})
	return st
}

// waitBody waits until GET path answers 200 with body.
func (s *testServer) waitBody(path, want string) {
	s.t.Helper()
	testutil.Eventually(s.t, waitFor, fmt.Sprintf("GET %s = 200 %q", path, want), func() (bool, string) {
		code, body, err := s.get(path)
		return err == nil && code == http.StatusOK && body == want, fmt.Sprintf("%d %q %v", code, body, err)
	})
}

// backend is a loopback upstream that answers "<name> <path>".
func backend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", name, r.URL.Path)
	}))
	t.Cleanup(b.Close)
	return b
}

// endpointYAML is one endpoint item of a config file.
func endpointYAML(name, url string, extra ...string) string {
	s := fmt.Sprintf("  - name: %s\n    url: %q\n", name, url)
	for _, e := range extra {
		s += "    " + e + "\n"
	}
	return s
}

// load is traffic from several clients against one URL, counting answers
// that pass a check and those that do not, until stopped.
type load struct {
	ok, failed atomic.Int64
	firstErr   atomic.Value // the first failure, as text
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

// startLoad starts n clients sending GET url in a loop; good judges each
// answer. The test's cleanup stops them if the test does not.
func startLoad(t *testing.T, n int, url string, good func(status int, body string) bool) *load {
	t.Helper()
	l := &load{}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	for range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			client := &http.Client{Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			for ctx.Err() == nil {
				res, err := client.Get(url)
				if err != nil {
					l.fail(err.Error())
					continue
				}
				body, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil || !good(res.StatusCode, string(body)) {
					l.fail(fmt.Sprintf("%d %q %v", res.StatusCode, body, err))
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	t.Cleanup(l.stop)
	eventually(t, "the clients' first successes", func() bool { return l.ok.Load() > 0 })
	return l
}

func (l *load) fail(what string) {
	l.failed.Add(1)
	l.firstErr.CompareAndSwap(nil, what)
}

// stop ends the traffic and waits for every client.
func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

// servedMore waits until the clients have had another good answer.
func (l *load) servedMore(t *testing.T, what string) {
	t.Helper()
	before := l.ok.Load()
	eventually(t, what, func() bool { return l.ok.Load() > before })
}
