package admin_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator/admin"
)

// operatorAuth is an Options.Authorize hook standing in for a host
// service's own authentication: X-Operator "alice" is allowed, "bob" is
// known but forbidden, no header is unauthenticated. It records the paths
// it was asked about.
type operatorAuth struct {
	mu    sync.Mutex
	paths []string
}

func (a *operatorAuth) authorize(r *http.Request) error {
	a.mu.Lock()
	a.paths = append(a.paths, r.URL.Path)
	a.mu.Unlock()
	switch op := r.Header.Get("X-Operator"); op {
	case "alice":
		return nil
	case "":
		return errors.New("sign in as an operator first")
	default:
		return fmt.Errorf("operator %s may not use the admin API: %w", op, admin.ErrForbidden)
	}
}

func (a *operatorAuth) calls() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.paths...)
}

// emptyForbidden is an error with no message that is ErrForbidden.
type emptyForbidden struct{}

func (emptyForbidden) Error() string        { return "" }
func (emptyForbidden) Is(target error) bool { return target == admin.ErrForbidden }

func withAuthorize(a *operatorAuth) func(*admin.Options) {
	return func(o *admin.Options) { o.Authorize = a.authorize }
}

func operator(name string) reqOption { return header("X-Operator", name) }

// TestAuthorizeReplacesBuiltInCheck: with Authorize set, the hook alone
// decides; neither the token nor the loopback rule applies.
func TestAuthorizeReplacesBuiltInCheck(t *testing.T) {
	const farAway = "203.0.113.50:4444"
	tests := []struct {
		name   string
		conf   []func(*admin.Options)
		opts   []reqOption
		status int
		kind   string // "" for a success
	}{
		{"allows a remote client the hook allows, without a token", nil,
			[]reqOption{operator("alice"), remote(farAway), host("admin.example.com")}, http.StatusOK, ""},
		{"allows a client the hook allows even when a token is set", []func(*admin.Options){withToken},
			[]reqOption{operator("alice"), remote(farAway), host("admin.example.com")}, http.StatusOK, ""},
		{"refuses a loopback client the hook does not know", nil, nil, http.StatusUnauthorized, "unauthorized"},
		{"refuses the admin token when the hook does not know the caller", []func(*admin.Options){withToken},
			[]reqOption{bearer(testToken)}, http.StatusUnauthorized, "unauthorized"},
		{"refuses a known caller the hook forbids with 403", []func(*admin.Options){withToken},
			[]reqOption{operator("bob"), bearer(testToken)}, http.StatusForbidden, "forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth := &operatorAuth{}
			f := newFixture(t, append(tt.conf, withAuthorize(auth))...)
			rec := call(f.h, http.MethodGet, "/registry/endpoints", "", tt.opts...)
			assert.Equal(t, []string{"/registry/endpoints"}, auth.calls(), "the hook is asked once")
			if tt.kind == "" {
				decode[endpointList](t, rec, tt.status)
				return
			}
			requireProblem(t, rec, tt.status, tt.kind)
		})
	}
}

