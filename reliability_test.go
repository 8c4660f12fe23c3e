package orchestrator_test

// Reliability and security tests: what the gateway does when a backend
// stalls, breaks or misbehaves, when a client sends tricky request targets
// or gives up, under a burst of large uploads, and whether a replaced
// configuration's memory is given back. Every test runs a real loopback
// backend behind a real loopback gateway; helpers (px*) come from
// proxy_test.go.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

// relPoll polls cond every few milliseconds until it holds or pxWait passes,
// and reports whether it held.
func relPoll(cond func() bool) bool {
	deadline := time.Now().Add(pxWait)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
	return true
}

// relRecv waits for a value on ch for at most pxWait.
func relRecv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(pxWait):
		t.Fatalf("gave up after %v waiting for %s", pxWait, what)
		panic("unreachable")
	}
}

// relHijack takes over the backend connection of a request, failing the
// test (from the handler goroutine) when that is impossible.
func relHijack(t *testing.T, w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, bool) {
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijacking the backend connection: %v", err)
		return nil, nil, false
	}
	_ = c.SetDeadline(time.Now().Add(pxWait))
	return c, brw, true
}

// ---------------------------------------------------------------------------
// 1. Stalling backends and URL fragments.

// TestReliabilityFlushedHeadersReachTheClientWhileTheBackendStalls pins
// that a backend which flushes its status and headers and then stalls (a
// long poll, a stream that has not produced its first event) is not held
// up by the gateway: the client has the status and headers while the
// backend is still waiting, and the body follows when the backend goes on.
//
// Only responses of unknown length and event streams are covered: for a
// response with a Content-Length, httputil.ReverseProxy (FlushInterval 0,
// as in Caddy) sends the headers with the first 4 KiB of body or at its
// end, not when the backend flushes them.
func TestReliabilityFlushedHeadersReachTheClientWhileTheBackendStalls(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
	}{
		{"chunked, unknown length", "application/json"},
		{"server-sent events", "text/event-stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotHeaders, release := pxOnce()
			backendDone := make(chan error, 1)
			backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.Header().Set("X-Stage", "headers-flushed")
				w.WriteHeader(http.StatusAccepted)
				if err := http.NewResponseController(w).Flush(); err != nil {
					backendDone <- err
					return
				}
				select {
				case <-gotHeaders:
				case <-r.Context().Done():
					backendDone <- fmt.Errorf("the request ended before the client saw the headers: %w", context.Cause(r.Context()))
					return
				}
				_, err := io.WriteString(w, "the rest")
				backendDone <- err
			})
			t.Cleanup(release)
			gw := pxGateway(t, pxEndpoint(backend.URL))

			resp, err := gw.Client().Do(pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/poll", nil))
			require.NoError(t, err, "the headers never reached the client while the backend stalled")
			defer resp.Body.Close()
			// The backend is still blocked: it goes on only now.
			assert.Equal(t, http.StatusAccepted, resp.StatusCode, "status: got %d; want 202", resp.StatusCode)
			assert.Equal(t, "headers-flushed", resp.Header.Get("X-Stage"), "X-Stage: got %q; want headers-flushed", resp.Header.Get("X-Stage"))
			assert.Equal(t, tt.contentType, resp.Header.Get("Content-Type"))
			release()

			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, "the rest", string(body), "body: got %q; want %q", body, "the rest")
			require.NoError(t, relRecv(t, backendDone, "the backend to finish"))
		})
	}
}

