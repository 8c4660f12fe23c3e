package orchestrator_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

// rtBackend is a loopback upstream that answers "<name> <method> <request-uri>"
// so that a test sees exactly which backend got which path and query.
type rtBackend struct {
	*httptest.Server
	name string
	hits atomic.Int64
}

func rtNewBackend(t *testing.T, name string) *rtBackend {
	t.Helper()
	b := &rtBackend{name: name}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		w.Header().Set("X-Backend", name)
		w.Header().Set("X-Backend-Raw-Path", r.URL.RawPath)
		w.Header().Set("X-Backend-Host", r.Host)
		fmt.Fprintf(w, "%s %s %s", name, r.Method, r.RequestURI)
	}))
	t.Cleanup(b.Close)
	return b
}

// rtQuietLogger discards the gateway's logs so that test output stays readable.
func rtQuietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// rtNew builds an Orchestrator that the test closes when it ends.
func rtNew(t *testing.T, opts ...orchestrator.Option) *orchestrator.Orchestrator {
	t.Helper()
	o, err := orchestrator.New(append([]orchestrator.Option{orchestrator.WithLogger(rtQuietLogger())}, opts...)...)
	require.NoError(t, err, "New() = error %v; want nil", err)
	t.Cleanup(func() { o.Close() })
	return o
}

// rtServe sends one in-process request through h.
func rtServe(h http.Handler, method, target string, hdr http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// rtCheckProblem checks that rec is a complete problem document with the
// status and endpoint id (empty: none) and returns it.
func rtCheckProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, endpointID string) testutil.Problem {
	t.Helper()
	require.Equal(t, status, rec.Code, "status = %d; want %d (body %q)", rec.Code, status, rec.Body.String())
	ct := rec.Header().Get("Content-Type")
	assert.Equal(t, "application/problem+json", ct, "Content-Type = %q; want application/problem+json", ct)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &raw), "body %q is not JSON", rec.Body.String())
	for _, k := range []string{"type", "title", "status", "detail", "instance", "request_id"} {
		assert.Contains(t, raw, k, "problem %v has no %q; want it", raw, k)
	}
	var p testutil.Problem
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
	assert.Equal(t, status, p.Status, "problem status = %d; want %d", p.Status, status)
	assert.NotEmpty(t, p.Type, "problem type = %q; want a URI", p.Type)
	assert.NotEmpty(t, p.Title, "problem title = %q; want text", p.Title)
	assert.NotEmpty(t, p.Detail, "problem detail = %q; want text", p.Detail)
	assert.NotEmpty(t, p.Instance, "problem instance = %q; want the path", p.Instance)
	assert.NotEmpty(t, p.RequestID, "problem request_id = %q; want an id", p.RequestID)
	assert.Equal(t, rec.Header().Get("X-Request-Id"), p.RequestID, "request_id = %q; want the X-Request-Id header %q", p.RequestID, rec.Header().Get("X-Request-Id"))
	assert.Equal(t, endpointID, p.EndpointID, "endpoint_id = %q; want %q", p.EndpointID, endpointID)
	return p
}

// rtCheckBackend checks that rec came from backend b with the request URI.
func rtCheckBackend(t *testing.T, rec *httptest.ResponseRecorder, b *rtBackend, requestURI string) {
	t.Helper()
	require.Equal(t, http.StatusOK, rec.Code, "status = %d; want 200 (body %q)", rec.Code, rec.Body.String())
	want := b.name + " GET " + requestURI
	assert.Equal(t, want, rec.Body.String(), "backend got %q; want %q", rec.Body.String(), want)
}

