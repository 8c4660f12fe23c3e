package admin_test

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator/admin"
)

func TestMetrics(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintln(w, `orchestrator_requests_total{endpoint="orders",method="GET",status="200"} 1`)
	})
	withMetrics := func(o *admin.Options) { o.Metrics = metrics }

	t.Run("serves the metrics handler", func(t *testing.T) {
		f := newFixture(t, withMetrics)
		rec := call(f.h, http.MethodGet, "/metrics", "")
		require.Equal(t, http.StatusOK, rec.Code)
		assert.Contains(t, rec.Body.String(), "orchestrator_requests_total")
	})
	t.Run("answers 404 without a metrics handler", func(t *testing.T) {
		f := newFixture(t)
		requireProblem(t, call(f.h, http.MethodGet, "/metrics", ""), http.StatusNotFound, "metrics-disabled")
	})
}

func TestOpenAPIDocument(t *testing.T) {
	f := newFixture(t)
	t.Run("is served as JSON", func(t *testing.T) {
		got := decode[map[string]any](t, call(f.h, http.MethodGet, "/openapi.json", ""), http.StatusOK)
		assert.Equal(t, "3.1.0", got["openapi"])
	})
	t.Run("needs a loopback client without token", func(t *testing.T) {
		requireProblem(t, call(f.h, http.MethodGet, "/openapi.json", "", remote("203.0.113.1:80")), http.StatusForbidden, "not-loopback")
	})
}

// inlineBlock returns the content of the single <tag>…</tag> block of a page.
func inlineBlock(t *testing.T, page, tag string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<`+tag+`>(.*?)</`+tag+`>`).FindAllStringSubmatch(page, -1)
	require.Len(t, m, 1, "one inline <%s> block", tag)
	return m[0][1]
}

func cspSource(content string) string {
	sum := sha256.Sum256([]byte(content))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// cspDirectives parses a Content-Security-Policy header.
func cspDirectives(t *testing.T, csp string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		out[name] = value
	}
	return out
}

// assertSelfContained checks that a page loads nothing from anywhere else:
// every src and href is relative to the admin API, its CSS imports nothing
// and its script (if any) imports nothing.
func assertSelfContained(t *testing.T, page string) {
	t.Helper()
	for _, m := range regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?([^"' >]*)`).FindAllStringSubmatch(page, -1) {
		assert.NotRegexp(t, `^([a-z][a-z0-9+.-]*:|//)`, m[2], "%s=%q points elsewhere; the page must work offline", m[1], m[2])
	}
	css := strings.ToLower(inlineBlock(t, page, "style"))
	for _, bad := range []string{"@import", "url("} {
		assert.False(t, strings.Contains(css, bad), "the page's CSS holds %q; it must work offline", bad)
	}
	if strings.Contains(page, "<script") {
		js := inlineBlock(t, page, "script")
		for _, bad := range []string{"import(", "importScripts", "<script src"} {
			assert.False(t, strings.Contains(js, bad), "the page's script holds %q; it must work offline", bad)
		}
	}
	assert.False(t, strings.Contains(strings.ToLower(page), "cdn"), "the page mentions a CDN")
}

func TestDocsPage(t *testing.T) {
	f := newFixture(t)
	t.Run("is an offline page with a strict CSP that allows its own script", func(t *testing.T) {
		rec := call(f.h, http.MethodGet, "/docs", "")
		require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
		assert.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
		page := rec.Body.String()
		assertSelfContained(t, page)
		assert.False(t, strings.Contains(page, "http://"), "the docs page names no other origin")
		assert.False(t, strings.Contains(page, "https://"), "the docs page names no other origin")
		assert.Contains(t, page, "openapi.json", "the page loads the spec")
		assert.Contains(t, page, `id="token"`, "the page has a token field")

		csp := cspDirectives(t, rec.Header().Get("Content-Security-Policy"))
		assert.Equal(t, "'none'", csp["default-src"])
		assert.Equal(t, "'self'", csp["connect-src"])
		assert.Equal(t, "'none'", csp["frame-ancestors"])
		assert.Equal(t, cspSource(inlineBlock(t, page, "script")), csp["script-src"], "the inline script is allowed by its hash")
		assert.Equal(t, cspSource(inlineBlock(t, page, "style")), csp["style-src"], "the inline style is allowed by its hash")
		assert.NotContains(t, rec.Header().Get("Content-Security-Policy"), "unsafe")
	})
	t.Run("needs authorization", func(t *testing.T) {
		f := newFixture(t, withToken)
		requireProblem(t, call(f.h, http.MethodGet, "/docs", ""), http.StatusUnauthorized, "unauthorized")
	})
}

func TestStatusPage(t *testing.T) {
	f := newFixture(t)
	evil := `<script>alert("x")</script>`
	f.conf.set(func(c *fakeConfig) { c.status.LastError = &evil })

	t.Run("lists endpoints and config status, refreshes itself", func(t *testing.T) {
		rec := call(f.h, http.MethodGet, "/status", "")
		require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
		assert.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
		page := rec.Body.String()
		for _, want := range []string{"users_v1", "orders", "legacy", "/orchestrator/users/v1", "closed", "disabled",
			"/etc/orchestrator/config.yaml", "9f86d081", "1.2.3-test", `<meta http-equiv="refresh" content="5">`} {
			assert.Contains(t, page, want)
		}
		assert.False(t, strings.Contains(page, evil), "text is HTML-escaped")
		assert.Contains(t, page, "&lt;script&gt;")
		assertSelfContained(t, page)

		csp := cspDirectives(t, rec.Header().Get("Content-Security-Policy"))
		assert.Equal(t, "'none'", csp["default-src"])
		assert.NotContains(t, csp, "script-src", "the status page runs no script")
		assert.Equal(t, cspSource(inlineBlock(t, page, "style")), csp["style-src"])
	})
	t.Run("needs authorization", func(t *testing.T) {
		f := newFixture(t, withToken)
		requireProblem(t, call(f.h, http.MethodGet, "/status", "", bearer("nope")), http.StatusUnauthorized, "unauthorized")
	})
}

func TestMethodNotAllowed(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		method, target, allow string
	}{
		{http.MethodDelete, "/health", "GET, HEAD"},
		{http.MethodPost, "/health/endpoints/users_v1", "GET, HEAD"},
		{http.MethodPatch, "/registry/endpoints/orders", "GET, HEAD, PUT, DELETE"},
		{http.MethodPut, "/registry/endpoints", "GET, HEAD, POST"},
		{http.MethodGet, "/config/reload", "POST"},
		{http.MethodGet, "/circuit-breaker/reset-all", "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			rec := call(f.h, tt.method, tt.target, "")
			requireProblem(t, rec, http.StatusMethodNotAllowed, "method-not-allowed")
			assert.Equal(t, tt.allow, rec.Header().Get("Allow"))
		})
	}
	t.Run("HEAD is served like GET", func(t *testing.T) {
		rec := call(f.h, http.MethodHead, "/health/summary", "")
		assert.Equal(t, http.StatusOK, rec.Code)
	})
}

func TestUnknownRoute(t *testing.T) {
	f := newFixture(t)
	requireProblem(t, call(f.h, http.MethodGet, "/nope", ""), http.StatusNotFound, "no-admin-route")
	t.Run("needs authorization like any admin route", func(t *testing.T) {
		f := newFixture(t, withToken)
		requireProblem(t, call(f.h, http.MethodGet, "/nope", ""), http.StatusUnauthorized, "unauthorized")
	})
}
