package orchestrator_test

// Proxy and header tests: the cases of Go's
// net/http/httputil/reverseproxy_test.go that matter to a transparent
// gateway, ported to run against the orchestrator handler (a real loopback
// backend behind a real loopback gateway), plus the header contract of
// docs/DESIGN.md ("Headers", "Endpoints and routing").

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/netip"
	"net/textproto"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

const (
	// pxEndpointID is the id of the endpoint pxEndpoint builds.
	pxEndpointID = "users_v1"
	// pxWait bounds every wait of these tests: long enough for a loaded
	// 2-core machine running -race, short enough to fail a hang.
	pxWait = 10 * time.Second
)

// pxUUID matches the version-4 UUIDs the gateway generates as request ids.
var pxUUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// pxHopHeaders are the hop-by-hop fields of RFC 9110 §7.6.1 (plus the
// legacy Proxy-Connection and Keep-Alive) that must never cross the gateway.
var pxHopHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// pxEndpoint routes /orchestrator/users/v1/{rest} to {backendURL}/api/{rest}.
func pxEndpoint(backendURL string) orchestrator.Endpoint {
	return orchestrator.Endpoint{Name: "users", Version: "v1", URL: backendURL + "/api"}
}

// pxQuietLog swallows a server's error log: the tests provoke errors.
func pxQuietLog() *log.Logger { return log.New(io.Discard, "", 0) }

// pxBackend starts a loopback backend stopped at the end of the test.
func pxBackend(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.Config.ErrorLog = pxQuietLog()
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// pxNew builds a quiet gateway serving ep, closed at the end of the test.
func pxNew(t *testing.T, ep orchestrator.Endpoint, opts ...orchestrator.Option) *orchestrator.Orchestrator {
	t.Helper()
	all := append([]orchestrator.Option{
		orchestrator.WithLogger(slog.New(slog.DiscardHandler)),
		orchestrator.WithEndpoints(ep),
	}, opts...)
	o, err := orchestrator.New(all...)
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })
	return o
}

// pxGateway serves a gateway for ep on a loopback listener.
func pxGateway(t *testing.T, ep orchestrator.Endpoint, opts ...orchestrator.Option) *httptest.Server {
	t.Helper()
	gw := httptest.NewUnstartedServer(pxNew(t, ep, opts...))
	gw.Config.ErrorLog = pxQuietLog()
	gw.Start()
	t.Cleanup(gw.Close)
	return gw
}

// pxRequest builds a request to the gateway bounded by pxWait.
func pxRequest(t *testing.T, method, target string, body io.Reader) *http.Request {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pxWait)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	require.NoError(t, err)
	return req
}

// pxDo sends req and returns the response with its body read and closed.
func pxDo(t *testing.T, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

// pxOnce returns a channel and an idempotent close for it. A test whose
// backend blocks on the channel also registers the close with t.Cleanup
// after starting the backend, so that (cleanups running last-in first-out)
// the backend is released before its server is closed.
func pxOnce() (chan struct{}, func()) {
	ch := make(chan struct{})
	var once sync.Once
	return ch, func() { once.Do(func() { close(ch) }) }
}

// pxDecodeProblem checks that resp is an application/problem+json document
// with the given status and returns it.
func pxDecodeProblem(t *testing.T, resp *http.Response, body []byte, status int) testutil.Problem {
	t.Helper()
	require.Equal(t, status, resp.StatusCode, "status: got %d; want %d; body %s", resp.StatusCode, status, body)
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"),
		"Content-Type: got %q; want application/problem+json", resp.Header.Get("Content-Type"))
	var p testutil.Problem
	require.NoError(t, json.Unmarshal(body, &p), "problem body %s", body)
	assert.Equal(t, status, p.Status, "problem status: got %d; want %d", p.Status, status)
	assert.Equal(t, resp.Header.Get("X-Request-Id"), p.RequestID,
		"problem request_id: got %q; want the X-Request-Id header %q", p.RequestID, resp.Header.Get("X-Request-Id"))
	return p
}

// pxRawBackend is a loopback server that answers every request with the
// bytes of response, verbatim. It lets a test send what Go's server would
// normalise away (hop-by-hop fields, a Trailer field without chunking, a
// malformed Content-Length).
func pxRawBackend(t *testing.T, response string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(pxWait))
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = io.WriteString(c, response)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	return "http://" + l.Addr().String()
}

// pxRawExchange writes raw to the gateway on a new connection and reads one
// response. head is the status line and fields exactly as they came over
// the wire, before Go's client could normalise them.
func pxRawExchange(t *testing.T, gw *httptest.Server, raw string) (head string, resp *http.Response, body []byte) {
	t.Helper()
	c, err := net.Dial("tcp", gw.Listener.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(pxWait)))
	_, err = io.WriteString(c, raw)
	require.NoError(t, err)
	var wire bytes.Buffer
	resp, err = http.ReadResponse(bufio.NewReader(io.TeeReader(c, &wire)), nil)
	require.NoError(t, err)
	body, err = io.ReadAll(resp.Body)
	require.NoError(t, err)
	resp.Body.Close()
	head, _, _ = strings.Cut(wire.String(), "\r\n\r\n")
	return head, resp, body
}

// pxWireFields parses the field lines of a raw head (the first line is the
// request or status line) into canonical names and untrimmed-inside values.
func pxWireFields(head string) http.Header {
	h := http.Header{}
	lines := strings.Split(head, "\r\n")
	for _, line := range lines[1:] {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k := textproto.CanonicalMIMEHeaderKey(name)
		h[k] = append(h[k], strings.Trim(value, " \t"))
	}
	return h
}

// ---------------------------------------------------------------------------
// 1. Hop-by-hop headers.