func TestRoutingVersionedBeatsUnversioned(t *testing.T) {
	versioned := rtNewBackend(t, "versioned")
	plain := rtNewBackend(t, "plain")
	only := rtNewBackend(t, "only")
	o := rtNew(t, orchestrator.WithEndpoints(
		orchestrator.Endpoint{Name: "svc", Version: "v1", URL: versioned.URL + "/api"},
		orchestrator.Endpoint{Name: "svc", URL: plain.URL + "/base"},
		orchestrator.Endpoint{Name: "only", Version: "v1", URL: only.URL},
	))

	tests := []struct {
		path    string
		backend *rtBackend
		uri     string
	}{
		{"/orchestrator/svc/v1/users", versioned, "/api/users"},
		{"/orchestrator/svc/v1/users/42/", versioned, "/api/users/42/"},
		{"/orchestrator/svc/v1", versioned, "/api"},
		{"/orchestrator/svc/v1/", versioned, "/api/"},
		{"/orchestrator/svc/v2/users", plain, "/base/v2/users"},
		{"/orchestrator/svc/V1/users", plain, "/base/V1/users"},
		{"/orchestrator/svc/users", plain, "/base/users"},
		{"/orchestrator/svc", plain, "/base"},
		{"/orchestrator/svc/", plain, "/base/"},
		{"/orchestrator/only/v1/x", only, "/x"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			rtCheckBackend(t, rtServe(o, http.MethodGet, tt.path, nil), tt.backend, tt.uri)
		})
	}

	// A name served only with versions does not take other versions.
	for _, p := range []string{"/orchestrator/only/v2/x", "/orchestrator/only", "/orchestrator/only/"} {
		t.Run(p, func(t *testing.T) {
			rtCheckProblem(t, rtServe(o, http.MethodGet, p, nil), http.StatusNotFound, "")
		})
	}
}

func TestRoutingJoinsBasePathWithOneSlash(t *testing.T) {
	b := rtNewBackend(t, "b")
	bases := []struct {
		name, base string
	}{
		{"empty", ""},
		{"root", "/"},
		{"plain", "/api"},
		{"trailing", "/api/"},
		{"deep", "/a/b/c"},
	}
	rests := []struct {
		rest string
		want map[string]string // base name -> request URI at the backend
	}{
		{"", map[string]string{"empty": "/", "root": "/", "plain": "/api", "trailing": "/api/", "deep": "/a/b/c"}},
		{"/", map[string]string{"empty": "/", "root": "/", "plain": "/api/", "trailing": "/api/", "deep": "/a/b/c/"}},
		{"/x", map[string]string{"empty": "/x", "root": "/x", "plain": "/api/x", "trailing": "/api/x", "deep": "/a/b/c/x"}},
		{"/x/y/", map[string]string{"empty": "/x/y/", "root": "/x/y/", "plain": "/api/x/y/", "trailing": "/api/x/y/", "deep": "/a/b/c/x/y/"}},
	}
	var eps []orchestrator.Endpoint
	for _, base := range bases {
		eps = append(eps, orchestrator.Endpoint{Name: base.name, Version: "v1", URL: b.URL + base.base})
	}
	o := rtNew(t, orchestrator.WithEndpoints(eps...))
	for _, base := range bases {
		for _, r := range rests {
			path := "/orchestrator/" + base.name + "/v1" + r.rest
			t.Run(path, func(t *testing.T) {
				rtCheckBackend(t, rtServe(o, http.MethodGet, path, nil), b, r.want[base.name])
			})
		}
	}
}

