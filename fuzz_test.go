package orchestrator_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/orchestrator-go/orchestrator"
)

// FuzzRouting sends arbitrary request targets through a gateway with
// versioned and unversioned endpoints: it must never panic, and anything
// it forwards must stay under the endpoint's base path.
func FuzzRouting(f *testing.F) {
	for _, seed := range []string{"/orchestrator/users/v1/42?x=1", "/orchestrator/users/v2/x", "/orchestrator/files/a%2Fb", "/orchestrator/users/v1/..%2f..", "/orchestrator/files/%2e%2e", "/orchestrator", "/orchestrator/", "/other", "/orchestrator/users/v1/a;b/..;/c", "/orchestrator/files/\\..\\x"} {
		f.Add(seed)
	}
	var (
		mu   sync.Mutex
		seen []string
	)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.EscapedPath())
		mu.Unlock()
	}))
	f.Cleanup(backend.Close)
	o, err := orchestrator.New(orchestrator.WithEndpoints(
		orchestrator.Endpoint{Name: "users", Version: "v1", URL: backend.URL + "/api/users"},
		orchestrator.Endpoint{Name: "files", URL: backend.URL + "/files/"},
	))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { o.Close() })
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || !strings.HasPrefix(target, "/") {
			return
		}
		res := o.Resolve(strings.TrimPrefix(u.EscapedPath(), "/orchestrator"))
		if res.Matched && res.UpstreamURL != "" {
			up, err := url.Parse(res.UpstreamURL)
			if err != nil {
				t.Fatalf("Resolve(%q) gave an unparsable upstream URL %q", target, res.UpstreamURL)
			}
			if p := up.EscapedPath(); !strings.HasPrefix(p, "/api/users") && !strings.HasPrefix(p, "/files/") {
				t.Fatalf("Resolve(%q) left the base path: %q", target, p)
			}
		}
		req := &http.Request{Method: http.MethodGet, URL: u, RequestURI: target, Host: "gw", Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, RemoteAddr: "127.0.0.1:1"}
		req = req.WithContext(t.Context())
		mu.Lock()
		seen = seen[:0]
		mu.Unlock()
		rec := httptest.NewRecorder()
		o.ServeHTTP(rec, req)
		mu.Lock()
		defer mu.Unlock()
		for _, p := range seen {
			if !strings.HasPrefix(p, "/api/users") && !strings.HasPrefix(p, "/files/") {
				t.Fatalf("%q reached the backend as %q, outside every base path", target, p)
			}
		}
	})
}