// TestProxyStripsHopByHopRequestHeaders ports TestReverseProxy,
// TestReverseProxyStripHeadersPresentInConnection (Go issue 16875) and
// TestReverseProxyStripEmptyConnection (Go issue 46313) for the request
// direction. The request is written raw so that fields Go's client would
// never send (Trailer, several Connection lines, the first empty) reach the
// gateway as a real client could send them.
func TestProxyStripsHopByHopRequestHeaders(t *testing.T) {
	t.Run("hop-by-hop and Connection-named fields are not forwarded", func(t *testing.T) {
		seen := make(chan *http.Request, 1)
		backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
			seen <- r.Clone(context.Background())
			io.WriteString(w, "ok")
		})
		gw := pxGateway(t, pxEndpoint(backend.URL))

		_, resp, body := pxRawExchange(t, gw, "GET /orchestrator/users/v1/hop HTTP/1.1\r\n"+
			"Host: gateway.test\r\n"+
			"Connection:\r\n"+
			"Connection: keep-alive, X-Conn-Named\r\n"+
			"Connection: X-Conn-Other, X-Forwarded-For\r\n"+
			"Keep-Alive: timeout=5, max=100\r\n"+
			"Proxy-Connection: keep-alive\r\n"+
			"Proxy-Authorization: Basic Z2F0ZXdheTpzZWNyZXQ=\r\n"+
			"TE: gzip, deflate\r\n"+
			"Trailer: X-Req-Trailer\r\n"+
			"Upgrade: foo/1.0\r\n"+
			"X-Conn-Named: drop me\r\n"+
			"X-Conn-Other: drop me too\r\n"+
			"X-Forwarded-For: 203.0.113.9\r\n"+
			"X-End-To-End: keep me\r\n"+
			"\r\n")
		require.Equal(t, http.StatusOK, resp.StatusCode, "status: got %d; want 200; body %s", resp.StatusCode, body)

		r := <-seen
		for _, name := range slices.Concat(pxHopHeaders, []string{"X-Conn-Named", "X-Conn-Other"}) {
			assert.Empty(t, r.Header.Values(name), "upstream %s: got %q; want none", name, r.Header.Values(name))
		}
		assert.Empty(t, r.TransferEncoding, "upstream Transfer-Encoding: got %q; want none", r.TransferEncoding)
		assert.Equal(t, []string{"keep me"}, r.Header["X-End-To-End"],
			"upstream X-End-To-End: got %q; want [keep me]", r.Header["X-End-To-End"])
		// A client naming X-Forwarded-For in Connection must not make the
		// gateway drop its own X-Forwarded-For: the backend would lose the
		// client address (a known trick against proxies).
		assert.Equal(t, []string{"127.0.0.1"}, r.Header["X-Forwarded-For"],
			"upstream X-Forwarded-For: got %q; want [127.0.0.1]", r.Header["X-Forwarded-For"])
	})

	t.Run("TE trailers is re-announced, other codings dropped (Go issue 21096)", func(t *testing.T) {
		seen := make(chan http.Header, 1)
		backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
			seen <- r.Header.Clone()
		})
		gw := pxGateway(t, pxEndpoint(backend.URL))

		req := pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/te", nil)
		req.Header.Add("Te", "gzip")
		req.Header.Add("Te", "deflate, trailers")
		resp, _ := pxDo(t, gw.Client(), req)
		require.Equal(t, http.StatusOK, resp.StatusCode)

		h := <-seen
		assert.Equal(t, []string{"trailers"}, h["Te"], "upstream TE: got %q; want [trailers]", h["Te"])
	})
}

// TestProxyStripsHopByHopResponseHeaders is the response direction of
// TestProxyStripsHopByHopRequestHeaders. The backend writes its response
// raw and the client reads the gateway's response raw, so that neither
// side's Go code hides a field that crossed the gateway. (Transfer-Encoding
// is in the list for completeness: Go's server replaces a handler's
// Transfer-Encoding with its own framing unless Content-Length is set too,
// as it is here.)
func TestProxyStripsHopByHopResponseHeaders(t *testing.T) {
	backendURL := pxRawBackend(t, "HTTP/1.1 200 OK\r\n"+
		"Connection:\r\n"+
		"Connection: X-Resp-Named, keep-alive\r\n"+
		"Connection: X-Resp-Other\r\n"+
		"Keep-Alive: timeout=5, max=100\r\n"+
		"Proxy-Connection: keep-alive\r\n"+
		"Proxy-Authenticate: Basic realm=\"upstream\"\r\n"+
		"TE: trailers\r\n"+
		"Trailer: X-Not-Chunked\r\n"+
		"Upgrade: foo/1.0\r\n"+
		"X-Resp-Named: drop me\r\n"+
		"X-Resp-Other: drop me too\r\n"+
		"X-End-To-End: keep me\r\n"+
		"Content-Type: text/plain\r\n"+
		"Content-Length: 5\r\n"+
		"\r\n"+
		"hello")
	gw := pxGateway(t, pxEndpoint(backendURL))

	head, resp, body := pxRawExchange(t, gw, "GET /orchestrator/users/v1/hop HTTP/1.1\r\nHost: gateway.test\r\n\r\n")
	require.Equal(t, http.StatusOK, resp.StatusCode, "status: got %d; want 200; head %q", resp.StatusCode, head)
	assert.Equal(t, "hello", string(body), "body: got %q; want %q", body, "hello")

	fields := pxWireFields(head)
	for _, name := range slices.Concat(pxHopHeaders, []string{"X-Resp-Named", "X-Resp-Other"}) {
		assert.Empty(t, fields[name], "client got %s: %q; want none (head %q)", name, fields[name], head)
	}
	assert.Equal(t, []string{"keep me"}, fields["X-End-To-End"],
		"client X-End-To-End: got %q; want [keep me]", fields["X-End-To-End"])
}

// ---------------------------------------------------------------------------
// 2. End-to-end headers.

// TestProxyForwardsEndToEndHeadersByteForByte pins that credentials and
// headers the gateway has never heard of pass both ways untouched, values
// byte for byte and every line of a multi-line field kept (TestReverseProxy
// checks X-Multi-Value, Set-Cookie and the non-special "Trailers").
func TestProxyForwardsEndToEndHeadersByteForByte(t *testing.T) {
	request := http.Header{
		"Authorization": {"Bearer eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo"},
		"X-Api-Key":     {"k3y/+=_-~.with\tinner tab"},
		"Cookie":        {`session=abc123; theme="dark mode"; empty=; pct=%41%zz`},
		// Odd but legal: runs of spaces, quotes, backslashes, separators,
		// UTF-8 and obs-text bytes, an empty value, several lines.
		"X-Custom-Thing": {
			"odd   spacing \t inside",
			`quote" back\slash ,comma;semi=colon`,
			"caf\xc3\xa9 \xff\x80 obs-text",
			"",
		},
	}
	response := http.Header{
		"Set-Cookie": {
			"id=a3fWa; Expires=Thu, 31 Oct 2041 07:28:00 GMT; Secure; HttpOnly",
			"flavor=chocolateChip; Path=/; SameSite=Lax",
		},
		"X-Resp-Thing":     {"caf\xc3\xa9 \xff", "two  spaces,  and a comma"},
		"X-Multi-Value":    {"foo", "bar"},
		"Trailers":         {"not a special header field name"},
		"Www-Authenticate": {`Bearer realm="api", error="invalid_token"`},
	}
	seen := make(chan http.Header, 1)
	backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		for k, v := range response {
			w.Header()[k] = v
		}
		io.WriteString(w, "ok")
	})
	gw := pxGateway(t, pxEndpoint(backend.URL))

	req := pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/headers", nil)
	for k, v := range request {
		req.Header[k] = v
	}
	resp, body := pxDo(t, gw.Client(), req)
	require.Equal(t, http.StatusOK, resp.StatusCode, "status: got %d; want 200; body %s", resp.StatusCode, body)

	up := <-seen
	for k, want := range request {
		assert.Equal(t, want, up[k], "upstream %s: got %q; want %q", k, up[k], want)
	}
	for k, want := range response {
		assert.Equal(t, want, resp.Header[k], "client %s: got %q; want %q", k, resp.Header[k], want)
	}
}