func TestRoutingPreservesEscapesAndQuery(t *testing.T) {
	b := rtNewBackend(t, "b")
	o := rtNew(t, orchestrator.WithEndpoints(
		orchestrator.Endpoint{Name: "svc", Version: "v1", URL: b.URL + "/api"},
		orchestrator.Endpoint{Name: "enc", URL: b.URL + "/x%2Fy"},
	))
	tests := []struct {
		target  string
		uri     string
		rawPath string
	}{
		{"/orchestrator/svc/v1/a%2Fb/c", "/api/a%2Fb/c", "/api/a%2Fb/c"},
		{"/orchestrator/svc/v1/a%2fb", "/api/a%2fb", "/api/a%2fb"},
		{"/orchestrator/svc/v1/files/dir%2Fname.txt?download=1", "/api/files/dir%2Fname.txt?download=1", "/api/files/dir%2Fname.txt"},
		{"/orchestrator/svc/v1/a%20b", "/api/a%20b", ""},
		{"/orchestrator/svc/v1/%41%42", "/api/%41%42", "/api/%41%42"},
		{"/orchestrator/svc/v1/caf%C3%A9", "/api/caf%C3%A9", ""},
		{"/orchestrator/svc/v1/a+b;p=1,c", "/api/a+b;p=1,c", ""},
		{"/orchestrator/svc/v1/x?b=2&a=1&a=%20&c=%zz&;semi&e=&flag&q=a+b%2Bc", "/api/x?b=2&a=1&a=%20&c=%zz&;semi&e=&flag&q=a+b%2Bc", ""},
		{"/orchestrator/svc/v1/x?", "/api/x?", ""},
		{"/orchestrator/svc/v1?only=query", "/api?only=query", ""},
		{"/orchestrator/svc/v1/?q=%2F..%2F", "/api/?q=%2F..%2F", ""},
		{"/orchestrator/enc/rest", "/x%2Fy/rest", "/x%2Fy/rest"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			rec := rtServe(o, http.MethodGet, tt.target, nil)
			rtCheckBackend(t, rec, b, tt.uri)
			if tt.rawPath != "" {
				got := rec.Header().Get("X-Backend-Raw-Path")
				assert.Equal(t, tt.rawPath, got, "backend RawPath = %q; want %q", got, tt.rawPath)
			}
		})
	}
}

// Characters that need no escaping in a path (RFC 3986 sub-delims) reach the
// upstream as the client wrote them, not re-encoded.
func TestRoutingPathIsByteForByte(t *testing.T) {
	b := rtNewBackend(t, "b")
	o := rtNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", Version: "v1", URL: b.URL + "/api"}))
	for _, rest := range []string{"/it's", "/f(x)", "/a*b", "/wow!", "/$&+,;=:@", "/a~b_c-d.e"} {
		t.Run(rest, func(t *testing.T) {
			rtCheckBackend(t, rtServe(o, http.MethodGet, "/orchestrator/svc/v1"+rest, nil), b, "/api"+rest)
		})
	}
}

func TestRoutingRefusesDotSegments(t *testing.T) {
	b := rtNewBackend(t, "b")
	o := rtNew(t, orchestrator.WithEndpoints(
		orchestrator.Endpoint{Name: "svc", Version: "v1", URL: b.URL + "/api/tenant1"},
		orchestrator.Endpoint{Name: "plain", URL: b.URL + "/base"},
	))
	paths := []string{
		"/orchestrator/svc/v1/.",
		"/orchestrator/svc/v1/..",
		"/orchestrator/svc/v1/./x",
		"/orchestrator/svc/v1/../tenant2/secret",
		"/orchestrator/svc/v1/a/../../tenant2",
		"/orchestrator/svc/v1/x/..",
		"/orchestrator/svc/v1/%2e",
		"/orchestrator/svc/v1/%2e%2e",
		"/orchestrator/svc/v1/%2E%2E/x",
		"/orchestrator/svc/v1/%2E%2e/x",
		"/orchestrator/svc/v1/.%2e/x",
		"/orchestrator/svc/v1/%2e./x",
		"/orchestrator/svc/v1/..;jsessionid=1/x",
		"/orchestrator/svc/v1/.;x/y",
		"/orchestrator/svc/v1/%2e%2e;/x",
		"/orchestrator/svc/v1/..%2Ftenant2",
		"/orchestrator/svc/v1/..%2ftenant2",
		"/orchestrator/svc/v1/a%2F..%2F..%2Ftenant2",
		"/orchestrator/svc/v1/..%5Ctenant2",
		"/orchestrator/svc/v1/a\\..\\..\\tenant2",
		"/orchestrator/svc/v1/..\\tenant2",
		"/orchestrator/svc/v1/../x?y=1",
		"/orchestrator/plain/../x",
		"/orchestrator/plain/v1/%2e%2e/%2e%2e/x",
		"/orchestrator/plain/..",
	}
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			rec := rtServe(o, http.MethodGet, p, nil)
			want := "svc_v1"
			if strings.HasPrefix(p, "/orchestrator/plain") {
				want = "plain"
			}
			rtCheckProblem(t, rec, http.StatusBadRequest, want)
		})
	}
	assert.Equal(t, int64(0), b.hits.Load(), "backend got %d requests; want 0: no dot segment may reach it", b.hits.Load())

	// Dots that are not dot segments are ordinary names.
	for _, rest := range []string{"/...", "/.well-known/x", "/file.txt", "/a..b", "/..a"} {
		rtCheckBackend(t, rtServe(o, http.MethodGet, "/orchestrator/svc/v1"+rest, nil), b, "/api/tenant1"+rest)
	}
}