// TestReliabilityFragmentIsNeverForwarded pins that no "#fragment" reaches
// a backend, whether a client puts one in the request line (invalid, but
// Go's server accepts it) or in a URL it hands to its HTTP library.
func TestReliabilityFragmentIsNeverForwarded(t *testing.T) {
	seen := make(chan string, 1)
	backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.RequestURI
	})
	gw := pxGateway(t, pxEndpoint(backend.URL))

	t.Run("raw request line", func(t *testing.T) {
		for _, target := range []string{
			"/orchestrator/users/v1/page#frag",
			"/orchestrator/users/v1/page?q=1#frag",
			"/orchestrator/users/v1/page?#frag",
			"/orchestrator/users/v1/#frag/../../admin",
		} {
			t.Run(target, func(t *testing.T) {
				raw := "GET " + target + " HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n"
				_, resp, body := pxRawExchange(t, gw, raw)
				switch resp.StatusCode {
				case http.StatusOK:
					got := relRecv(t, seen, "the backend's request")
					assert.NotContains(t, got, "#", "backend RequestURI: got %q; want no fragment", got)
					assert.True(t, strings.HasPrefix(got, "/api/"), "backend RequestURI: got %q; want it under /api/", got)
				case http.StatusBadRequest:
					// Refusing the invalid target outright is the other
					// safe answer (Envoy's default).
					pxDecodeProblem(t, resp, body, http.StatusBadRequest)
				default:
					t.Errorf("status: got %d; want 200 without the fragment, or 400; body %s", resp.StatusCode, body)
				}
			})
		}
	})
	t.Run("client URL", func(t *testing.T) {
		resp, body := pxDo(t, gw.Client(), pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/page?q=1#frag", nil))
		require.Equal(t, http.StatusOK, resp.StatusCode, "status: got %d; want 200; body %s", resp.StatusCode, body)
		got := relRecv(t, seen, "the backend's request")
		assert.Equal(t, "/api/page?q=1", got, "backend RequestURI: got %q; want /api/page?q=1", got)
	})
}

// ---------------------------------------------------------------------------
// 2. Dot segments and their disguises.