// ---------------------------------------------------------------------------
// 3. X-Forwarded-*, Forwarded and Host.

func TestProxyXForwardedFor(t *testing.T) {
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	elsewhere := netip.MustParsePrefix("10.0.0.0/8")
	tests := []struct {
		name       string
		trusted    []netip.Prefix
		sent       []string
		connection string
		want       string
	}{
		{name: "set to the client address when the client sends none", want: "127.0.0.1"},
		{name: "a trusted proxy's value named in Connection is for its hop only and replaced", trusted: []netip.Prefix{loopback},
			sent: []string{"1.2.3.4"}, connection: "X-Forwarded-For", want: "127.0.0.1"},
		{name: "client value replaced by default", sent: []string{"1.2.3.4"}, want: "127.0.0.1"},
		{name: "client value replaced when the client is not a trusted proxy", trusted: []netip.Prefix{elsewhere},
			sent: []string{"1.2.3.4"}, want: "127.0.0.1"},
		{name: "appended to from a trusted proxy", trusted: []netip.Prefix{loopback},
			sent: []string{"1.2.3.4"}, want: "1.2.3.4, 127.0.0.1"},
		{name: "several lines from a trusted proxy folded in order", trusted: []netip.Prefix{elsewhere, loopback},
			sent: []string{"1.2.3.4", "5.6.7.8, 9.9.9.9"}, want: "1.2.3.4, 5.6.7.8, 9.9.9.9, 127.0.0.1"},
		{name: "trusted proxy sending none", trusted: []netip.Prefix{loopback}, want: "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := make(chan http.Header, 1)
			backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
				seen <- r.Header.Clone()
			})
			gw := pxGateway(t, pxEndpoint(backend.URL), orchestrator.WithTrustedProxies(tt.trusted...))

			req := pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/xff", nil)
			req.Header["X-Forwarded-For"] = tt.sent
			if tt.connection != "" {
				req.Header.Set("Connection", tt.connection)
			}
			resp, _ := pxDo(t, gw.Client(), req)
			require.Equal(t, http.StatusOK, resp.StatusCode)

			got := (<-seen)["X-Forwarded-For"]
			assert.Equal(t, []string{tt.want}, got, "upstream X-Forwarded-For: got %q; want [%q]", got, tt.want)
		})
	}
}

func TestProxyXForwardedHostProtoAndForwarded(t *testing.T) {
	const clientHost = "gateway.example:8443"
	tests := []struct {
		name    string
		trusted bool
		sent    http.Header
		want    http.Header // nil value: the field must be absent
	}{
		{
			name: "set from the request when the client sends none",
			want: http.Header{"X-Forwarded-Host": {clientHost}, "X-Forwarded-Proto": {"http"}, "Forwarded": nil},
		},
		{
			name: "client values replaced or dropped by default",
			sent: http.Header{"X-Forwarded-Host": {"evil.example"}, "X-Forwarded-Proto": {"https"}, "Forwarded": {"for=1.2.3.4;proto=https"}},
			want: http.Header{"X-Forwarded-Host": {clientHost}, "X-Forwarded-Proto": {"http"}, "Forwarded": nil},
		},
		{
			name:    "kept from a trusted proxy",
			trusted: true,
			sent:    http.Header{"X-Forwarded-Host": {"public.example"}, "X-Forwarded-Proto": {"https"}, "Forwarded": {"for=1.2.3.4;proto=https"}},
			want:    http.Header{"X-Forwarded-Host": {"public.example"}, "X-Forwarded-Proto": {"https"}, "Forwarded": {"for=1.2.3.4;proto=https, for=127.0.0.1;proto=http"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := make(chan http.Header, 1)
			backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
				seen <- r.Header.Clone()
			})
			var opts []orchestrator.Option
			if tt.trusted {
				opts = append(opts, orchestrator.WithTrustedProxies(netip.MustParsePrefix("127.0.0.0/8")))
			}
			gw := pxGateway(t, pxEndpoint(backend.URL), opts...)

			req := pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/xfh", nil)
			req.Host = clientHost
			for k, v := range tt.sent {
				req.Header[k] = v
			}
			resp, _ := pxDo(t, gw.Client(), req)
			require.Equal(t, http.StatusOK, resp.StatusCode)

			up := <-seen
			for k, want := range tt.want {
				assert.Equal(t, want, up[k], "upstream %s: got %q; want %q", k, up[k], want)
			}
		})
	}
}

func TestProxyUpstreamHost(t *testing.T) {
	const clientHost = "gateway.example:8443"
	for _, preserve := range []bool{false, true} {
		t.Run(fmt.Sprintf("PreserveHost=%v", preserve), func(t *testing.T) {
			seen := make(chan string, 1)
			backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
				seen <- r.Host
			})
			ep := pxEndpoint(backend.URL)
			ep.PreserveHost = preserve
			gw := pxGateway(t, ep)

			req := pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/host", nil)
			req.Host = clientHost
			resp, _ := pxDo(t, gw.Client(), req)
			require.Equal(t, http.StatusOK, resp.StatusCode)

			want := backend.Listener.Addr().String()
			if preserve {
				want = clientHost
			}
			got := <-seen
			assert.Equal(t, want, got, "upstream Host: got %q; want %q", got, want)
		})
	}
}

// ---------------------------------------------------------------------------
// 4. X-Request-ID and trace context.