func TestRoutingNotFound(t *testing.T) {
	b := rtNewBackend(t, "b")
	o := rtNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", Version: "v1", URL: b.URL}))
	for _, p := range []string{
		"/orchestrator",
		"/orchestrator/",
		"/orchestrator//svc/v1",
		"/orchestrator/nope",
		"/orchestrator/nope/v1/x",
		"/orchestrator/SVC/v1",
		"/orchestrator/sv%63/v1",
		"/orchestrator/svc",
		"/orchestrator/svc/v2",
		"/orchestratorX/svc/v1",
		"/orchestrator.svc/v1",
		"/other/svc/v1",
		"/",
	} {
		t.Run(p, func(t *testing.T) {
			rec := rtServe(o, http.MethodGet, p, nil)
			prob := rtCheckProblem(t, rec, http.StatusNotFound, "")
			u, _ := url.Parse(p)
			assert.Equal(t, u.EscapedPath(), prob.Instance, "instance = %q; want %q", prob.Instance, u.EscapedPath())
		})
	}
	assert.Equal(t, int64(0), b.hits.Load(), "backend got %d requests; want 0", b.hits.Load())
}

func TestRoutingMethodNotAllowed(t *testing.T) {
	b := rtNewBackend(t, "b")
	o := rtNew(t, orchestrator.WithEndpoints(
		orchestrator.Endpoint{Name: "svc", Version: "v1", URL: b.URL, Methods: []string{"post", "GET", "delete", "get"}},
	))
	for _, m := range []string{http.MethodPut, http.MethodPatch, http.MethodHead, http.MethodOptions, "PROPFIND"} {
		t.Run(m, func(t *testing.T) {
			rec := rtServe(o, m, "/orchestrator/svc/v1/x", nil)
			if m == http.MethodHead {
				// A HEAD answer has no body; check status and Allow only.
				require.Equal(t, http.StatusMethodNotAllowed, rec.Code, "status = %d; want 405", rec.Code)
			} else {
				rtCheckProblem(t, rec, http.StatusMethodNotAllowed, "svc_v1")
			}
			allow := rec.Header().Get("Allow")
			assert.Equal(t, "DELETE, GET, POST", allow, "Allow = %q; want \"DELETE, GET, POST\"", allow)
		})
	}
	assert.Equal(t, int64(0), b.hits.Load(), "backend got %d requests; want 0", b.hits.Load())
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		rec := rtServe(o, m, "/orchestrator/svc/v1/x", nil)
		assert.Equal(t, http.StatusOK, rec.Code, "%s status = %d; want 200", m, rec.Code)
		assert.Equal(t, "b "+m+" /x", rec.Body.String(), "%s body = %q; want %q", m, rec.Body.String(), "b "+m+" /x")
	}
}

func TestRoutingDisabledEndpoint(t *testing.T) {
	b := rtNewBackend(t, "b")
	o := rtNew(t, orchestrator.WithEndpoints(
		orchestrator.Endpoint{Name: "off", Version: "v1", URL: b.URL, Disabled: true},
		orchestrator.Endpoint{Name: "on", Version: "v1", URL: b.URL},
	))
	rtCheckProblem(t, rtServe(o, http.MethodGet, "/orchestrator/off/v1/x", nil), http.StatusServiceUnavailable, "off_v1")
	rtCheckProblem(t, rtServe(o, http.MethodPost, "/orchestrator/off/v1", nil), http.StatusServiceUnavailable, "off_v1")
	assert.Equal(t, int64(0), b.hits.Load(), "backend got %d requests; want 0", b.hits.Load())
	rtCheckBackend(t, rtServe(o, http.MethodGet, "/orchestrator/on/v1/x", nil), b, "/x")
}