// TestReliabilityDotSegmentVariantsStayInsideTheEndpoint sends every
// disguise of ".." a path traversal might use through a real listener (so
// that nothing between the socket and the gateway normalises it first) and
// requires each to be refused with a 400 problem document or to reach the
// backend under the endpoint's base path, even as a lenient backend would
// decode and resolve it. TestRoutingRefusesDotSegments covers the router
// through a recorder; this one covers the wire.
func TestReliabilityDotSegmentVariantsStayInsideTheEndpoint(t *testing.T) {
	const base = "/api/tenant1"
	seen := make(chan string, 1)
	backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.RequestURI
	})
	gw := pxGateway(t, orchestrator.Endpoint{Name: "users", Version: "v1", URL: backend.URL + base})

	// insideBase reports whether the raw request target stays under base
	// for a backend that decodes escapes, treats "\" as "/", strips
	// ";params", drops NUL bytes or cuts the path at the first one (a
	// C-string server), and then resolves dot segments.
	insideBase := func(requestURI string) bool {
		p, _, _ := strings.Cut(requestURI, "?")
		if p != base && !strings.HasPrefix(p, base+"/") {
			return false
		}
		decoded, err := url.PathUnescape(p)
		if err != nil {
			decoded = p
		}
		nulCut, _, _ := strings.Cut(decoded, "\x00")
		for _, candidate := range []string{
			p, decoded, strings.ReplaceAll(decoded, "\\", "/"),
			strings.ReplaceAll(decoded, "\x00", ""), nulCut, strings.ReplaceAll(nulCut, "\\", "/"),
		} {
			segs := strings.Split(candidate, "/")
			for i, s := range segs {
				segs[i], _, _ = strings.Cut(s, ";")
			}
			clean := path.Clean(strings.Join(segs, "/"))
			if clean != base && !strings.HasPrefix(clean, base+"/") {
				return false
			}
		}
		return true
	}

	rests := []string{
		// Raw.
		"/..", "/../tenant2/secret", "/a/../../tenant2", "/.", "/./x", "/x/..",
		// Percent-encoded dots, any case mix.
		"/%2e%2e", "/%2e%2e/tenant2", "/%2E%2E/tenant2", "/%2E%2e/tenant2", "/%2e%2E/tenant2",
		"/.%2e/tenant2", "/%2e./tenant2", "/%2e",
		// Encoded slashes and backslashes that split a segment for a
		// decoding backend.
		"/..%2ftenant2", "/..%2Ftenant2", "/x%2f..%2f..%2ftenant2", "/x%2F..%2F..%2Ftenant2", "/%2F..", "/%2F../tenant2",
		"/..%5ctenant2", "/%5c..", "/%5C..%5Ctenant2", "/x%5c..%5c..%5ctenant2",
		// Path parameters.
		"/..;/tenant2", "/..;jsessionid=1/tenant2", "/%2e%2e;x/tenant2", "/;/../tenant2", "/x;/..;/..;/tenant2",
		"/..%3B/tenant2", "/..%3bjsessionid=1/tenant2", "/%2e%2e%3Bx/tenant2",
		// NUL, where a C-string backend cuts the path.
		"/%00", "/%00/../tenant2", "/..%00/tenant2", "/..%00x/tenant2", "/%2e%2e%00/tenant2", "/.%00/x", "/a%00/../../tenant2",
		// Raw backslashes.
		"/..\\tenant2", "/x\\..\\..\\tenant2", "/\\..\\tenant2",
		// With a query.
		"/../tenant2?x=/../..", "/%2e%2e?x=1",
	}
	for _, rest := range rests {
		t.Run(rest, func(t *testing.T) {
			raw := "GET /orchestrator/users/v1" + rest + " HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n"
			_, resp, body := pxRawExchange(t, gw, raw)
			switch resp.StatusCode {
			case http.StatusBadRequest:
				p := pxDecodeProblem(t, resp, body, http.StatusBadRequest)
				assert.Equal(t, "users_v1", p.EndpointID, "problem endpoint_id: got %q; want users_v1", p.EndpointID)
				select {
				case got := <-seen:
					t.Errorf("the backend got %q although the gateway answered 400", got)
				default:
				}
			case http.StatusOK:
				got := relRecv(t, seen, "the backend's request")
				assert.True(t, insideBase(got), "backend got %q: it leaves %s", got, base)
			default:
				t.Errorf("status: got %d; want 400 or 200 inside %s; body %s", resp.StatusCode, base, body)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 3. Expect: 100-continue answered with a final status.

// relCountingListener counts the connections a backend accepts.
type relCountingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *relCountingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// relRawBackend serves each connection with serve until the test ends,
// and counts the connections.
func relRawBackend(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) (string, *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		accepted atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		conns    []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(pxWait))
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + l.Addr().String(), &accepted
}

// relExpectRequest is a request head announcing a body it does not send.
func relExpectRequest(target string, bodyLen int) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: gw.test\r\nExpect: 100-continue\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n", target, bodyLen)
}

// relReadFinal reads responses from br until a final (non-1xx) one and
// returns it with its body read.
func relReadFinal(t *testing.T, br *bufio.Reader) (*http.Response, []byte) {
	t.Helper()
	for {
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err, "reading the gateway's answer while the body was held back: want the final status without sending the body")
		t.Logf("gateway answered %s (Connection: close %v)", resp.Status, resp.Close)
		if resp.StatusCode >= 200 {
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			resp.Body.Close()
			return resp, body
		}
	}
}

// TestReliabilityExpectContinueRejected pins that a backend refusing an
// upload before reading it (417, or 401 for a missing credential) is
// answered to the client without the client sending its body, and that
// the gateway's pooled upstream connection stays usable: the next request
// succeeds.
func TestReliabilityExpectContinueRejected(t *testing.T) {
	const bodyLen = 64 << 10
	payload := strings.Repeat("b", bodyLen)

	t.Run("Go backend that never reads the body", func(t *testing.T) {
		for _, status := range []int{http.StatusExpectationFailed, http.StatusUnauthorized} {
			t.Run(fmt.Sprint(status), func(t *testing.T) {
				var bodyRead atomic.Bool
				backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/api/upload" {
						w.Header().Set("X-Refused", "yes")
						w.WriteHeader(status)
						io.WriteString(w, "refused")
						return
					}
					n, err := io.Copy(io.Discard, r.Body)
					if err != nil {
						http.Error(w, err.Error(), http.StatusBadRequest)
						return
					}
					if n > 0 {
						bodyRead.Store(true)
					}
					fmt.Fprintf(w, "ok %d", n)
				}))
				counting := &relCountingListener{Listener: backend.Listener}
				backend.Listener = counting
				backend.Config.ErrorLog = pxQuietLog()
				backend.Start()
				t.Cleanup(backend.Close)
				gw := pxGateway(t, pxEndpoint(backend.URL))

				// The client holds its body back and must still get the
				// final status.
				c, err := net.Dial("tcp", gw.Listener.Addr().String())
				require.NoError(t, err)
				defer c.Close()
				require.NoError(t, c.SetDeadline(time.Now().Add(pxWait)))
				_, err = io.WriteString(c, relExpectRequest("/orchestrator/users/v1/upload", bodyLen))
				require.NoError(t, err)
				br := bufio.NewReader(c)
				resp, body := relReadFinal(t, br)
				assert.Equal(t, status, resp.StatusCode, "status: got %d; want %d", resp.StatusCode, status)
				assert.Equal(t, "yes", resp.Header.Get("X-Refused"), "X-Refused: got %q; want the backend's answer", resp.Header.Get("X-Refused"))
				assert.Equal(t, "refused", string(body))
				if !resp.Close {
					// The connection stays open: the client owes the body
					// (RFC 9110 §10.1.1) and the connection then serves on.
					_, err = io.WriteString(c, payload)
					require.NoError(t, err)
					_, err = io.WriteString(c, "GET /orchestrator/users/v1/after HTTP/1.1\r\nHost: gw.test\r\n\r\n")
					require.NoError(t, err)
					resp, body = relReadFinal(t, br)
					assert.Equal(t, "200 ok 0", fmt.Sprint(resp.StatusCode, " ", string(body)), "next request on the client connection")
				}

				// The gateway's upstream side is usable: the next upload
				// through it succeeds, body and all.
				before := counting.accepted.Load()
				req := pxRequest(t, http.MethodPost, gw.URL+"/orchestrator/users/v1/next", strings.NewReader(payload))
				resp, body = pxDo(t, gw.Client(), req)
				assert.Equal(t, fmt.Sprintf("200 ok %d", bodyLen), fmt.Sprint(resp.StatusCode, " ", string(body)), "next request through the gateway")
				assert.True(t, bodyRead.Load())
				t.Logf("backend connections: %d before the next request, %d after", before, counting.accepted.Load())
			})
		}
	})

	t.Run("backend that keeps the connection and discards the body", func(t *testing.T) {
		// A server that answers early without closing reads and discards
		// the announced body before the next request (RFC 9110 §10.1.1):
		// the gateway must send it, or close, or the next request on that
		// connection is eaten as body.
		requests := make(chan string, 8)
		backendURL, accepted := relRawBackend(t, func(c net.Conn, br *bufio.Reader) {
			for {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				requests <- req.URL.Path
				if req.URL.Path == "/api/upload" {
					io.WriteString(c, "HTTP/1.1 417 Expectation Failed\r\nContent-Length: 7\r\n\r\nrefused")
					if _, err := io.Copy(io.Discard, req.Body); err != nil {
						return
					}
					continue
				}
				n, err := io.Copy(io.Discard, req.Body)
				if err != nil {
					return
				}
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\nok %d", len(fmt.Sprintf("ok %d", n)), n)
			}
		})
		gw := pxGateway(t, pxEndpoint(backendURL))

		c, err := net.Dial("tcp", gw.Listener.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.SetDeadline(time.Now().Add(pxWait)))
		_, err = io.WriteString(c, relExpectRequest("/orchestrator/users/v1/upload", bodyLen))
		require.NoError(t, err)
		br := bufio.NewReader(c)

		// The gateway may pass on the backend's wish for the body (a 100)
		// before the final status; either way the final status must come
		// while the client still holds the body back.
		type final struct {
			resp *http.Response
			body []byte
			err  error
		}
		got := make(chan final, 1)
		go func() {
			for {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					got <- final{err: err}
					return
				}
				t.Logf("gateway answered %s (Connection: close %v)", resp.Status, resp.Close)
				if resp.StatusCode >= 200 {
					body, err := io.ReadAll(resp.Body)
					got <- final{resp, body, err}
					return
				}
			}
		}()
		f := relRecv(t, got, "the final status while the client held its body back")
		require.NoError(t, f.err, "reading the final status while the client held its body back")
		assert.Equal(t, "417 refused", fmt.Sprint(f.resp.StatusCode, " ", string(f.body)))
		assert.Equal(t, "/api/upload", relRecv(t, requests, "the upload at the backend"))
		if !f.resp.Close {
			_, err = io.WriteString(c, payload)
			require.NoError(t, err)
		}
		c.Close()

		for i := range 2 {
			req := pxRequest(t, http.MethodPost, gw.URL+"/orchestrator/users/v1/next", strings.NewReader(payload))
			resp, body := pxDo(t, gw.Client(), req)
			require.Equal(t, fmt.Sprintf("200 ok %d", bodyLen), fmt.Sprint(resp.StatusCode, " ", string(body)), "request %d after the refused upload", i+1)
			assert.Equal(t, "/api/next", relRecv(t, requests, "the next request at the backend"))
		}
		t.Logf("backend connections: %d", accepted.Load())
	})
}