func TestProxyRequestID(t *testing.T) {
	long128 := strings.Repeat("a", 128)
	tests := []struct {
		name string
		sent []string // nil: no header
		keep bool     // the sent value must be kept
	}{
		{name: "sane value kept", sent: []string{"req-123_abc.DEF:ghi+/=@x"}, keep: true},
		{name: "UUID kept", sent: []string{"0b7d1a5e-62c1-4e8a-9f3b-2a4c6d8e0f12"}, keep: true},
		{name: "128 characters kept", sent: []string{long128}, keep: true},
		{name: "absent: generated"},
		{name: "spaces: replaced", sent: []string{"has a space"}},
		{name: "over 128 characters: replaced", sent: []string{long128 + "a"}},
		{name: "quotes: replaced", sent: []string{`"quoted"`}},
		{name: "log-forging bytes: replaced", sent: []string{"a\tb"}},
		{name: "two values: replaced", sent: []string{"one", "two"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := make(chan []string, 1)
			backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
				seen <- r.Header["X-Request-Id"]
			})
			gw := pxGateway(t, pxEndpoint(backend.URL))

			req := pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/id", nil)
			req.Header["X-Request-Id"] = tt.sent
			resp, _ := pxDo(t, gw.Client(), req)
			require.Equal(t, http.StatusOK, resp.StatusCode)

			up := <-seen
			require.Len(t, up, 1, "upstream X-Request-Id: got %q; want one value", up)
			echoed := resp.Header["X-Request-Id"]
			assert.Equal(t, up, echoed, "response X-Request-Id: got %q; want the upstream's %q", echoed, up)
			if tt.keep {
				assert.Equal(t, tt.sent, up, "upstream X-Request-Id: got %q; want the client's %q", up, tt.sent)
				return
			}
			assert.Regexp(t, pxUUID, up[0], "upstream X-Request-Id: got %q; want a generated UUID", up[0])
			assert.NotContains(t, tt.sent, up[0], "upstream X-Request-Id: got the client's %q; want a new one", up[0])
		})
	}

	t.Run("generated ids differ between requests", func(t *testing.T) {
		backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {})
		gw := pxGateway(t, pxEndpoint(backend.URL))
		ids := map[string]bool{}
		for range 20 {
			resp, _ := pxDo(t, gw.Client(), pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/id", nil))
			ids[resp.Header.Get("X-Request-Id")] = true
		}
		assert.Len(t, ids, 20, "distinct generated ids: got %d; want 20", len(ids))
	})
}

func TestProxyRequestIDOnGatewayErrors(t *testing.T) {
	backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("backend got %s; want no request to reach it", r.URL)
	})
	gw := pxGateway(t, pxEndpoint(backend.URL))

	tests := []struct {
		name, path, sent string
	}{
		{name: "no such endpoint, sane id", path: "/orchestrator/nobody/v1/x", sent: "trace-404"},
		{name: "no such endpoint, no id", path: "/orchestrator/nobody/v1/x"},
		{name: "no such endpoint, insane id", path: "/orchestrator/nobody/v1/x", sent: "not sane"},
		{name: "outside the prefix", path: "/elsewhere", sent: "trace-outside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := pxRequest(t, http.MethodGet, gw.URL+tt.path, nil)
			if tt.sent != "" {
				req.Header.Set("X-Request-Id", tt.sent)
			}
			resp, body := pxDo(t, gw.Client(), req)
			p := pxDecodeProblem(t, resp, body, http.StatusNotFound)
			if tt.sent != "" && tt.sent != "not sane" {
				assert.Equal(t, tt.sent, p.RequestID, "request_id: got %q; want the client's %q", p.RequestID, tt.sent)
			} else {
				assert.Regexp(t, pxUUID, p.RequestID, "request_id: got %q; want a generated UUID", p.RequestID)
			}
		})
	}
}

func TestProxyTraceContextPassesThrough(t *testing.T) {
	trace := http.Header{
		"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		"Tracestate":  {"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", "vendor=x"},
		"Baggage":     {"userId=alice,serverNode=DF%2028"},
	}
	seen := make(chan http.Header, 1)
	backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		w.Header()["Traceresponse"] = []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	})
	gw := pxGateway(t, pxEndpoint(backend.URL))

	req := pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/trace", nil)
	for k, v := range trace {
		req.Header[k] = v
	}
	resp, _ := pxDo(t, gw.Client(), req)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	up := <-seen
	for k, want := range trace {
		assert.Equal(t, want, up[k], "upstream %s: got %q; want %q", k, up[k], want)
	}
	assert.Equal(t, []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, resp.Header["Traceresponse"],
		"client Traceresponse: got %q", resp.Header["Traceresponse"])
}

// ---------------------------------------------------------------------------
// 5. Trailers.

// TestProxyResponseTrailers ports the trailer half of TestReverseProxy.
func TestProxyResponseTrailers(t *testing.T) {
	backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Trailer")
		io.WriteString(w, "body")
		w.Header().Set("X-Trailer", "trailer_value")
		w.Header().Set(http.TrailerPrefix+"X-Unannounced-Trailer", "unannounced_trailer_value")
	})
	gw := pxGateway(t, pxEndpoint(backend.URL))

	resp, err := gw.Client().Do(pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/trailers", nil))
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.Header{"X-Trailer": nil}, resp.Trailer,
		"before reading the body, Trailer: got %#v; want the announced X-Trailer", resp.Trailer)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "body", string(body))
	assert.Equal(t, "trailer_value", resp.Trailer.Get("X-Trailer"),
		"trailer X-Trailer: got %q; want %q", resp.Trailer.Get("X-Trailer"), "trailer_value")
	assert.Equal(t, "unannounced_trailer_value", resp.Trailer.Get("X-Unannounced-Trailer"),
		"trailer X-Unannounced-Trailer: got %q; want %q", resp.Trailer.Get("X-Unannounced-Trailer"), "unannounced_trailer_value")
}

// TestProxyUnannouncedTrailer ports TestUnannouncedTrailer: a trailer set
// after the headers were flushed still arrives.
func TestProxyUnannouncedTrailer(t *testing.T) {
	backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		w.Header().Set(http.TrailerPrefix+"X-Unannounced-Trailer", "unannounced_trailer_value")
	})
	gw := pxGateway(t, pxEndpoint(backend.URL))

	resp, _ := pxDo(t, gw.Client(), pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/trailers", nil))
	assert.Equal(t, "unannounced_trailer_value", resp.Trailer.Get("X-Unannounced-Trailer"),
		"trailer X-Unannounced-Trailer: got %q; want %q", resp.Trailer.Get("X-Unannounced-Trailer"), "unannounced_trailer_value")
}