func TestRoutingProblemRequestID(t *testing.T) {
	o := rtNew(t)
	rec := rtServe(o, http.MethodGet, "/orchestrator/nope", http.Header{"X-Request-Id": {"req-123_abc"}})
	p := rtCheckProblem(t, rec, http.StatusNotFound, "")
	assert.Equal(t, "req-123_abc", p.RequestID, "request_id = %q; want the client's req-123_abc", p.RequestID)
	assert.Equal(t, "/orchestrator/nope", p.Instance, "instance = %q; want /orchestrator/nope", p.Instance)

	// An id that could forge log lines is replaced.
	rec = rtServe(o, http.MethodGet, "/orchestrator/nope", http.Header{"X-Request-Id": {"bad id\"x"}})
	p = rtCheckProblem(t, rec, http.StatusNotFound, "")
	assert.NotEqual(t, "bad id\"x", p.RequestID, "request_id = %q; want a generated id", p.RequestID)

	// Two requests without an id get different ones.
	p1 := rtCheckProblem(t, rtServe(o, http.MethodGet, "/orchestrator/nope", nil), http.StatusNotFound, "")
	p2 := rtCheckProblem(t, rtServe(o, http.MethodGet, "/orchestrator/nope", nil), http.StatusNotFound, "")
	assert.NotEqual(t, p1.RequestID, p2.RequestID, "request ids %q and %q; want them different", p1.RequestID, p2.RequestID)
}

// rtRawRequest writes a raw HTTP/1.1 request to addr and reads the response.
func rtRawRequest(t *testing.T, addr, raw string) (*http.Response, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = io.WriteString(conn, raw)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "reading the response to %q", raw)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

func TestRoutingIgnoresAbsoluteFormHost(t *testing.T) {
	a := rtNewBackend(t, "a")
	other := rtNewBackend(t, "other")
	o := rtNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", Version: "v1", URL: a.URL + "/api"}))
	gw := httptest.NewServer(o)
	t.Cleanup(gw.Close)
	gwAddr := gw.Listener.Addr().String()
	otherHost := other.Listener.Addr().String()
	aHost := a.Listener.Addr().String()

	resp, body := rtRawRequest(t, gwAddr, "GET http://"+otherHost+"/orchestrator/svc/v1/x?q=1 HTTP/1.1\r\nHost: "+otherHost+"\r\nConnection: close\r\n\r\n")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "status = %d; want 200", resp.StatusCode)
	assert.Equal(t, "a GET /api/x?q=1", body, "body = %q; want the endpoint's backend a to get /api/x?q=1", body)
	assert.Equal(t, aHost, resp.Header.Get("X-Backend-Host"), "upstream Host = %q; want %q", resp.Header.Get("X-Backend-Host"), aHost)
	assert.Equal(t, int64(0), other.hits.Load(), "the absolute-form host got %d requests; want 0", other.hits.Load())

	// A host that looks like a route does not make a path routable.
	resp, body = rtRawRequest(t, gwAddr, "GET http://svc/v1/x HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "status = %d; want 404 (body %q)", resp.StatusCode, body)
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"), "Content-Type = %q; want application/problem+json", resp.Header.Get("Content-Type"))
}

