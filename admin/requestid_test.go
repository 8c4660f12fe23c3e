package admin_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator/admin"
)

// uuidV4 is what a generated X-Request-ID looks like.
var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// Issue 13 point 5: admin responses carry X-Request-ID as the gateway's
// do, and admin problem documents carry it as request_id.
func TestAdminRequestID(t *testing.T) {
	tests := []struct {
		name   string
		method string
		target string
		body   string
		opts   []reqOption
		status int
		kind   string // "" for a success
	}{
		{"a success", http.MethodGet, "/health/status", "", []reqOption{bearer(testToken)}, http.StatusOK, ""},
		{"a 404 problem of an unknown route", http.MethodGet, "/nope", "", []reqOption{bearer(testToken)}, http.StatusNotFound, "no-admin-route"},
		{"a 404 problem of a route", http.MethodGet, "/registry/endpoints/ghost", "", []reqOption{bearer(testToken)}, http.StatusNotFound, "not-found"},
		{"a 405 problem", http.MethodDelete, "/health/status", "", []reqOption{bearer(testToken)}, http.StatusMethodNotAllowed, "method-not-allowed"},
		{"a 401 problem", http.MethodGet, "/health/status", "", nil, http.StatusUnauthorized, "unauthorized"},
		{"a 403 problem", http.MethodGet, "/health/status", "", []reqOption{bearer(testToken), header("Origin", "https://evil.example")}, http.StatusForbidden, "origin-not-allowed"},
		{"a 413 problem", http.MethodPost, "/registry/endpoints", `{"name":"x","url":"http://127.0.0.1:1","fallback":{"body":"` + strings.Repeat("a", 1<<20) + `"}}`,
			[]reqOption{bearer(testToken)}, http.StatusRequestEntityTooLarge, "body-too-large"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" echoes the client's id", func(t *testing.T) {
			f := newFixture(t, withToken)
			const id = "client-id_01:AB+/=@x.y"
			rec := call(f.h, tt.method, tt.target, tt.body, append(tt.opts, header("X-Request-ID", id))...)
			assert.Equal(t, id, rec.Header().Get("X-Request-Id"), "X-Request-ID: got %q; want the client's", rec.Header().Get("X-Request-Id"))
			if tt.kind == "" {
				require.Equal(t, tt.status, rec.Code, "%s", rec.Body)
				return
			}
			p := requireProblem(t, rec, tt.status, tt.kind)
			assert.Equal(t, id, p.RequestID, "request_id: got %q; want %q", p.RequestID, id)
		})
		t.Run(tt.name+" gets a generated id", func(t *testing.T) {
			f := newFixture(t, withToken)
			rec := call(f.h, tt.method, tt.target, tt.body, tt.opts...)
			got := rec.Header().Get("X-Request-Id")
			assert.Regexp(t, uuidV4, got, "X-Request-ID: got %q; want a new UUID", got)
			if tt.kind == "" {
				require.Equal(t, tt.status, rec.Code, "%s", rec.Body)
				return
			}
			p := requireProblem(t, rec, tt.status, tt.kind)
			assert.Equal(t, got, p.RequestID, "request_id: got %q; want the header's %q", p.RequestID, got)
		})
	}

	t.Run("an id the gateway would not keep is replaced", func(t *testing.T) {
		f := newFixture(t, withToken)
		for _, bad := range []string{"has space", `quo"te`, strings.Repeat("a", 129), "new\x01line"} {
			rec := call(f.h, http.MethodGet, "/nope", "", bearer(testToken), header("X-Request-ID", bad))
			got := rec.Header().Get("X-Request-Id")
			assert.Regexp(t, uuidV4, got, "X-Request-ID %q: got %q; want a new UUID", bad, got)
			p := requireProblem(t, rec, http.StatusNotFound, "no-admin-route")
			assert.Equal(t, got, p.RequestID)
		}
	})

	t.Run("two ids in the request are replaced, as the gateway does", func(t *testing.T) {
		f := newFixture(t, withToken)
		rec := call(f.h, http.MethodGet, "/health/status", "", bearer(testToken), header("X-Request-ID", "a"), header("X-Request-ID", "b"))
		assert.Regexp(t, uuidV4, rec.Header().Get("X-Request-Id"))
	})

	t.Run("a CORS preflight carries one too", func(t *testing.T) {
		f := newFixture(t, func(o *admin.Options) { o.AllowedOrigins = []string{"https://ops.example.com"} })
		rec := call(f.h, http.MethodOptions, "/registry/endpoints", "", header("Origin", "https://ops.example.com"),
			header("Access-Control-Request-Method", "POST"), header("X-Request-ID", "pre-1"))
		require.Equal(t, http.StatusNoContent, rec.Code, "%s", rec.Body)
		assert.Equal(t, "pre-1", rec.Header().Get("X-Request-Id"))
		assert.Contains(t, rec.Header().Get("Access-Control-Allow-Headers"), "X-Request-ID", "a browser may send the id")
	})

	t.Run("an allowed origin may read it", func(t *testing.T) {
		f := newFixture(t, func(o *admin.Options) { o.AllowedOrigins = []string{"https://ops.example.com"} })
		rec := call(f.h, http.MethodGet, "/health/status", "", header("Origin", "https://ops.example.com"))
		require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
		assert.Contains(t, rec.Header().Get("Access-Control-Expose-Headers"), "X-Request-ID")
	})

	t.Run("an id a handler in front already answers with is kept, not generated twice", func(t *testing.T) {
		f := newFixture(t, withToken)
		front := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Request-ID", "front-7")
			f.h.ServeHTTP(w, r)
		})
		rec := call(front, http.MethodGet, "/nope", "", bearer(testToken), header("X-Request-ID", "client-9"))
		assert.Equal(t, []string{"front-7"}, rec.Header().Values("X-Request-Id"), "one id, the front handler's")
		p := requireProblem(t, rec, http.StatusNotFound, "no-admin-route")
		assert.Equal(t, "front-7", p.RequestID)
	})

	t.Run("the request log line carries it", func(t *testing.T) {
		f := newFixture(t, withToken)
		rec := call(f.h, http.MethodGet, "/health/status", "", header("X-Request-ID", "log-42"))
		require.Equal(t, http.StatusUnauthorized, rec.Code)
		rec = call(f.h, http.MethodGet, "/health/status", "", bearer(testToken))
		require.Equal(t, http.StatusOK, rec.Code)
		generated := rec.Header().Get("X-Request-Id")

		var ids []any
		for _, line := range f.logs.JSONLinesOf(t, "orchestrator.admin") {
			if line["msg"] == "admin request" {
				ids = append(ids, line["request_id"])
			}
		}
		assert.Equal(t, []any{"log-42", generated}, ids, "request_id of each admin request line")
	})
}

// TestAdminRequestIDOverHTTP checks the header on the wire, through a real
// server, where a ResponseRecorder's leniency cannot hide a header set
// after the status was written.
func TestAdminRequestIDOverHTTP(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.h)
	t.Cleanup(srv.Close)
	for _, path := range []string{"/health", "/nope"} {
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		require.NoError(t, err)
		req.Host = "localhost"
		req.Header.Set("X-Request-ID", "wire-1")
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, "wire-1", resp.Header.Get("X-Request-Id"), "GET %s", path)
	}
}
