package orchestrator_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

// TestContentLengthWithTransferEncodingClosesTheConnection pins the
// request-smuggling guard of docs/DESIGN.md: a request with both Content-Length
// and Transfer-Encoding is served by Transfer-Encoding and its connection is
// closed after the response, so a second request hidden behind it (as a
// front proxy honouring Content-Length would see it) is never served.
func TestContentLengthWithTransferEncodingClosesTheConnection(t *testing.T) {
	var paths atomic.Value
	paths.Store("")
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		paths.Store(paths.Load().(string) + r.URL.Path + "(" + string(body) + ") ")
		io.WriteString(w, "ok")
	}))
	t.Cleanup(backend.Close)
	o, err := orchestrator.New(orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL}))
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })
	gw := httptest.NewServer(o)
	t.Cleanup(gw.Close)

	conn, err := net.Dial("tcp", gw.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	// The chunked body is "abc"; a Content-Length reader would take 3 bytes
	// and read the rest as a request for /orchestrator/svc/smuggled.
	raw := "POST /orchestrator/svc/first HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"3\r\nabc\r\n0\r\n\r\n" +
		"GET /orchestrator/svc/smuggled HTTP/1.1\r\nHost: gw\r\n\r\n"
	_, err = io.WriteString(conn, raw)
	require.NoError(t, err)

	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok", string(body))
	assert.True(t, resp.Close, "the response must say Connection: close; got header %q", resp.Header.Get("Connection"))

	// The connection ends: no second response.
	_, err = http.ReadResponse(br, nil)
	assert.Error(t, err, "a second response was served on the same connection")
	got := paths.Load().(string)
	assert.Equal(t, "/first(abc) ", got, "backend saw %q; want only the chunked body of the first request", got)
	assert.False(t, strings.Contains(got, "smuggled"))
}

// TestBareLFInChunkedBodyIs400 sends a chunked body whose size line ends in
// a bare LF (RFC 9112 §7.1 requires CRLF; lenient parsers disagree on it,
// which is what request smuggling feeds on). The gateway answers 400 and
// the backend never sees a request it could misread.
func TestBareLFInChunkedBodyIs400(t *testing.T) {
	var hits atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err == nil {
			hits.Add(1)
		}
	}))
	t.Cleanup(backend.Close)
	o, err := orchestrator.New(orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL}))
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })
	gw := httptest.NewServer(o)
	t.Cleanup(gw.Close)

	conn, err := net.Dial("tcp", gw.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = io.WriteString(conn, "POST /orchestrator/svc/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "status: got %d; want 400", resp.StatusCode)
	assert.Zero(t, hits.Load(), "the backend received a complete body")
}

// TestHTTP10RequestWithBodyClosesTheConnection: Go's server ignores
// Transfer-Encoding on an HTTP/1.0 request and frames it by Content-Length,
// so with "Connection: keep-alive" the rest of a chunked body would be read
// as a second request and forwarded. RFC 9112 §6.1 calls such framing
// faulty: every HTTP/1.0 request with a body is answered with
// "Connection: close", and the backend sees exactly one request.
func TestHTTP10RequestWithBodyClosesTheConnection(t *testing.T) {
	backendURL, seen, reset := seenBackend(t)
	o, err := orchestrator.New(orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backendURL}))
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })
	gw := httptest.NewServer(o)
	t.Cleanup(gw.Close)

	for name, raw := range map[string]string{
		// A front proxy honouring Transfer-Encoding sees one request with
		// the body "GET /orchestrator/svc/smuggled ..." cut in chunks; Go
		// takes 4 bytes ("4\r\nG") and would read the rest as a request.
		"te and cl": "POST /orchestrator/svc/first HTTP/1.0\r\nHost: gw\r\nConnection: keep-alive\r\n" +
			"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" +
			"4\r\nabcd\r\n0\r\n\r\n" +
			"GET /orchestrator/svc/smuggled HTTP/1.0\r\nHost: gw\r\nConnection: keep-alive\r\n\r\n",
		"cl only": "POST /orchestrator/svc/first HTTP/1.0\r\nHost: gw\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\nabcd" +
			"GET /orchestrator/svc/smuggled HTTP/1.0\r\nHost: gw\r\nConnection: keep-alive\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			reset()
			conn, br := rawConn(t, gw.Listener.Addr().String())
			_, err := io.WriteString(conn, raw)
			require.NoError(t, err)
			resp, _ := readResponse(t, br)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.True(t, resp.Close, "the response must close the connection; Connection: %q", resp.Header.Get("Connection"))
			_, err = http.ReadResponse(br, nil)
			assert.Error(t, err, "a second response was served on the same connection")
			got := seen()
			assert.Equal(t, 1, strings.Count(got, "POST /first"), "backend saw %q", got)
			assert.NotContains(t, got, "smuggled", "the bytes after the body reached the backend as a request")
		})
	}

	// A bodyless HTTP/1.0 keep-alive request keeps its connection.
	conn, br := rawConn(t, gw.Listener.Addr().String())
	for i := 0; i < 2; i++ {
		_, err = io.WriteString(conn, "GET /orchestrator/svc/get HTTP/1.0\r\nHost: gw\r\nConnection: keep-alive\r\n\r\n")
		require.NoError(t, err)
		resp, _ := readResponse(t, br)
		assert.Equal(t, http.StatusOK, resp.StatusCode, "request %d on one keep-alive connection", i+1)
	}
}

// seenBackend is a backend that records every request it serves as
// "METHOD /path(body) ", so a test can tell one request from two.
func seenBackend(t *testing.T) (url string, seen func() string, reset func()) {
	t.Helper()
	var log atomic.Value
	log.Store("")
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		log.Store(log.Load().(string) + r.Method + " " + r.URL.Path + "(" + string(body) + ") ")
		io.WriteString(w, "ok")
	}))
	t.Cleanup(b.Close)
	return b.URL, func() string { return log.Load().(string) }, func() { log.Store("") }
}

// rawConn dials addr for a test that writes requests byte by byte; the
// connection is closed when the test ends.
func rawConn(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	return conn, bufio.NewReader(conn)
}

// readResponse reads one response and its whole body.
func readResponse(t *testing.T, br *bufio.Reader) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// TestHTTP10BodyToAnUnroutedPathClosesTheConnection: the guard holds for a
// request the gateway answers 404 (the library serving a whole listener),
// and for the application behind Middleware, so that nothing smuggled
// behind such a request reaches an endpoint.
func TestHTTP10BodyToAnUnroutedPathClosesTheConnection(t *testing.T) {
	backendURL, seen, reset := seenBackend(t)
	o, err := orchestrator.New(orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backendURL}))
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app") })
	for name, h := range map[string]http.Handler{"gateway": o, "middleware": o.Middleware(app)} {
		t.Run(name, func(t *testing.T) {
			reset()
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			conn, br := rawConn(t, srv.Listener.Addr().String())
			_, err := io.WriteString(conn, "POST /elsewhere HTTP/1.0\r\nHost: gw\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\nabcd"+
				"GET /orchestrator/svc/smuggled HTTP/1.0\r\nHost: gw\r\nConnection: keep-alive\r\n\r\n")
			require.NoError(t, err)
			resp, _ := readResponse(t, br)
			assert.True(t, resp.Close, "status %d; Connection: %q", resp.StatusCode, resp.Header.Get("Connection"))
			_, err = http.ReadResponse(br, nil)
			assert.Error(t, err, "a second response was served on the same connection")
			assert.NotContains(t, seen(), "smuggled")
		})
	}
}