func TestRoutingCustomPrefix(t *testing.T) {
	b := rtNewBackend(t, "b")
	for _, prefix := range []string{"/api/gw", "/api/gw/"} {
		t.Run(prefix, func(t *testing.T) {
			o := rtNew(t, orchestrator.WithPrefix(prefix), orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", Version: "v1", URL: b.URL + "/base"}))
			assert.Equal(t, "/api/gw", o.Prefix(), "Prefix() = %q; want /api/gw", o.Prefix())
			rtCheckBackend(t, rtServe(o, http.MethodGet, "/api/gw/svc/v1/x?y=1", nil), b, "/base/x?y=1")
			rtCheckBackend(t, rtServe(o, http.MethodGet, "/api/gw/svc/v1", nil), b, "/base")
			for _, p := range []string{"/orchestrator/svc/v1/x", "/api/gwX/svc/v1/x", "/api/svc/v1", "/api/gw", "/api/gw/"} {
				rtCheckProblem(t, rtServe(o, http.MethodGet, p, nil), http.StatusNotFound, "")
			}
		})
	}
}

func TestRoutingDefaultPrefixIsASegmentBoundary(t *testing.T) {
	b := rtNewBackend(t, "b")
	o := rtNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: b.URL}))
	assert.Equal(t, "/orchestrator", o.Prefix(), "Prefix() = %q; want /orchestrator", o.Prefix())
	rtCheckProblem(t, rtServe(o, http.MethodGet, "/orchestratorX/svc/v1", nil), http.StatusNotFound, "")
	rtCheckProblem(t, rtServe(o, http.MethodGet, "/orchestratorsvc", nil), http.StatusNotFound, "")
	rtCheckBackend(t, rtServe(o, http.MethodGet, "/orchestrator/svc/v1", nil), b, "/v1")
	assert.Equal(t, int64(1), b.hits.Load(), "backend hits = %d; want 1", b.hits.Load())
}

func TestMiddleware(t *testing.T) {
	b := rtNewBackend(t, "b")
	o := rtNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", Version: "v1", URL: b.URL}))

	type seen struct {
		method, uri, header, body string
	}
	var got []seen
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = append(got, seen{r.Method, r.RequestURI, r.Header.Get("X-Custom"), string(body)})
		w.Header().Set("X-App", "yes")
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "app")
	})
	h := o.Middleware(next)

	outside := []string{"/", "/app/things?x=1&y=%2F", "/orchestratorX/svc/v1/x", "/orchestrator.json", "/api/orchestrator/svc/v1"}
	for _, target := range outside {
		t.Run(target, func(t *testing.T) {
			got = nil
			req := httptest.NewRequest(http.MethodPost, target, strings.NewReader("payload"))
			req.Header.Set("X-Custom", "kept")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			assert.Equal(t, http.StatusTeapot, rec.Code, "status = %d; want next's 418", rec.Code)
			assert.Equal(t, "yes", rec.Header().Get("X-App"), "X-App = %q; want next's header", rec.Header().Get("X-App"))
			require.Len(t, got, 1, "next called %d times; want 1", len(got))
			want := seen{http.MethodPost, target, "kept", "payload"}
			assert.Equal(t, want, got[0], "next saw %+v; want %+v", got[0], want)
		})
	}

	got = nil
	rtCheckBackend(t, rtServe(h, http.MethodGet, "/orchestrator/svc/v1/x?q=1", nil), b, "/x?q=1")
	rtCheckProblem(t, rtServe(h, http.MethodGet, "/orchestrator/unknown", nil), http.StatusNotFound, "")
	rtCheckProblem(t, rtServe(h, http.MethodGet, "/orchestrator/svc/v1/../x", nil), http.StatusBadRequest, "svc_v1")
	assert.Empty(t, got, "next saw %+v; want no call for paths under the prefix", got)
}

