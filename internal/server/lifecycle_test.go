package server_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/internal/server"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

func TestStateFileRestoresAPIEndpointsAfterARestart(t *testing.T) {
	api := backend(t, "api")
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	path := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf("registry:\n  state_file: %q\n", state)), 0o600))

	first := startServer(t, server.Options{ConfigPath: path, Watch: true})
	code, body := first.do(http.MethodPost, "/registry/endpoints", fmt.Sprintf(`{"name":"dyn","version":"v1","url":%q}`, api.URL+"/base"))
	require.Equal(t, http.StatusCreated, code, body)
	var created orchestrator.RegisteredEndpoint
	require.NoError(t, json.Unmarshal([]byte(body), &created))
	code, body = first.mustGet("/orchestrator/dyn/v1/x")
	require.Equal(t, "200 api /base/x", fmt.Sprint(code, " ", body))
	require.NoError(t, first.stop())

	t.Run("the state file holds the endpoint after the first server stopped", func(t *testing.T) {
		data, err := os.ReadFile(state)
		require.NoError(t, err)
		assert.Contains(t, string(data), `"dyn_v1"`)
	})

	second := startServer(t, server.Options{ConfigPath: path, Watch: true})
	t.Run("the second server routes the endpoint", func(t *testing.T) {
		code, body := second.mustGet("/orchestrator/dyn/v1/x")
		assert.Equal(t, "200 api /base/x", fmt.Sprint(code, " ", body))
	})
	t.Run("the restored endpoint is API-owned and keeps its registration time", func(t *testing.T) {
		code, body := second.mustGet("/registry/endpoints/dyn_v1")
		require.Equal(t, http.StatusOK, code, body)
		var ep orchestrator.RegisteredEndpoint
		require.NoError(t, json.Unmarshal([]byte(body), &ep))
		assert.Equal(t, orchestrator.SourceAPI, ep.Source)
		assert.True(t, created.RegistrationTime.Equal(ep.RegistrationTime), "got %v; want %v", ep.RegistrationTime, created.RegistrationTime)
	})
	t.Run("a delete through the API is persisted too", func(t *testing.T) {
		code, body := second.do(http.MethodDelete, "/registry/endpoints/dyn_v1", "")
		require.Equal(t, http.StatusNoContent, code, body)
		require.NoError(t, second.stop())
		third := startServer(t, server.Options{ConfigPath: path})
		code, _ = third.mustGet("/orchestrator/dyn/v1/x")
		assert.Equal(t, http.StatusNotFound, code, "got the deleted endpoint back after a restart")
	})
}

func TestGracefulShutdown(t *testing.T) {
	entered := make(chan struct{}, 1)
	var finished atomic.Bool
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-time.After(2 * time.Second): // the request's own work
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "slow done")
		finished.Store(true)
	}))
	defer slow.Close()
	path := testutil.ConfigFile(t, "server:\n  shutdown_timeout: 10s\nendpoints:\n"+endpointYAML("slow", slow.URL))
	s := startServer(t, server.Options{ConfigPath: path})

	type result struct {
		code int
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		code, body, err := s.get("/orchestrator/slow/x")
		res <- result{code, body, err}
	}()
	select {
	case <-entered:
	case <-time.After(waitFor):
		t.Fatal("the request never reached the backend")
	}

	stopped := make(chan error, 1)
	cancelledAt := time.Now()
	go func() { stopped <- s.stop() }()

	t.Run("new connections are refused while the request finishes", func(t *testing.T) {
		eventually(t, "the listener to close", func() bool {
			c, err := net.DialTimeout("tcp", s.addr, time.Second)
			if err == nil {
				c.Close()
				return false
			}
			return true
		})
		assert.False(t, finished.Load(), "got the slow request finished before the listener closed; want the check made while it was in flight")
	})
	t.Run("the request in flight completes", func(t *testing.T) {
		select {
		case r := <-res:
			require.NoError(t, r.err)
			assert.Equal(t, "200 slow done", fmt.Sprint(r.code, " ", r.body))
		case <-time.After(waitFor):
			t.Fatal("the request in flight never completed")
		}
	})
	t.Run("Run returns nil within the shutdown timeout, after the request", func(t *testing.T) {
		select {
		case err := <-stopped:
			assert.NoError(t, err)
			assert.True(t, finished.Load(), "got Run returned before the in-flight request finished")
			assert.Less(t, time.Since(cancelledAt), 10*time.Second, "got Run returning past shutdown_timeout")
		case <-time.After(3 * waitFor):
			t.Fatal("Run did not return")
		}
	})
}