// ---------------------------------------------------------------------------
// 4. Upstream faults and clients that give up.
//
// A reset before the response headers (502) is TestProxyUpstreamFailureIs502
// ("connection reset without an answer"); a backend that never answers
// (504 after the endpoint timeout) is TestProxyUpstreamTimeoutIs504.

// TestReliabilityUpstreamBreaksMidBody pins that a response whose upstream
// body breaks after a 200 with a Content-Length reaches the client as
// aborted (a read error), never as a complete-looking response.
func TestReliabilityUpstreamBreaksMidBody(t *testing.T) {
	const declared = 100_000
	tests := []struct {
		name string
		sent int
		// waitForClient holds the fault until the client has the
		// headers, so that the status is known to have gone out first.
		waitForClient bool
		reset         bool
	}{
		{"reset mid-body after the headers reached the client", 50_000, true, true},
		{"short body then a clean close", 50, false, false},
		{"short body then a reset", 50, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clientHasHeaders, signal := pxOnce()
			t.Cleanup(signal)
			backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
				c, brw, ok := relHijack(t, w)
				if !ok {
					return
				}
				defer c.Close()
				fmt.Fprintf(brw, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", declared)
				brw.WriteString(strings.Repeat("x", tt.sent))
				if err := brw.Flush(); err != nil {
					t.Errorf("backend write: %v", err)
					return
				}
				if tt.waitForClient {
					select {
					case <-clientHasHeaders:
					case <-time.After(pxWait):
						t.Error("the client never got the headers")
					}
				}
				if tc, ok := c.(*net.TCPConn); ok && tt.reset {
					_ = tc.SetLinger(0) // RST instead of FIN
				}
			})
			gw := pxGateway(t, pxEndpoint(backend.URL))

			resp, err := gw.Client().Do(pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/blob", nil))
			if tt.waitForClient {
				require.NoError(t, err, "the 200 and its first bytes never reached the client")
			}
			if err != nil {
				// The gateway had nothing on the wire yet and cut the
				// connection: an error, which is what the client must see.
				t.Logf("client error before a response: %v", err)
				return
			}
			defer resp.Body.Close()
			signal()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			body, err := io.ReadAll(resp.Body)
			require.Error(t, err, "got a clean %d-byte body; want the read to fail: the upstream sent %d of %d bytes", len(body), tt.sent, declared)
			assert.Less(t, len(body), declared, "client read %d bytes; want fewer than the declared %d", len(body), declared)
			assert.True(t, errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset"),
				"read error: got %v; want an unexpected EOF or a reset", err)
		})
	}
}