func TestMountInServeMux(t *testing.T) {
	b := rtNewBackend(t, "b")
	o := rtNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", Version: "v1", URL: b.URL + "/api"}))
	mux := http.NewServeMux()
	mux.Handle("/orchestrator/", o)
	mux.HandleFunc("/app", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app") })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	client := srv.Client()

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := client.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}
	code, body := get("/orchestrator/svc/v1/users/7?x=1")
	assert.Equal(t, http.StatusOK, code, "status = %d; want 200", code)
	assert.Equal(t, "b GET /api/users/7?x=1", body, "body = %q; want backend to get /api/users/7?x=1", body)

	code, body = get("/orchestrator/svc/v1/a%2Fb")
	assert.Equal(t, http.StatusOK, code, "status = %d; want 200", code)
	assert.Equal(t, "b GET /api/a%2Fb", body, "body = %q; want backend to get /api/a%2Fb", body)

	code, body = get("/app")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "app", body, "body = %q; want the app's", body)

	code, _ = get("/orchestrator/none/v1")
	assert.Equal(t, http.StatusNotFound, code, "status = %d; want 404", code)
}

func TestResolve(t *testing.T) {
	a := rtNewBackend(t, "a")
	o := rtNew(t, orchestrator.WithEndpoints(
		orchestrator.Endpoint{Name: "svc", Version: "v1", URL: a.URL + "/api"},
		orchestrator.Endpoint{Name: "svc", URL: a.URL + "/base/"},
		orchestrator.Endpoint{Name: "off", URL: a.URL, Disabled: true},
	))
	tests := []struct {
		in       string
		matched  bool
		id       string
		upstream string
		reason   string
	}{
		{in: "/svc/v1/users?x=1", matched: true, id: "svc_v1", upstream: a.URL + "/api/users?x=1"},
		{in: "svc/v1/users", matched: true, id: "svc_v1", upstream: a.URL + "/api/users"},
		{in: "/svc/v1", matched: true, id: "svc_v1", upstream: a.URL + "/api"},
		{in: "/svc/v1/", matched: true, id: "svc_v1", upstream: a.URL + "/api/"},
		{in: "/svc/v1/a%2Fb?q=%zz", matched: true, id: "svc_v1", upstream: a.URL + "/api/a%2Fb?q=%zz"},
		{in: "/svc/v1/x?", matched: true, id: "svc_v1", upstream: a.URL + "/api/x?"},
		{in: "/svc/v2/x", matched: true, id: "svc", upstream: a.URL + "/base/v2/x"},
		{in: "/svc", matched: true, id: "svc", upstream: a.URL + "/base/"},
		{in: "/off/x", matched: true, id: "off", upstream: a.URL + "/x", reason: "disabled"},
		{in: "/svc/v1/../x", matched: false, id: "svc_v1", reason: "dot segment"},
		{in: "/svc/v1/%2e%2E", matched: false, id: "svc_v1", reason: "dot segment"},
		{in: "/nope/v1", matched: false, reason: "no endpoint"},
		{in: "/", matched: false, reason: "no endpoint"},
		{in: "", matched: false, reason: "no endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			res := o.Resolve(tt.in)
			assert.Equal(t, tt.matched, res.Matched, "Resolve(%q).Matched = %v; want %v (%+v)", tt.in, res.Matched, tt.matched, res)
			assert.Equal(t, tt.id, res.EndpointID, "Resolve(%q).EndpointID = %q; want %q", tt.in, res.EndpointID, tt.id)
			assert.Equal(t, tt.upstream, res.UpstreamURL, "Resolve(%q).UpstreamURL = %q; want %q", tt.in, res.UpstreamURL, tt.upstream)
			if tt.reason == "" {
				assert.Empty(t, res.Reason, "Resolve(%q).Reason = %q; want none", tt.in, res.Reason)
			} else {
				assert.Contains(t, res.Reason, tt.reason, "Resolve(%q).Reason = %q; want it to mention %q", tt.in, res.Reason, tt.reason)
			}
		})
	}

	// Resolve agrees with what a request actually does.
	res := o.Resolve("/svc/v1/users?x=1")
	rec := rtServe(o, http.MethodGet, "/orchestrator/svc/v1/users?x=1", nil)
	u, err := url.Parse(res.UpstreamURL)
	require.NoError(t, err)
	assert.Equal(t, "a GET "+u.RequestURI(), rec.Body.String(), "request reached %q; Resolve said %q", rec.Body.String(), res.UpstreamURL)
}