// TestProxyRequestTrailers pins that a client's request trailers (sent
// after a chunked body, as gRPC-web and checksum-after-upload clients do)
// reach the backend.
func TestProxyRequestTrailers(t *testing.T) {
	type got struct {
		body    string
		trailer http.Header
	}
	seen := make(chan got, 1)
	backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("backend reading body: %v", err)
		}
		seen <- got{string(body), r.Trailer.Clone()}
	})
	gw := pxGateway(t, pxEndpoint(backend.URL))

	req := pxRequest(t, http.MethodPost, gw.URL+"/orchestrator/users/v1/upload", io.NopCloser(strings.NewReader("payload")))
	req.ContentLength = -1
	req.Trailer = http.Header{"X-Checksum": {"sha256=abc"}, "X-Other": {"two", "values"}}
	resp, _ := pxDo(t, gw.Client(), req)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	g := <-seen
	assert.Equal(t, "payload", g.body, "upstream body: got %q; want %q", g.body, "payload")
	assert.Equal(t, []string{"sha256=abc"}, g.trailer["X-Checksum"], "upstream trailer X-Checksum: got %q; want [sha256=abc]", g.trailer["X-Checksum"])
	assert.Equal(t, []string{"two", "values"}, g.trailer["X-Other"], "upstream trailer X-Other: got %q; want [two values]", g.trailer["X-Other"])
}

// ---------------------------------------------------------------------------
// 6. 1xx responses.

// TestProxy1xxResponses ports Test1xxResponses: interim responses are
// forwarded as they arrive, each with its own fields, and none of their
// fields end up in the final response. The backend holds its final
// response until the client has seen both 103s, so hints buffered until the
// final response would fail the test instead of passing it late.
func TestProxy1xxResponses(t *testing.T) {
	hintsSeen, allSeen := pxOnce()
	backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Link", "</style.css>; rel=preload; as=style")
		h.Add("Link", "</script.js>; rel=preload; as=script")
		w.WriteHeader(http.StatusEarlyHints)
		h.Del("Link")
		h.Add("Link", "</font.woff2>; rel=preload; as=font")
		w.WriteHeader(http.StatusEarlyHints)
		h.Del("Link")
		select {
		case <-hintsSeen:
		case <-r.Context().Done():
			return
		}
		h.Set("Content-Type", "text/plain")
		io.WriteString(w, "Hello")
	})
	t.Cleanup(allSeen)
	gw := pxGateway(t, pxEndpoint(backend.URL))

	type interim struct {
		code  int
		links []string
	}
	var (
		mu  sync.Mutex
		got []interim
	)
	trace := &httptrace.ClientTrace{
		Got1xxResponse: func(code int, header textproto.MIMEHeader) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, interim{code, header["Link"]})
			if len(got) == 2 {
				allSeen()
			}
			return nil
		},
	}
	req := pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/hints", nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, body := pxDo(t, gw.Client(), req)

	mu.Lock()
	defer mu.Unlock()
	want := []interim{
		{103, []string{"</style.css>; rel=preload; as=style", "</script.js>; rel=preload; as=script"}},
		{103, []string{"</font.woff2>; rel=preload; as=font"}},
	}
	assert.Equal(t, want, got, "interim responses: got %+v; want %+v", got, want)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Empty(t, resp.Header["Link"], "final response Link: got %q; want none", resp.Header["Link"])
	assert.NotEmpty(t, resp.Header.Get("X-Request-Id"), "final response has no X-Request-Id")
	assert.Equal(t, "Hello", string(body))
}

// ---------------------------------------------------------------------------
// 7. Upgrade.

// TestProxyWebSocketUpgrade ports TestReverseProxyWebSocket: an Upgrade
// request is forwarded with its Connection and Upgrade fields and the
// switched connection carries bytes both ways.
func TestProxyWebSocketUpgrade(t *testing.T) {
	backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || !strings.EqualFold(r.Header.Get("Connection"), "upgrade") {
			t.Errorf("backend got Connection %q, Upgrade %q; want Upgrade, websocket", r.Header.Get("Connection"), r.Header.Get("Upgrade"))
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		c, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(pxWait))
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: WebSocket\r\n\r\n")
		// Speak first, then echo two lines: bytes flow both ways, in turn.
		io.WriteString(c, "hello from backend\n")
		for range 2 {
			line, err := brw.ReadString('\n')
			if err != nil {
				t.Errorf("backend reading from client: %v", err)
				return
			}
			fmt.Fprintf(c, "backend got %q\n", strings.TrimSuffix(line, "\n"))
		}
	})
	gw := pxGateway(t, pxEndpoint(backend.URL))

	req := pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("X-Request-Id", "ws-1")
	resp, err := gw.Client().Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode, "status: got %s; want 101", resp.Status)
	assert.True(t, strings.EqualFold(resp.Header.Get("Upgrade"), "websocket"), "Upgrade: got %q; want websocket", resp.Header.Get("Upgrade"))
	assert.Equal(t, "ws-1", resp.Header.Get("X-Request-Id"), "X-Request-Id: got %q; want ws-1", resp.Header.Get("X-Request-Id"))
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	require.True(t, ok, "response body is %T; want an io.ReadWriteCloser", resp.Body)
	defer rwc.Close()

	br := bufio.NewReader(rwc)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "hello from backend\n", line)
	for _, msg := range []string{"Hello", "Again"} {
		_, err := io.WriteString(rwc, msg+"\n")
		require.NoError(t, err)
		line, err := br.ReadString('\n')
		require.NoError(t, err)
		want := fmt.Sprintf("backend got %q\n", msg)
		assert.Equal(t, want, line, "got %q; want %q", line, want)
	}
}

// ---------------------------------------------------------------------------
// 8. Flushing.

// TestProxyFlushesStreamingResponses pins that server-sent events and
// responses of unknown length reach the client as they are written: the
// backend writes one event and then waits until the client has read it, so
// a gateway that buffered would deadlock until the client's deadline.
func TestProxyFlushesStreamingResponses(t *testing.T) {
	tests := []struct{ name, contentType string }{
		{"server-sent events", "text/event-stream"},
		{"server-sent events with parameters", "text/event-stream; charset=utf-8"},
		{"chunked, unknown length", "application/octet-stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			firstRead, release := pxOnce()
			backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				io.WriteString(w, "data: one\n\n")
				w.(http.Flusher).Flush()
				select {
				case <-firstRead:
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, "data: two\n\n")
			})
			t.Cleanup(release)
			gw := pxGateway(t, pxEndpoint(backend.URL))

			resp, err := gw.Client().Do(pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/events", nil))
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, tt.contentType, resp.Header.Get("Content-Type"))
			assert.Equal(t, int64(-1), resp.ContentLength, "ContentLength: got %d; want -1 (streamed)", resp.ContentLength)

			br := bufio.NewReader(resp.Body)
			var first string
			for {
				line, err := br.ReadString('\n')
				require.NoError(t, err, "reading the first event before the backend finished: got %q so far", first)
				first += line
				if line == "\n" {
					break
				}
			}
			assert.Equal(t, "data: one\n\n", first)
			release()
			rest, err := io.ReadAll(br)
			require.NoError(t, err)
			assert.Equal(t, "data: two\n\n", string(rest))
		})
	}
}