// TestReliabilityClientCancelReachesTheBackend pins that a client giving up
// ends the upstream request too: the backend's request context is done,
// whether the client gave up waiting for the headers or while reading the
// body.
func TestReliabilityClientCancelReachesTheBackend(t *testing.T) {
	entered := make(chan struct{}, 1)
	backendSawCancel := make(chan error, 1)
	backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("stage") == "body" {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "first part")
			if err := http.NewResponseController(w).Flush(); err != nil {
				backendSawCancel <- err
				return
			}
		}
		entered <- struct{}{}
		select {
		case <-r.Context().Done():
			backendSawCancel <- r.Context().Err()
		case <-time.After(pxWait):
			backendSawCancel <- errors.New("the request context never ended")
		}
	})
	gw := pxGateway(t, pxEndpoint(backend.URL))

	t.Run("before the response headers", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, gw.URL+"/orchestrator/users/v1/wait?stage=headers", nil)
		require.NoError(t, err)
		errc := make(chan error, 1)
		go func() {
			resp, err := gw.Client().Do(req)
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		relRecv(t, entered, "the request at the backend")
		cancel()
		got := relRecv(t, backendSawCancel, "the backend's request context to end")
		assert.ErrorIs(t, got, context.Canceled, "backend request context: got %v; want canceled", got)
		assert.ErrorIs(t, relRecv(t, errc, "the client to return"), context.Canceled)
	})
	t.Run("during the response body", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, gw.URL+"/orchestrator/users/v1/wait?stage=body", nil)
		require.NoError(t, err)
		resp, err := gw.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		first := make([]byte, len("first part"))
		_, err = io.ReadFull(resp.Body, first)
		require.NoError(t, err)
		assert.Equal(t, "first part", string(first))
		relRecv(t, entered, "the request at the backend")
		cancel()
		got := relRecv(t, backendSawCancel, "the backend's request context to end")
		assert.ErrorIs(t, got, context.Canceled, "backend request context: got %v; want canceled", got)
		_, err = io.ReadAll(resp.Body)
		assert.Error(t, err, "reading the rest after cancelling: got no error; want one")
	})
}