func TestRoutes(t *testing.T) {
	a := rtNewBackend(t, "a")
	o := rtNew(t, orchestrator.WithPrefix("/gw"), orchestrator.WithEndpoints(
		orchestrator.Endpoint{Name: "zeta", URL: a.URL + "/z", Methods: []string{"get"}},
		orchestrator.Endpoint{Name: "alpha", Version: "v2", URL: a.URL + "/a2", Disabled: true},
		orchestrator.Endpoint{Name: "alpha", Version: "v1", URL: a.URL + "/a1", ID: "alpha-one"},
		orchestrator.Endpoint{Name: "alpha", URL: a.URL},
	))
	routes := o.Routes()
	require.Len(t, routes, 4, "Routes() = %d routes; want 4", len(routes))
	want := []struct {
		id, path, upstream string
		disabled           bool
		methods            []string
	}{
		{"alpha", "/gw/alpha", a.URL, false, nil},
		{"alpha-one", "/gw/alpha/v1", a.URL + "/a1", false, nil},
		{"alpha_v2", "/gw/alpha/v2", a.URL + "/a2", true, nil},
		{"zeta", "/gw/zeta", a.URL + "/z", false, []string{"GET"}},
	}
	for i, w := range want {
		r := routes[i]
		assert.Equal(t, w.id, r.EndpointID, "routes[%d].EndpointID = %q; want %q", i, r.EndpointID, w.id)
		assert.Equal(t, w.path, r.Path, "routes[%d].Path = %q; want %q", i, r.Path, w.path)
		assert.Equal(t, w.upstream, r.Upstream, "routes[%d].Upstream = %q; want %q", i, r.Upstream, w.upstream)
		assert.Equal(t, w.disabled, r.Disabled, "routes[%d].Disabled = %v; want %v", i, r.Disabled, w.disabled)
		assert.Equal(t, len(w.methods), len(r.Methods), "routes[%d].Methods = %v; want %v", i, r.Methods, w.methods)
		if len(w.methods) > 0 {
			assert.Equal(t, w.methods, r.Methods, "routes[%d].Methods = %v; want %v", i, r.Methods, w.methods)
		}
	}
	assert.Equal(t, orchestrator.StatusDisabled, routes[2].Status, "disabled route status = %q; want disabled", routes[2].Status)
}

// TestRoutingRefusesConnectAndTraceUnlessListed: an endpoint with no
// methods list serves every method but CONNECT (a tunnel) and TRACE (an echo
// of the request, credentials included); one that lists them gets them.
func TestRoutingRefusesConnectAndTraceUnlessListed(t *testing.T) {
	b := rtNewBackend(t, "b")
	o := rtNew(t, orchestrator.WithEndpoints(
		orchestrator.Endpoint{Name: "svc", Version: "v1", URL: b.URL},
		orchestrator.Endpoint{Name: "tunnel", Version: "v1", URL: b.URL, Methods: []string{"CONNECT", "TRACE"}},
	))
	for _, m := range []string{http.MethodConnect, http.MethodTrace} {
		t.Run(m, func(t *testing.T) {
			rec := rtServe(o, m, "/orchestrator/svc/v1/x", nil)
			rtCheckProblem(t, rec, http.StatusMethodNotAllowed, "svc_v1")
			allow := rec.Header().Get("Allow")
			assert.Equal(t, "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT", allow)
			assert.Equal(t, int64(0), b.hits.Load(), "the backend must not see a %s", m)

			rec = rtServe(o, m, "/orchestrator/tunnel/v1/x", nil)
			assert.Equal(t, http.StatusOK, rec.Code, "a listed %s is forwarded", m)
			assert.Equal(t, "b "+m+" /x", rec.Body.String())
			b.hits.Store(0)
		})
	}
	for _, m := range []string{http.MethodGet, http.MethodPost, "PROPFIND"} {
		rec := rtServe(o, m, "/orchestrator/svc/v1/x", nil)
		assert.Equal(t, http.StatusOK, rec.Code, "%s status = %d; want 200", m, rec.Code)
	}
}