// ---------------------------------------------------------------------------
// 9. Streaming large bodies.

// pxStreamSize is the size of the bodies TestProxyStreams64MiB moves.
const pxStreamSize = 64 << 20

// pxPattern is the period of pxPatternReader: a prime number of random
// bytes, so that a chunk lost, repeated or reordered at any 2^n boundary
// changes the hash.
var pxPattern = func() []byte {
	b := make([]byte, 65521)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}()

// pxPatternReader yields n deterministic bytes, generated as they are read:
// no body exists in memory anywhere before it is sent.
type pxPatternReader struct {
	n, off int64
}

func (r *pxPatternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	if rem := r.n - r.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	total := 0
	for total < len(p) {
		k := r.off % int64(len(pxPattern))
		c := copy(p[total:], pxPattern[k:])
		total += c
		r.off += int64(c)
	}
	return total, nil
}

// pxHashOf hashes what reader yields and counts its bytes.
func pxHashOf(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

// pxHeapWatch samples the heap while a transfer runs. Sampling (rather than
// comparing before and after) is what catches a body buffered whole and
// released at the end.
type pxHeapWatch struct {
	base, peak uint64
	allocBase  uint64
	allocs     uint64
	stop       func()
	finished   chan struct{}
}

func pxWatchHeap(t *testing.T) *pxHeapWatch {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	stop, stopFunc := pxOnce()
	w := &pxHeapWatch{base: ms.HeapInuse, peak: ms.HeapInuse, allocBase: ms.TotalAlloc,
		stop: stopFunc, finished: make(chan struct{})}
	go func() {
		defer close(w.finished)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				runtime.ReadMemStats(&ms)
				w.peak = max(w.peak, ms.HeapInuse)
				w.allocs = ms.TotalAlloc - w.allocBase
				return
			case <-tick.C:
				runtime.ReadMemStats(&ms)
				w.peak = max(w.peak, ms.HeapInuse)
			}
		}
	}()
	t.Cleanup(func() { stopFunc(); <-w.finished })
	return w
}

// done stops sampling and returns the peak heap growth and the bytes
// allocated meanwhile.
func (w *pxHeapWatch) done() (growth, allocated uint64) {
	w.stop()
	<-w.finished
	if w.peak > w.base {
		growth = w.peak - w.base
	}
	return growth, w.allocs
}

// TestProxyStreams64MiB pushes 64 MiB up and pulls 64 MiB down through the
// gateway with bodies generated on the fly, and checks that the heap of
// the whole process (client, gateway and backend) stays flat.
func TestProxyStreams64MiB(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 128 MiB")
	}
	const maxGrowth = 16 << 20
	wantHash, _, err := pxHashOf(&pxPatternReader{n: pxStreamSize})
	require.NoError(t, err)

	t.Run("request body", func(t *testing.T) {
		backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
			sum, n, err := pxHashOf(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			fmt.Fprintf(w, "%d %s", n, sum)
		})
		gw := pxGateway(t, pxEndpoint(backend.URL))
		client := gw.Client()

		heap := pxWatchHeap(t)
		req := pxRequest(t, http.MethodPut, gw.URL+"/orchestrator/users/v1/blob", io.NopCloser(&pxPatternReader{n: pxStreamSize}))
		req.ContentLength = pxStreamSize
		resp, body := pxDo(t, client, req)
		growth, allocated := heap.done()

		require.Equal(t, http.StatusOK, resp.StatusCode, "status: got %d; want 200; body %s", resp.StatusCode, body)
		want := fmt.Sprintf("%d %s", pxStreamSize, wantHash)
		assert.Equal(t, want, string(body), "backend got %q; want %q", body, want)
		t.Logf("peak heap growth %d KiB, allocated %d KiB", growth>>10, allocated>>10)
		assert.Less(t, growth, uint64(maxGrowth), "peak heap growth: got %d bytes; want < %d", growth, maxGrowth)
		assert.Less(t, allocated, uint64(maxGrowth), "allocated during the upload: got %d bytes; want < %d", allocated, maxGrowth)
	})

	t.Run("response body", func(t *testing.T) {
		backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(pxStreamSize))
			io.Copy(w, &pxPatternReader{n: pxStreamSize})
		})
		gw := pxGateway(t, pxEndpoint(backend.URL))
		client := gw.Client()

		heap := pxWatchHeap(t)
		resp, err := client.Do(pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/blob", nil))
		require.NoError(t, err)
		gotHash, n, err := pxHashOf(resp.Body)
		resp.Body.Close()
		growth, allocated := heap.done()

		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, int64(pxStreamSize), resp.ContentLength, "Content-Length: got %d; want %d", resp.ContentLength, pxStreamSize)
		assert.Equal(t, int64(pxStreamSize), n, "client read %d bytes; want %d", n, pxStreamSize)
		assert.Equal(t, wantHash, gotHash, "client hash: got %s; want %s", gotHash, wantHash)
		t.Logf("peak heap growth %d KiB, allocated %d KiB", growth>>10, allocated>>10)
		assert.Less(t, growth, uint64(maxGrowth), "peak heap growth: got %d bytes; want < %d", growth, maxGrowth)
		assert.Less(t, allocated, uint64(maxGrowth), "allocated during the download: got %d bytes; want < %d", allocated, maxGrowth)
	})
}

// ---------------------------------------------------------------------------
// 10. Upstream errors and the timeout.

func TestProxyUpstreamTimeoutIs504(t *testing.T) {
	arrived, arrive := pxOnce()
	ended, end := pxOnce()
	backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
		arrive()
		<-ended // blocks until the test ends
	})
	t.Cleanup(end)
	ep := pxEndpoint(backend.URL)
	ep.Timeout = orchestrator.Duration(100 * time.Millisecond)
	gw := pxGateway(t, ep)

	req := pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/slow", nil)
	req.Header.Set("X-Request-Id", "timeout-1")
	start := time.Now()
	resp, body := pxDo(t, gw.Client(), req)
	elapsed := time.Since(start)

	select {
	case <-arrived:
	default:
		t.Error("the request never reached the backend; want a timeout waiting for it")
	}
	p := pxDecodeProblem(t, resp, body, http.StatusGatewayTimeout)
	assert.Equal(t, "timeout-1", p.RequestID, "request_id: got %q; want timeout-1", p.RequestID)
	assert.Equal(t, pxEndpointID, p.EndpointID, "endpoint_id: got %q; want %q", p.EndpointID, pxEndpointID)
	assert.Equal(t, "urn:orchestrator:problem:upstream-timeout", p.Type)
	assert.GreaterOrEqual(t, elapsed, 100*time.Millisecond, "answered after %v; want no sooner than the 100ms timeout", elapsed)
	assert.Less(t, elapsed, pxWait/2, "answered after %v; want soon after the 100ms timeout", elapsed)
}