func TestShutdownTimeoutCutsStragglers(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	defer close(release)
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	path := testutil.ConfigFile(t, "server:\n  shutdown_timeout: 500ms\nendpoints:\n"+endpointYAML("hung", hung.URL))
	s := startServer(t, server.Options{ConfigPath: path})

	res := make(chan error, 1)
	go func() {
		code, _, err := s.get("/orchestrator/hung/x")
		if err == nil {
			err = fmt.Errorf("status %d", code)
		}
		res <- err
	}()
	select {
	case <-entered:
	case <-time.After(waitFor):
		t.Fatal("the request never reached the backend")
	}
	start := time.Now()
	err := s.stop()
	took := time.Since(start)
	assert.NoError(t, err, "got Run() = %v; want nil even when the timeout cuts requests", err)
	assert.GreaterOrEqual(t, took, 450*time.Millisecond, "got Run returning after %v; want it to wait for the shutdown timeout", took)
	assert.Less(t, took, waitFor, "got Run returning after %v; want about 500ms", took)
	select {
	case err := <-res:
		assert.Error(t, err, "got the hung request answered; want it cut")
	case <-time.After(waitFor):
		t.Fatal("the hung request was never cut")
	}
	assert.Contains(t, s.stderr.String(), "shutdown timeout reached")
}

// rawRequest sends one request with a header of headerBytes and returns the
// response status, reading while writing so that a server answering early
// is heard.
func rawRequest(t *testing.T, addr string, headerBytes int) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(waitFor)))
	go func() {
		req := "GET /orchestrator/svc/x HTTP/1.1\r\nHost: " + addr + "\r\nX-Big: " + strings.Repeat("a", headerBytes) + "\r\n\r\n"
		conn.Write([]byte(req)) // may fail once the server has answered
	}()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "reading the response")
	res.Body.Close()
	return res.StatusCode
}

func TestHeaderLimits(t *testing.T) {
	b := backend(t, "svc")
	t.Run("the default limit is 1 MiB: past it the answer is 431", func(t *testing.T) {
		path := testutil.ConfigFile(t, "endpoints:\n"+endpointYAML("svc", b.URL))
		s := startServer(t, server.Options{ConfigPath: path})
		assert.Equal(t, http.StatusOK, rawRequest(t, s.addr, 512<<10), "got a 512 KiB header refused")
		assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, rawRequest(t, s.addr, 1<<20+64<<10))
	})
	t.Run("server.max_header_bytes sets the limit", func(t *testing.T) {
		path := testutil.ConfigFile(t, "server:\n  max_header_bytes: 8192\nendpoints:\n"+endpointYAML("svc", b.URL))
		s := startServer(t, server.Options{ConfigPath: path})
		assert.Equal(t, http.StatusOK, rawRequest(t, s.addr, 2048))
		assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, rawRequest(t, s.addr, 64<<10))
	})
}

// waitClosed reads conn until the server closes it and returns how long
// that took.
func waitClosed(t *testing.T, conn net.Conn, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	require.NoError(t, conn.SetReadDeadline(start.Add(within)))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("got the connection still open after %v; want the server to close it", within)
	}
	return time.Since(start)
}

func TestConnectionTimeouts(t *testing.T) {
	b := backend(t, "svc")
	t.Run("a client that never finishes its headers is cut after the default 10s", func(t *testing.T) {
		t.Parallel()
		path := testutil.ConfigFile(t, "endpoints:\n"+endpointYAML("svc", b.URL))
		s := startServer(t, server.Options{ConfigPath: path})
		conn, err := net.Dial("tcp", s.addr)
		require.NoError(t, err)
		defer conn.Close()
		_, err = io.WriteString(conn, "GET /orchestrator/svc/x HTTP/1.1\r\nHost: x\r\n")
		require.NoError(t, err)
		took := waitClosed(t, conn, 25*time.Second)
		assert.GreaterOrEqual(t, took, 9*time.Second, "got the slow client cut after %v; want 10s", took)
	})
	t.Run("server.read_header_timeout sets the header deadline", func(t *testing.T) {
		t.Parallel()
		path := testutil.ConfigFile(t, "server:\n  read_header_timeout: 500ms\nendpoints:\n"+endpointYAML("svc", b.URL))
		s := startServer(t, server.Options{ConfigPath: path})
		conn, err := net.Dial("tcp", s.addr)
		require.NoError(t, err)
		defer conn.Close()
		_, err = io.WriteString(conn, "GET /orchestrator/svc/x HTTP/1.1\r\n")
		require.NoError(t, err)
		// Well under the 10s default, so that an ignored setting fails.
		took := waitClosed(t, conn, 5*time.Second)
		assert.GreaterOrEqual(t, took, 250*time.Millisecond, "got the client cut after %v; want 500ms", took)
	})
	t.Run("server.idle_timeout closes idle keep-alive connections", func(t *testing.T) {
		t.Parallel()
		path := testutil.ConfigFile(t, "server:\n  idle_timeout: 1s\nendpoints:\n"+endpointYAML("svc", b.URL))
		s := startServer(t, server.Options{ConfigPath: path})
		conn, err := net.Dial("tcp", s.addr)
		require.NoError(t, err)
		defer conn.Close()
		_, err = io.WriteString(conn, "GET /orchestrator/svc/x HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(waitFor)))
		br := bufio.NewReader(conn)
		res, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		require.Equal(t, "svc /x", string(body))
		start := time.Now()
		require.NoError(t, conn.SetReadDeadline(start.Add(waitFor)))
		_, err = br.ReadByte()
		require.Error(t, err)
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "got the idle connection still open after %v", waitFor)
		took := time.Since(start)
		assert.GreaterOrEqual(t, took, 500*time.Millisecond, "got the idle connection closed after %v; want 1s", took)
	})
}