// ---------------------------------------------------------------------------
// 5. Overload.

// TestReliabilityParallelUploadsAreByteExactInFlatMemory sends 200 uploads
// of 1 MiB at once. Every body is generated as it is sent and hashed as it
// is received, each different from the others; each must arrive byte for
// byte, the heap must stay far below what buffering them would take, and
// once the load is over every goroutine it started must be gone.
func TestReliabilityParallelUploadsAreByteExactInFlatMemory(t *testing.T) {
	const (
		uploads   = 200
		size      = 1 << 20
		maxGrowth = 64 << 20 // buffering the bodies would take 200 MiB
	)
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sum, n, err := pxHashOf(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d %s", n, sum)
	}))
	backend.Config.ErrorLog = pxQuietLog()
	backend.Start()
	defer backend.Close()
	o := pxNew(t, pxEndpoint(backend.URL))
	gw := httptest.NewUnstartedServer(o)
	gw.Config.ErrorLog = pxQuietLog()
	gw.Start()
	defer gw.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: uploads, DisableCompression: true}}
	defer client.CloseIdleConnections()

	// Each upload is a different window of the pattern; the expected
	// hashes are computed the same streaming way.
	body := func(i int) *pxPatternReader {
		off := int64(i) * 7919
		return &pxPatternReader{off: off, n: off + size}
	}
	want := make([]string, uploads)
	for i := range want {
		sum, _, err := pxHashOf(body(i))
		require.NoError(t, err)
		want[i] = fmt.Sprintf("%d %s", size, sum)
	}

	goroutinesBefore := runtime.NumGoroutine()
	heap := pxWatchHeap(t)
	start := make(chan struct{})
	results := make([]string, uploads)
	var wg sync.WaitGroup
	for i := range uploads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 3*pxWait)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, gw.URL+"/orchestrator/users/v1/upload", io.NopCloser(body(i)))
			if err != nil {
				results[i] = err.Error()
				return
			}
			req.ContentLength = size
			resp, err := client.Do(req)
			if err != nil {
				results[i] = err.Error()
				return
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				results[i] = err.Error()
				return
			}
			results[i] = string(got)
			if resp.StatusCode != http.StatusOK {
				results[i] = fmt.Sprintf("%d %s", resp.StatusCode, got)
			}
		}()
	}
	close(start)
	wg.Wait()
	growth, allocated := heap.done()

	bad := 0
	for i := range uploads {
		if results[i] != want[i] {
			if bad < 5 {
				t.Errorf("upload %d: got %q; want %q", i, results[i], want[i])
			}
			bad++
		}
	}
	assert.Zero(t, bad, "uploads not byte-exact: got %d of %d; want 0", bad, uploads)
	t.Logf("peak heap growth %d MiB, allocated %d MiB for %d MiB moved", growth>>20, allocated>>20, uploads*size>>20)
	assert.Less(t, growth, uint64(maxGrowth), "peak heap growth: got %d bytes; want < %d", growth, maxGrowth)

	// Load over: idle connections closed on both hops, the goroutines the
	// load started all end.
	client.CloseIdleConnections()
	require.NoError(t, o.Close())
	var now int
	ok := relPoll(func() bool {
		now = runtime.NumGoroutine()
		return now <= goroutinesBefore
	})
	assert.True(t, ok, "goroutines after the load: got %d; want at most the %d before it", now, goroutinesBefore)
}

// ---------------------------------------------------------------------------
// 7. A replaced configuration's memory is given back.