func TestProxyUpstreamFailureIs502(t *testing.T) {
	hijack := func(reset bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			c, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			if tc, ok := c.(*net.TCPConn); ok && reset {
				_ = tc.SetLinger(0) // close with RST instead of FIN
			}
			c.Close()
		}
	}
	tests := []struct {
		name    string
		backend func(t *testing.T) string
	}{
		{"connection refused", func(t *testing.T) string {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			addr := l.Addr().String()
			require.NoError(t, l.Close())
			return "http://" + addr
		}},
		{"connection closed without an answer", func(t *testing.T) string { return pxBackend(t, hijack(false)).URL }},
		{"connection reset without an answer", func(t *testing.T) string { return pxBackend(t, hijack(true)).URL }},
		{"malformed response", func(t *testing.T) string {
			return pxRawBackend(t, "HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := pxGateway(t, pxEndpoint(tt.backend(t)))
			req := pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/fail", nil)
			req.Header.Set("X-Request-Id", "fail-1")
			resp, body := pxDo(t, gw.Client(), req)
			p := pxDecodeProblem(t, resp, body, http.StatusBadGateway)
			assert.Equal(t, "fail-1", p.RequestID, "request_id: got %q; want fail-1", p.RequestID)
			assert.Equal(t, pxEndpointID, p.EndpointID, "endpoint_id: got %q; want %q", p.EndpointID, pxEndpointID)
			assert.Equal(t, "urn:orchestrator:problem:upstream-unreachable", p.Type)
		})
	}
}

// TestProxyTimeoutDoesNotCutSlowResponseBody pins that the endpoint timeout
// covers waiting for the response headers only: a body that keeps
// streaming past it is delivered whole.
func TestProxyTimeoutDoesNotCutSlowResponseBody(t *testing.T) {
	const timeout = 100 * time.Millisecond
	backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
		for i := range 3 {
			fmt.Fprintf(w, "part %d\n", i)
			w.(http.Flusher).Flush()
			// Not synchronisation: time passing is what this test is about.
			// Three pauses of the timeout keep the body streaming past it.
			select {
			case <-time.After(timeout):
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, "end\n")
	})
	ep := pxEndpoint(backend.URL)
	ep.Timeout = orchestrator.Duration(timeout)
	gw := pxGateway(t, ep)

	start := time.Now()
	resp, body := pxDo(t, gw.Client(), pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/stream", nil))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "part 0\npart 1\npart 2\nend\n", string(body))
	assert.GreaterOrEqual(t, time.Since(start), 3*timeout, "the body streamed for less than three timeouts; the test proves nothing")
}

// TestProxyTimeoutDoesNotCutFlowingUpload pins that an upload that takes
// longer than the timeout in total is not cut while it keeps flowing. The
// client sends a chunk only after the backend has read the previous one, so
// the body never stalls, and it goes on for twice the timeout.
func TestProxyTimeoutDoesNotCutFlowingUpload(t *testing.T) {
	const (
		timeout = time.Second // generous: a loaded 2-core machine with -race can stall a chunk's round for hundreds of ms
		chunk   = 1024
	)
	acks := make(chan struct{})
	backendGone, leave := pxOnce()
	backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
		defer leave()
		buf := make([]byte, chunk)
		var n int
		for {
			_, err := io.ReadFull(r.Body, buf)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			n += chunk
			select {
			case acks <- struct{}{}:
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprintf(w, "%d", n)
	})
	ep := pxEndpoint(backend.URL)
	ep.Timeout = orchestrator.Duration(timeout)
	gw := pxGateway(t, ep)

	pr, pw := io.Pipe()
	req := pxRequest(t, http.MethodPost, gw.URL+"/orchestrator/users/v1/upload", pr)
	sent := make(chan int, 1)
	writerDone := make(chan struct{})
	t.Cleanup(func() { pw.CloseWithError(errors.New("test ended")); <-writerDone })
	go func() {
		defer close(writerDone)
		start := time.Now()
		payload := bytes.Repeat([]byte("u"), chunk)
		n := 0
		for time.Since(start) < 2*timeout {
			if _, err := pw.Write(payload); err != nil {
				sent <- -1
				return
			}
			n += chunk
			select {
			case <-acks:
			case <-backendGone:
				// The upload was cut: abort it so that the client returns.
				pw.CloseWithError(errors.New("the backend stopped reading the upload"))
				sent <- -1
				return
			case <-req.Context().Done():
				pw.CloseWithError(req.Context().Err())
				sent <- -1
				return
			}
		}
		pw.Close()
		sent <- n
	}()

	resp, err := gw.Client().Do(req)
	require.NoError(t, err, "upload cut: got an error; want a 200 after the whole body")
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	n := <-sent
	require.Equal(t, http.StatusOK, resp.StatusCode, "status: got %d; want 200; body %s", resp.StatusCode, body)
	assert.Equal(t, strconv.Itoa(n), string(body), "backend got %s bytes; want %d", body, n)
}

// ---------------------------------------------------------------------------
// 11. URL, User-Agent and the inbound request.