// TestAuthorizeErrors: the hook's error chooses the status, and its
// message, redacted, becomes the problem's detail.
func TestAuthorizeErrors(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		status    int
		kind      string
		detail    string
		challenge string // WWW-Authenticate; "" for none
	}{
		{"a plain error is 401 with a challenge", errors.New("no session"),
			http.StatusUnauthorized, "unauthorized", "no session", `Bearer realm="orchestrator-admin"`},
		{"ErrForbidden itself is 403", admin.ErrForbidden,
			http.StatusForbidden, "forbidden", admin.ErrForbidden.Error(), ""},
		{"an error wrapping ErrForbidden is 403", fmt.Errorf("role viewer: %w", admin.ErrForbidden),
			http.StatusForbidden, "forbidden", "role viewer: admin: forbidden", ""},
		{"an error joined with ErrForbidden is 403", errors.Join(errors.New("role viewer"), admin.ErrForbidden),
			http.StatusForbidden, "forbidden", "role viewer", ""},
		{"an empty message still gets a detail", errors.New(""),
			http.StatusUnauthorized, "unauthorized", "does not know this caller", `Bearer realm="orchestrator-admin"`},
		{"an empty message wrapping ErrForbidden still gets a detail", fmt.Errorf("%w", emptyForbidden{}),
			http.StatusForbidden, "forbidden", "does not allow this caller", ""},
		{"a secret in the message is redacted", errors.New("token " + testToken + " expired"),
			http.StatusUnauthorized, "unauthorized", "token [redacted] expired", `Bearer realm="orchestrator-admin"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, withToken, func(o *admin.Options) {
				o.Authorize = func(*http.Request) error { return tt.err }
			})
			rec := call(f.h, http.MethodPost, "/circuit-breaker/trip/orders", "")
			p := requireProblem(t, rec, tt.status, tt.kind)
			assert.Contains(t, p.Detail, tt.detail)
			assert.NotContains(t, rec.Body.String(), testToken)
			assert.Equal(t, tt.challenge, rec.Header().Get("WWW-Authenticate"))
			ep, err := f.o.Endpoint("orders")
			require.NoError(t, err)
			assert.Equal(t, "closed", string(ep.CircuitBreakerState), "the refused lever did nothing")
		})
	}
	t.Run("a refusal is logged as a warning without the caller's headers", func(t *testing.T) {
		auth := &operatorAuth{}
		f := newFixture(t, withAuthorize(auth))
		requireProblem(t, call(f.h, http.MethodGet, "/health/summary", "", operator("bob")), http.StatusForbidden, "forbidden")
		logs := f.logs.String()
		assert.Contains(t, logs, `"level":"WARN"`)
		assert.Contains(t, logs, `"problem":"forbidden"`)
		assert.NotContains(t, logs, "bob", "headers are never logged")
	})
}

// TestAuthorizeCoverage: the open routes stay open and never ask the hook;
// every other path asks it, unknown paths, wrong methods and pprof included,
// so that a refused caller cannot even map the API.
func TestAuthorizeCoverage(t *testing.T) {
	metricsAndPprof := func(o *admin.Options) {
		o.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("up 1\n")) })
		o.Pprof = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("profile")) })
	}
	t.Run("open routes answer without asking the hook", func(t *testing.T) {
		auth := &operatorAuth{}
		f := newFixture(t, metricsAndPprof, withAuthorize(auth))
		var open int
		for _, r := range f.h.Routes() {
			if !r.Open {
				continue
			}
			open++
			rec := call(f.h, r.Method, r.Pattern, "", remote("198.51.100.20:6000"), host("gateway.example.com"))
			assert.Equal(t, http.StatusOK, rec.Code, "%s %s: %s", r.Method, r.Pattern, rec.Body)
		}
		assert.Equal(t, 6, open, "/health, /health/live, /metrics, /openapi.json, /docs and /redoc")
		assert.Empty(t, auth.calls(), "the hook is not asked about open routes")
	})
	t.Run("every protected route asks the hook", func(t *testing.T) {
		auth := &operatorAuth{}
		f := newFixture(t, metricsAndPprof, withAuthorize(auth))
		for _, r := range f.h.Routes() {
			if r.Open {
				continue
			}
			target := strings.NewReplacer("{id}", "orders", "{path...}", "orders/x").Replace(r.Pattern)
			rec := call(f.h, r.Method, target, "")
			requireProblem(t, rec, http.StatusUnauthorized, "unauthorized")
		}
		assert.NotEmpty(t, auth.calls())
	})
	for _, tc := range []struct {
		method, target string
		status         int    // once allowed
		kind           string // once allowed; "" for a success
	}{
		{http.MethodGet, "/no/such/route", http.StatusNotFound, "no-admin-route"},
		{http.MethodPatch, "/registry/endpoints", http.StatusMethodNotAllowed, "method-not-allowed"},
		{http.MethodGet, "/debug/pprof/heap", http.StatusOK, ""},
	} {
		t.Run(tc.method+" "+tc.target+" asks the hook", func(t *testing.T) {
			auth := &operatorAuth{}
			f := newFixture(t, metricsAndPprof, withAuthorize(auth))
			requireProblem(t, call(f.h, tc.method, tc.target, ""), http.StatusUnauthorized, "unauthorized")
			rec := call(f.h, tc.method, tc.target, "", operator("alice"), remote("198.51.100.20:6000"), host("gateway.example.com"))
			if tc.kind != "" {
				requireProblem(t, rec, tc.status, tc.kind)
			} else {
				assert.Equal(t, tc.status, rec.Code, "%s", rec.Body)
			}
			assert.Equal(t, []string{tc.target, tc.target}, auth.calls())
		})
	}
}

// TestAuthorizeKeepsBrowserRules: an allowed caller still gets the Origin,
// Sec-Fetch-Site and media-type checks, which protect browsers whatever the
// authentication; the first two refuse before the hook is asked.
func TestAuthorizeKeepsBrowserRules(t *testing.T) {
	const create = `{"name":"csrf","url":"http://127.0.0.1:1"}`
	tests := []struct {
		name   string
		opts   []reqOption
		status int
		kind   string
		asked  bool
	}{
		{"refuses a foreign origin", []reqOption{header("Origin", "https://evil.example")},
			http.StatusForbidden, "origin-not-allowed", false},
		{"refuses a cross-site write", []reqOption{header("Sec-Fetch-Site", "cross-site")},
			http.StatusForbidden, "cross-site", false},
		{"refuses a text/plain body", []reqOption{contentType("text/plain")},
			http.StatusUnsupportedMediaType, "unsupported-media-type", true},
		{"accepts a JSON body", nil, http.StatusCreated, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth := &operatorAuth{}
			f := newFixture(t, withAuthorize(auth))
			opts := append([]reqOption{operator("alice"), remote("198.51.100.20:6000"), host("admin.example.com")}, tt.opts...)
			rec := call(f.h, http.MethodPost, "/registry/endpoints", create, opts...)
			assert.Equal(t, tt.asked, len(auth.calls()) > 0, "whether the hook was asked")
			if tt.kind == "" {
				require.Equal(t, tt.status, rec.Code, "%s", rec.Body)
				return
			}
			requireProblem(t, rec, tt.status, tt.kind)
			_, err := f.o.Endpoint("csrf")
			assert.Error(t, err, "the refused request changed nothing")
		})
	}
}