// relHeapInuse returns the heap in use after a full collection.
func relHeapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// relHeldEndpoint returns endpoint "held" with a circuit-breaker override
// that nothing but the gateway's copy of this config refers to, and a weak
// pointer to it: it tells when the gateway has let go of the config.
func relHeldEndpoint(url string) (orchestrator.Endpoint, weak.Pointer[orchestrator.CircuitBreakerConfig]) {
	cb := &orchestrator.CircuitBreakerConfig{FailureThreshold: 7}
	// A timeout no slow machine reaches: the request is held on purpose.
	ep := orchestrator.Endpoint{Name: "held", URL: url, CircuitBreaker: cb, Timeout: orchestrator.Duration(5 * time.Minute)}
	return ep, weak.Make(cb)
}

// TestReliabilityReplacedConfigIsReleased replaces a configuration of 5,000
// endpoints with one of a single endpoint while a request to an endpoint
// of the old configuration is in flight. The request completes on the old
// configuration; once it has, the old configuration is garbage: the held
// endpoint's old config object is collected and most of the heap the 5,000
// endpoints took is given back.
func TestReliabilityReplacedConfigIsReleased(t *testing.T) {
	const many = 5000
	entered := make(chan struct{}, 1)
	release, releaseOnce := pxOnce()
	backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "held done")
	})
	t.Cleanup(releaseOnce)

	held, oldConfig := relHeldEndpoint(backend.URL)
	// Metrics off: unregistering thousands of endpoints' series one by one
	// from a metrics.Set is quadratic (seconds without -race, minutes with
	// it), which is not what this test measures.
	o := pxNew(t, held, orchestrator.WithMetrics(false), orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Enabled: new(bool)}))
	gw := httptest.NewUnstartedServer(o)
	gw.Config.ErrorLog = pxQuietLog()
	gw.Start()
	defer gw.Close()
	client := gw.Client()
	defer client.CloseIdleConnections()
	ctx := context.Background()

	before := relHeapInuse()
	func() {
		eps := make([]orchestrator.Endpoint, 0, many+1)
		eps = append(eps, held)
		for i := range many {
			eps = append(eps, orchestrator.Endpoint{
				Name: fmt.Sprintf("svc%04d", i), Version: "v1", URL: fmt.Sprintf("%s/tenant/%d", backend.URL, i),
				Methods: []string{"GET", "POST"}, Timeout: orchestrator.Duration(time.Duration(i+1) * time.Millisecond),
			})
		}
		require.NoError(t, o.Sync(ctx, orchestrator.SourceConfig, eps))
	}()
	held = orchestrator.Endpoint{} // the test keeps no reference to the old config
	built := relHeapInuse()
	require.Greater(t, built, before, "heap did not grow with %d endpoints", many)
	cost := built - before
	require.Len(t, o.Routes(), many+1)

	// A request on the old configuration is in flight...
	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, gw.URL+"/orchestrator/held/x", nil)
		resp, err := client.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{resp.StatusCode, string(b), err}
	}()
	relRecv(t, entered, "the held request at the backend")

	// ...when the configuration is replaced by one endpoint: "held" again,
	// changed, so that its route is rebuilt too.
	require.NoError(t, o.Sync(ctx, orchestrator.SourceConfig, []orchestrator.Endpoint{{
		Name: "held", URL: backend.URL, Timeout: orchestrator.Duration(20 * time.Second),
	}}))
	require.Len(t, o.Routes(), 1)

	releaseOnce()
	r := relRecv(t, done, "the held request to complete")
	require.NoError(t, r.err)
	assert.Equal(t, "200 held done", fmt.Sprint(r.status, " ", r.body), "the request in flight across the replacement")

	collected := relPoll(func() bool {
		runtime.GC()
		return oldConfig.Value() == nil
	})
	assert.True(t, collected, "the held endpoint's old config is still reachable after its last request ended")

	after := relHeapInuse()
	var released uint64
	if built > after {
		released = built - after
	}
	t.Logf("heap: %d KiB before, %d KiB with %d endpoints (cost %d KiB), %d KiB after the replacement (released %d KiB)",
		before>>10, built>>10, many, cost>>10, after>>10, released>>10)
	assert.GreaterOrEqual(t, released, cost/2, "released %d of the %d bytes the %d endpoints took; want at least half", released, cost, many)

	// The new configuration serves.
	resp, body := pxDo(t, client, pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/held/y", nil))
	releaseOnce()
	assert.Equal(t, "200 held done", fmt.Sprint(resp.StatusCode, " ", string(body)))
}