// TestProxyKeepsQueryAndEscapedPath ports
// TestReverseProxyQueryParameterSmugglingRewritePreservesRawQuery (Go
// issue 54663): a query httputil would clean is forwarded byte for byte, as
// is an escaped path.
func TestProxyKeepsQueryAndEscapedPath(t *testing.T) {
	type seenURL struct{ requestURI, path, rawPath, rawQuery string }
	seen := make(chan seenURL, 1)
	backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- seenURL{r.RequestURI, r.URL.Path, r.URL.RawPath, r.URL.RawQuery}
	})
	gw := pxGateway(t, pxEndpoint(backend.URL))

	tests := []struct {
		name, target, wantURI string
	}{
		{"no query", "/search", "/api/search"},
		{"semicolon", "/search?a=1&a=2;b=3", "/api/search?a=1&a=2;b=3"},
		{"invalid escape among valid pairs", "/search?a=1&a=%zz&b=3", "/api/search?a=1&a=%zz&b=3"},
		{"only an invalid escape", "/search?a=%zz", "/api/search?a=%zz"},
		{"trailing question mark", "/search?", "/api/search?"},
		{"odd but legal bytes", "/search?q=%2F%2f+x&&=&k&%E2%82%AC=1&x=a,b:c@d$e!f'g(h)i*j", "/api/search?q=%2F%2f+x&&=&k&%E2%82%AC=1&x=a,b:c@d$e!f'g(h)i*j"},
		{"ten thousand parameters", "/search?" + strings.Repeat("a=1&", 10000) + "a=1", "/api/search?" + strings.Repeat("a=1&", 10000) + "a=1"},
		{"escaped slash kept", "/files/a%2Fb/c%20d", "/api/files/a%2Fb/c%20d"},
		{"escaped slash and query", "/files/a%2Fb?x=%2F", "/api/files/a%2Fb?x=%2F"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := pxDo(t, gw.Client(), pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1"+tt.target, nil))
			require.Equal(t, http.StatusOK, resp.StatusCode)
			got := <-seen
			assert.Equal(t, tt.wantURI, got.requestURI, "upstream request target: got %q; want %q", got.requestURI, tt.wantURI)
		})
	}

	t.Run("escaped slash reaches RawPath", func(t *testing.T) {
		resp, _ := pxDo(t, gw.Client(), pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/files/a%2Fb", nil))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		got := <-seen
		assert.Equal(t, "/api/files/a%2Fb", got.rawPath, "upstream RawPath: got %q; want %q", got.rawPath, "/api/files/a%2Fb")
		assert.Equal(t, "/api/files/a/b", got.path, "upstream Path: got %q; want %q", got.path, "/api/files/a/b")
	})
}

// TestProxyDoesNotAddUserAgent ports TestUserAgentHeader (Go issue 15524):
// the gateway's HTTP client does not announce itself for a client that
// sent no User-Agent, and forwards the one a client sent.
func TestProxyDoesNotAddUserAgent(t *testing.T) {
	seen := make(chan []string, 1)
	backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header["User-Agent"]
	})
	gw := pxGateway(t, pxEndpoint(backend.URL))

	for _, sent := range []string{"explicit UA/1.0 (odd; bytes)", ""} {
		t.Run(fmt.Sprintf("sent %q", sent), func(t *testing.T) {
			req := pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/ua", nil)
			// An empty value makes Go's client send no User-Agent at all.
			req.Header.Set("User-Agent", sent)
			resp, _ := pxDo(t, gw.Client(), req)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			got := <-seen
			var want []string
			if sent != "" {
				want = []string{sent}
			}
			assert.Equal(t, want, got, "upstream User-Agent: got %q; want %q", got, want)
		})
	}
}

// TestProxyDoesNotMutateInboundRequest ports TestServeHTTPDeepCopy and
// TestClonesRequestHeaders (Go issue 18327): serving a request leaves the
// caller's *http.Request as it was, whatever the outcome, so middleware
// wrapped around the gateway sees what the client sent.
func TestProxyDoesNotMutateInboundRequest(t *testing.T) {
	backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-From-Backend")
		w.Header().Set("X-From-Backend", "1")
		io.WriteString(w, "ok")
	})
	ep := pxEndpoint(backend.URL)
	o := pxNew(t, ep, orchestrator.WithTrustedProxies(netip.MustParsePrefix("192.0.2.0/24")))

	refused, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refusedURL := "http://" + refused.Addr().String()
	require.NoError(t, refused.Close())
	_, err = o.Register(context.Background(), orchestrator.Endpoint{Name: "down", URL: refusedURL})
	require.NoError(t, err)

	tests := []struct {
		name, target string
		wantStatus   int
	}{
		{"proxied", "/orchestrator/users/v1/x%2Fy/z?a=%zz;b&c=1", http.StatusOK},
		{"upstream refused", "/orchestrator/down/x?y=1", http.StatusBadGateway},
		{"no route", "/orchestrator/nobody/v1/x?y=1", http.StatusNotFound},
		{"dot segment", "/orchestrator/users/v1/a/%2e%2e/b", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "http://gateway.test"+tt.target, nil)
			req.Header["Connection"] = []string{"", "X-Conn-Named, keep-alive"}
			req.Header.Set("X-Conn-Named", "1")
			req.Header.Set("Keep-Alive", "timeout=5")
			req.Header.Set("Te", "trailers, gzip")
			req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
			req.Header.Set("X-Forwarded-For", "1.2.3.4")
			req.Header.Set("X-Forwarded-Host", "public.example")
			req.Header.Set("Forwarded", "for=1.2.3.4")
			req.Header.Set("X-Request-Id", "not sane")
			req.Header.Set("Authorization", "Bearer t")

			wantHeader := req.Header.Clone()
			wantURL := *req.URL
			wantHost, wantRemote, wantURI := req.Host, req.RemoteAddr, req.RequestURI

			rec := httptest.NewRecorder()
			o.ServeHTTP(rec, req)

			assert.Equal(t, tt.wantStatus, rec.Code, "status: got %d; want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			assert.Equal(t, wantHeader, req.Header, "inbound header after ServeHTTP: got %v; want %v", req.Header, wantHeader)
			assert.Equal(t, wantURL, *req.URL, "inbound URL after ServeHTTP: got %#v; want %#v", *req.URL, wantURL)
			assert.Equal(t, wantHost, req.Host, "inbound Host: got %q; want %q", req.Host, wantHost)
			assert.Equal(t, wantRemote, req.RemoteAddr, "inbound RemoteAddr: got %q; want %q", req.RemoteAddr, wantRemote)
			assert.Equal(t, wantURI, req.RequestURI, "inbound RequestURI: got %q; want %q", req.RequestURI, wantURI)
			if tt.wantStatus == http.StatusOK {
				assert.Empty(t, rec.Header().Values("X-From-Backend"), "response X-From-Backend named in Connection: got %q; want none", rec.Header().Values("X-From-Backend"))
			}
		})
	}
}

func TestProxyNeverForwardsTheAdminToken(t *testing.T) {
	const token = "s3cret-admin-token"
	seen := make(chan http.Header, 2)
	backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
	})
	gw := pxGateway(t, pxEndpoint(backend.URL), orchestrator.WithAdminToken(token))

	t.Run("the admin token is removed", func(t *testing.T) {
		req := pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/x", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, _ := pxDo(t, gw.Client(), req)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		got := (<-seen)["Authorization"]
		assert.Empty(t, got, "upstream Authorization: got %q; want none", got)
	})
	t.Run("any other Authorization passes untouched", func(t *testing.T) {
		req := pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/x", nil)
		req.Header.Set("Authorization", "Bearer "+token+"-not")
		resp, _ := pxDo(t, gw.Client(), req)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		got := (<-seen)["Authorization"]
		assert.Equal(t, []string{"Bearer " + token + "-not"}, got, "upstream Authorization: got %q", got)
	})
}