// selfSigned writes a certificate for 127.0.0.1 and localhost and its key
// into dir, and returns their paths and a pool trusting the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "orchestratord test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestTLS(t *testing.T) {
	b := backend(t, "svc")
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	path := filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf("server:\n  tls:\n    cert_file: %q\n    key_file: %q\nendpoints:\n%s", certFile, keyFile, endpointYAML("svc", b.URL))
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	s := startServer(t, server.Options{ConfigPath: path})
	_, port, err := net.SplitHostPort(s.addr)
	require.NoError(t, err)

	client := &http.Client{Timeout: waitFor, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
	}}
	defer client.CloseIdleConnections()

	t.Run("HTTPS is served over HTTP/2", func(t *testing.T) {
		res, err := client.Get("https://" + s.addr + "/orchestrator/svc/x")
		require.NoError(t, err)
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, res.StatusCode)
		assert.Equal(t, "svc /x", string(body))
		assert.Equal(t, "HTTP/2.0", res.Proto, "got %s; want HTTP/2.0", res.Proto)
		require.NotNil(t, res.TLS)
		assert.Equal(t, "h2", res.TLS.NegotiatedProtocol)
	})
	t.Run("HTTP/1.1 clients are served too", func(t *testing.T) {
		c := &http.Client{Timeout: waitFor, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
		defer c.CloseIdleConnections()
		res, err := c.Get("https://localhost:" + port + "/health")
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusOK, res.StatusCode)
		assert.Equal(t, "HTTP/1.1", res.Proto)
	})
	t.Run("plain HTTP to the TLS port is refused", func(t *testing.T) {
		code, _, err := s.get("/orchestrator/svc/x")
		require.NoError(t, err)
		assert.Equal(t, http.StatusBadRequest, code)
	})
	t.Run("the banner gives https URLs", func(t *testing.T) {
		assert.Contains(t, s.stdout.String(), "listening on https://127.0.0.1:"+port)
		assert.Contains(t, s.stdout.String(), "https://localhost:"+port+"/health")
	})
}

func TestTLSWithAMissingCertificateFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf("server:\n  tls:\n    cert_file: %q\n    key_file: %q\n", filepath.Join(dir, "nope.pem"), filepath.Join(dir, "nope.key"))
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	_, err := tryStartServer(t, server.Options{ConfigPath: path})
	require.Error(t, err, "got a server started with a missing certificate; want an error")
	assert.True(t, errors.Is(err, os.ErrNotExist), "got %v; want a not-exist error naming the file", err)
}

// TestDrainDelay: on SIGTERM, for server.drain_delay the server keeps
// serving while /health answers 503, so load balancers and Kubernetes
// readiness see the instance leave before its listeners close; HTTP/1.1
// responses carry "Connection: close" meanwhile, so clients reconnect
// elsewhere. Only then do the listeners close. The drain's clock is the
// test's, so nothing here depends on timing.
func TestDrainDelay(t *testing.T) {
	a := backend(t, "a")
	path := testutil.ConfigFile(t, "server:\n  drain_delay: 1h\n  shutdown_timeout: 10s\nendpoints:\n"+endpointYAML("svc", a.URL))
	drainAsked := make(chan time.Duration, 1)
	endDrain := make(chan time.Time)
	s := startServer(t, server.Options{ConfigPath: path, After: func(d time.Duration) <-chan time.Time {
		drainAsked <- d
		return endDrain
	}})
	resp, err := s.client.Get(s.base + "/health")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	select {
	case d := <-drainAsked:
		assert.Equal(t, time.Hour, d, "the drain lasts server.drain_delay")
	case <-time.After(waitFor):
		t.Fatal("the drain never started")
	}

	t.Run("health answers 503 while the listener still serves", func(t *testing.T) {
		eventually(t, "/health to answer 503", func() bool {
			code, _, err := s.get("/health")
			return err == nil && code == http.StatusServiceUnavailable
		})
	})
	t.Run("proxied requests are served, each closing its connection", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			resp, err := s.client.Get(s.base + "/orchestrator/svc/x")
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, "200 a /x", fmt.Sprint(resp.StatusCode, " ", string(body)))
			assert.True(t, resp.Close, "Connection: %q; want close while draining", resp.Header.Get("Connection"))
		}
	})
	select {
	case err := <-stopped:
		t.Fatalf("Run returned (%v) before the drain ended", err)
	default:
	}

	close(endDrain)
	select {
	case err := <-stopped:
		assert.NoError(t, err)
	case <-time.After(3 * waitFor):
		t.Fatal("Run did not return after the drain")
	}
	_, err = net.DialTimeout("tcp", s.addr, time.Second)
	assert.Error(t, err, "the listener is closed after the drain")
}
