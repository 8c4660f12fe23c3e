package admin_test

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
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
	t.Run("is open: the pages that show it need it, and it holds no data", func(t *testing.T) {
		rec := call(f.h, http.MethodGet, "/openapi.json", "", remote("203.0.113.1:80"), host("gateway.example.com"))
		assert.Equal(t, http.StatusOK, rec.Code, "a remote client without token: %s", rec.Body)
		f := newFixture(t, withToken)
		rec = call(f.h, http.MethodGet, "/openapi.json", "")
		assert.Equal(t, http.StatusOK, rec.Code, "no credentials with a token set: %s", rec.Body)
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
	t.Run("keeps its security headers when open", func(t *testing.T) {
		f := newFixture(t, withToken)
		rec := call(f.h, http.MethodGet, "/docs", "")
		require.Equal(t, http.StatusOK, rec.Code)
		assert.Contains(t, rec.Header().Get("Content-Security-Policy"), "default-src 'none'")
		assert.Equal(t, "DENY", rec.Header().Get("X-Frame-Options"))
		assert.Equal(t, "no-referrer", rec.Header().Get("Referrer-Policy"))
		assert.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
		assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	})
	t.Run("still refuses a foreign origin", func(t *testing.T) {
		f := newFixture(t, withToken)
		requireProblem(t, call(f.h, http.MethodGet, "/docs", "", header("Origin", "https://evil.example")), http.StatusForbidden, "origin-not-allowed")
	})
}

// TestPagesOpenWithToken: with a token set, a browser, which sends no
// credentials when it opens a page, gets /docs and /redoc, while the API
// the docs page calls still answers 401 without the token.
func TestPagesOpenWithToken(t *testing.T) {
	f := newFixture(t, withToken)
	for _, target := range []string{"/docs", "/redoc", "/openapi.json"} {
		rec := call(f.h, http.MethodGet, target, "", remote("198.51.100.20:6000"), host("gateway.example.com"))
		assert.Equal(t, http.StatusOK, rec.Code, "GET %s without credentials: got %d; want 200; body %s", target, rec.Code, rec.Body)
		if target != "/openapi.json" {
			assert.Equal(t, "DENY", rec.Header().Get("X-Frame-Options"), "%s keeps its security headers", target)
			assert.Contains(t, rec.Header().Get("Content-Security-Policy"), "default-src 'none'", "%s keeps its CSP", target)
		}
	}
	for _, target := range []string{"/health/endpoints", "/registry/endpoints", "/status"} {
		requireProblem(t, call(f.h, http.MethodGet, target, ""), http.StatusUnauthorized, "unauthorized")
	}
	rec := call(f.h, http.MethodGet, "/health/endpoints", "", bearer(testToken))
	assert.Equal(t, http.StatusOK, rec.Code, "with the token: %s", rec.Body)
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
	t.Run("shows the config status block", func(t *testing.T) {
		f := newFixture(t)
		page := statusPage(t, f)
		m := regexp.MustCompile(`<dl id="config" data-version="([^"]*)" data-reloads="(\d+)" data-error="(yes|no)">`).FindStringSubmatch(page)
		require.NotNil(t, m, "no config block in:\n%s", page)
		assert.Equal(t, "9f86d081", m[1], "config version: got %q; want %q", m[1], "9f86d081")
		assert.Equal(t, "0", m[2], "reload count: got %s; want 0", m[2])
		assert.Equal(t, "no", m[3], "config error: got %s; want no", m[3])

		f = newFixture(t, withoutConfig)
		page = statusPage(t, f)
		assert.NotContains(t, page, `id="config"`)
		assert.Contains(t, page, "No config file")
	})
}

// statusPage renders /status and returns the page.
func statusPage(t *testing.T, f *fixture) string {
	t.Helper()
	rec := call(f.h, http.MethodGet, "/status", "")
	require.Equal(t, http.StatusOK, rec.Code, "GET /status: got %d; want 200; body %s", rec.Code, rec.Body)
	return rec.Body.String()
}

// pageCell is one <td> of a status page row: its text as a person reads it
// and its attributes.
type pageCell struct {
	text  string
	attrs map[string]string
}

var (
	rowRE  = regexp.MustCompile(`(?s)<tr data-endpoint="([^"]*)">(.*?)</tr>`)
	cellRE = regexp.MustCompile(`(?s)<td class="([^"]*)"([^>]*)>(.*?)</td>`)
	attrRE = regexp.MustCompile(`([a-z-]+)="([^"]*)"`)
	tagRE  = regexp.MustCompile(`<[^>]*>`)
)

// statusRows finds the endpoint rows of a status page by their hooks
// (<tr data-endpoint="id">), and each row's cells by their first class.
func statusRows(t *testing.T, page string) map[string]map[string]pageCell {
	t.Helper()
	rows := map[string]map[string]pageCell{}
	for _, r := range rowRE.FindAllStringSubmatch(page, -1) {
		cells := map[string]pageCell{}
		for _, c := range cellRE.FindAllStringSubmatch(r[2], -1) {
			class, _, _ := strings.Cut(c[1], " ")
			attrs := map[string]string{}
			for _, a := range attrRE.FindAllStringSubmatch(c[2], -1) {
				attrs[a[1]] = html.UnescapeString(a[2])
			}
			text := strings.Join(strings.Fields(html.UnescapeString(tagRE.ReplaceAllString(c[3], " "))), " ")
			cells[class] = pageCell{text: text, attrs: attrs}
		}
		rows[html.UnescapeString(r[1])] = cells
	}
	return rows
}

// requireRow returns the row of endpoint id.
func requireRow(t *testing.T, page, id string) map[string]pageCell {
	t.Helper()
	rows := statusRows(t, page)
	row, ok := rows[id]
	require.True(t, ok, "no row for %s in the status page:\n%s", id, page)
	return row
}

// assertCell checks the text of a row's cell.
func assertCell(t *testing.T, row map[string]pageCell, class, want string) {
	t.Helper()
	c, ok := row[class]
	if assert.True(t, ok, "no %q cell in the row", class) {
		assert.Equal(t, want, c.text, "%s cell: got %q; want %q", class, c.text, want)
	}
}

// floatAttr parses a numeric data attribute of a cell.
func floatAttr(t *testing.T, row map[string]pageCell, class, attr string) float64 {
	t.Helper()
	v := row[class].attrs[attr]
	f, err := strconv.ParseFloat(v, 64)
	require.NoError(t, err, "%s cell's %s: got %q; want a number", class, attr, v)
	return f
}

func TestStatusPageRows(t *testing.T) {
	t.Run("each endpoint has a row with its route, health, breaker and counters", func(t *testing.T) {
		f := newFixture(t)
		page := statusPage(t, f)
		rows := statusRows(t, page)
		got := []string{}
		for id := range rows {
			got = append(got, id)
		}
		assert.ElementsMatch(t, []string{"users_v1", "orders", "legacy"}, got, "rows: got %v; want users_v1, orders, legacy", got)

		orders := requireRow(t, page, "orders")
		assertCell(t, orders, "id", "orders")
		assertCell(t, orders, "route", "/orchestrator/orders")
		assertCell(t, orders, "upstream", f.backend.URL+"/orders")
		assertCell(t, orders, "source", "config")
		assertCell(t, orders, "status", "healthy")
		assert.Equal(t, "healthy", orders["status"].attrs["data-state"], "status data-state: got %q; want healthy", orders["status"].attrs["data-state"])
		assertCell(t, orders, "breaker", "closed")
		assert.Equal(t, "closed", orders["breaker"].attrs["data-state"], "breaker data-state: got %q; want closed", orders["breaker"].attrs["data-state"])
		assertCell(t, orders, "rate", "—")
		assert.Empty(t, orders["rate"].attrs["data-rate"], "no rate before a second render")
		assertCell(t, orders, "latency", "—")
		assertCell(t, orders, "errors", "0")
		assertCell(t, orders, "inflight", "0")
		assertCell(t, orders, "failures", "0")
		assertCell(t, orders, "checked", "never")
		assertCell(t, orders, "failed", "never")

		users := requireRow(t, page, "users_v1")
		assertCell(t, users, "route", "/orchestrator/users/v1")
		legacy := requireRow(t, page, "legacy")
		assertCell(t, legacy, "breaker", "disabled")
		assert.Equal(t, "disabled", legacy["breaker"].attrs["data-state"])
	})

	t.Run("an endpoint with traffic has a chart of its last 15 minutes; an idle one says so", func(t *testing.T) {
		f := newFixture(t)
		for range 4 {
			rec := f.proxied(t, "/orchestrator/orders/x")
			require.Equal(t, http.StatusOK, rec.Code)
		}
		require.NoError(t, f.o.TripBreaker("orders"))
		rec := f.proxied(t, "/orchestrator/orders/x")
		require.Equal(t, http.StatusServiceUnavailable, rec.Code)

		page := statusPage(t, f)
		orders := requireRow(t, page, "orders")
		assert.Regexp(t, `peak \d+(\.\d+)? req/s, p99 up to [^,]+, 1 errors`, orders["chart"].text, "the chart's title")
		assert.Regexp(t, ` \d+(\.\d+)? req/s p99 \S+ (µs|ms|s) 1 err$`, orders["chart"].text, "the legend")
		// One SVG with three polylines of one point per minute.
		svg := regexp.MustCompile(`(?s)<tr data-endpoint="orders">.*?<svg class="spark".*?</svg>`).FindString(page)
		require.NotEmpty(t, svg, "the orders row has a chart")
		for _, class := range []string{"rate", "p99", "errors"} {
			points := regexp.MustCompile(`<polyline class="` + class + `" points="([^"]*)"`).FindStringSubmatch(svg)
			require.Len(t, points, 2, "the %s line", class)
			assert.Len(t, strings.Fields(points[1]), orchestrator.TimelineMinutes, "%s: one point a minute", class)
		}
		assert.NotContains(t, svg, "style=", "no inline style under the CSP")
		assertCell(t, requireRow(t, page, "legacy"), "chart", "no traffic")
	})

	t.Run("requests refused by a rate limit show beside the 5xx", func(t *testing.T) {
		f := newFixture(t)
		_, err := f.o.Register(t.Context(), orchestrator.Endpoint{Name: "limited", URL: f.backend.URL,
			RateLimit: &orchestrator.RateLimits{{RequestsPerSecond: 0.001, Burst: 1}}})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, f.proxied(t, "/orchestrator/limited/x").Code)
		for range 2 {
			require.Equal(t, http.StatusTooManyRequests, f.proxied(t, "/orchestrator/limited/x").Code)
		}
		assertCell(t, requireRow(t, statusPage(t, f), "limited"), "errors", "0 2 limited")
		assertCell(t, requireRow(t, statusPage(t, f), "orders"), "errors", "0")
	})

	t.Run("a tripped breaker and its 503s show on the next render", func(t *testing.T) {
		f := newFixture(t)
		statusPage(t, f)
		require.NoError(t, f.o.TripBreaker("orders"))
		rec := f.proxied(t, "/orchestrator/orders/x")
		require.Equal(t, http.StatusServiceUnavailable, rec.Code, "through an open breaker: got %d; want 503", rec.Code)

		orders := requireRow(t, statusPage(t, f), "orders")
		assertCell(t, orders, "breaker", "open")
		assert.Equal(t, "open", orders["breaker"].attrs["data-state"], "breaker data-state: got %q; want open", orders["breaker"].attrs["data-state"])
		assertCell(t, orders, "status", "unhealthy")
		assertCell(t, orders, "errors", "1")
		assert.Regexp(t, `^\d+(\.\d+)? req/s$`, orders["rate"].text, "the second render has a rate")
	})

	t.Run("request rate and mean latency cover the time since the previous render", func(t *testing.T) {
		f := newFixture(t)
		const n = 20

		t0 := time.Now()
		first := requireRow(t, statusPage(t, f), "orders")
		t1 := time.Now()
		assertCell(t, first, "rate", "—")

		var slowest time.Duration
		for range n {
			start := time.Now()
			rec := f.proxied(t, "/orchestrator/orders/x")
			slowest = max(slowest, time.Since(start))
			require.Equal(t, http.StatusOK, rec.Code, "proxied request: got %d; want 200", rec.Code)
		}

		t2 := time.Now()
		second := requireRow(t, statusPage(t, f), "orders")
		t3 := time.Now()

		// The handler read the clock once per render, within [t0, t1] and
		// [t2, t3]: the window lies between t2-t1 and t3-t0.
		rate := floatAttr(t, second, "rate", "data-rate")
		lo, hi := n/t3.Sub(t0).Seconds(), n/t2.Sub(t1).Seconds()
		assert.True(t, rate >= lo*(1-1e-9) && rate <= hi*(1+1e-9), "rate: got %g req/s; want within [%g, %g]", rate, lo, hi)
		assert.Regexp(t, `^\d+(\.\d+)? req/s$`, second["rate"].text)

		mean := floatAttr(t, second, "latency", "data-seconds")
		assert.True(t, mean > 0 && mean <= slowest.Seconds(), "mean latency: got %gs; want in (0, %gs], the slowest request as the test timed it", mean, slowest.Seconds())
		assert.Regexp(t, `^\d+(\.\d+)? (µs|ms|s)$`, second["latency"].text)
		assertCell(t, second, "errors", "0")
		assertCell(t, requireRow(t, statusPage(t, f), "users_v1"), "latency", "—")
	})

	t.Run("the first render shows the mean latency since the start", func(t *testing.T) {
		f := newFixture(t)
		var slowest time.Duration
		for range 3 {
			start := time.Now()
			require.Equal(t, http.StatusOK, f.proxied(t, "/orchestrator/orders/x").Code)
			slowest = max(slowest, time.Since(start))
		}
		orders := requireRow(t, statusPage(t, f), "orders")
		assertCell(t, orders, "rate", "—")
		mean := floatAttr(t, orders, "latency", "data-seconds")
		assert.True(t, mean > 0 && mean <= slowest.Seconds(), "mean latency: got %gs; want in (0, %gs]", mean, slowest.Seconds())
	})

	t.Run("each admin handler keeps its own window", func(t *testing.T) {
		f := newFixture(t)
		statusPage(t, f)
		other := admin.New(f.o, admin.Options{})
		rec := call(other, http.MethodGet, "/status", "")
		require.Equal(t, http.StatusOK, rec.Code)
		assertCell(t, requireRow(t, rec.Body.String(), "orders"), "rate", "—")
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
