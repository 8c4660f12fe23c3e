package admin

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/orchestrator-go/orchestrator"
)

// assets are the static files of /openapi.json, /docs and /status. Nothing
// is fetched from elsewhere: the pages work offline.
//
//go:embed assets/openapi.json assets/docs.html assets/docs.js assets/docs.css assets/status.html assets/status.css
var assets embed.FS

// pages holds the rendered static pages and their Content-Security-Policy.
// Inline scripts and styles are allowed by their sha256 hash, so the policy
// needs neither 'unsafe-inline' nor a per-request nonce.
type pages struct {
	openapi   []byte
	docs      []byte
	docsCSP   string
	status    *template.Template
	statusCSP string
}

var loadPages = sync.OnceValue(func() pages {
	read := func(name string) string {
		b, err := assets.ReadFile("assets/" + name)
		if err != nil {
			panic("admin: embedded asset missing: " + err.Error())
		}
		return string(b)
	}
	var p pages
	p.openapi = []byte(read("openapi.json"))

	js, css := read("docs.js"), read("docs.css")
	html := read("docs.html")
	if !strings.Contains(html, "/*SCRIPT*/") || !strings.Contains(html, "/*STYLE*/") {
		panic("admin: docs.html lacks its /*SCRIPT*/ or /*STYLE*/ placeholder")
	}
	html = strings.Replace(html, "/*SCRIPT*/", js, 1)
	html = strings.Replace(html, "/*STYLE*/", css, 1)
	p.docs = []byte(html)
	p.docsCSP = fmt.Sprintf("default-src 'none'; script-src '%s'; style-src '%s'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
		cspHash(js), cspHash(css))

	statusCSS := read("status.css")
	statusHTML := read("status.html")
	if !strings.Contains(statusHTML, "/*STYLE*/") {
		panic("admin: status.html lacks its /*STYLE*/ placeholder")
	}
	statusHTML = strings.Replace(statusHTML, "/*STYLE*/", statusCSS, 1)
	p.status = template.Must(template.New("status").Funcs(template.FuncMap{
		"when": when,
	}).Parse(statusHTML))
	p.statusCSP = fmt.Sprintf("default-src 'none'; style-src '%s'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'", cspHash(statusCSS))
	return p
})

// mustLoadPages returns the pages, built once per process.
func mustLoadPages() pages { return loadPages() }

// cspHash is the CSP source expression allowing an inline block verbatim.
func cspHash(content string) string {
	sum := sha256.Sum256([]byte(content))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// setPageHeaders sets the headers of an HTML page.
func setPageHeaders(w http.ResponseWriter, csp string) {
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Content-Security-Policy", csp)
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Referrer-Policy", "no-referrer")
}

func (h *Handler) getMetrics(w http.ResponseWriter, r *http.Request) error {
	if h.opts.Metrics == nil {
		return &apiError{status: http.StatusNotFound, kind: "metrics-disabled", title: "Metrics not available",
			detail: "this admin API has no metrics handler"}
	}
	h.opts.Metrics.ServeHTTP(w, r)
	return nil
}

func (h *Handler) getOpenAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(h.pages.openapi)))
	w.Write(h.pages.openapi)
	return nil
}

func (h *Handler) getDocs(w http.ResponseWriter, r *http.Request) error {
	setPageHeaders(w, h.pages.docsCSP)
	w.Header().Set("Content-Length", strconv.Itoa(len(h.pages.docs)))
	w.Write(h.pages.docs)
	return nil
}

// statusPage is what status.html renders.
type statusPage struct {
	Version   string
	Now       time.Time
	Uptime    string
	Prefix    string
	Counts    statusCounts
	Endpoints []statusRow
	HasConfig bool
	Config    ConfigStatus
}

type statusCounts struct {
	Total, Healthy, Unhealthy, Unknown, Disabled, Open, HalfOpen int
}

type statusRow struct {
	ID                  string
	Route               string
	Upstream            string
	Source              orchestrator.Source
	Status              orchestrator.HealthStatus
	Breaker             orchestrator.BreakerState
	ConsecutiveFailures int64
	LastHealthCheck     *time.Time
	LastFailure         *time.Time
	HealthError         string
}

func (h *Handler) getStatusPage(w http.ResponseWriter, r *http.Request) error {
	now := time.Now()
	eps := h.o.Endpoints()
	sum := summarize(eps)
	page := statusPage{
		Version: h.opts.Version,
		Now:     now.UTC(),
		Uptime:  now.Sub(h.started).Round(time.Second).String(),
		Prefix:  h.o.Prefix(),
		Counts: statusCounts{
			Total:     sum.Total,
			Healthy:   sum.ByStatus[orchestrator.StatusHealthy],
			Unhealthy: sum.ByStatus[orchestrator.StatusUnhealthy],
			Unknown:   sum.ByStatus[orchestrator.StatusUnknown],
			Disabled:  sum.ByStatus[orchestrator.StatusDisabled],
			Open:      sum.ByBreakerState[orchestrator.BreakerOpen],
			HalfOpen:  sum.ByBreakerState[orchestrator.BreakerHalfOpen],
		},
		HasConfig: h.opts.Config != nil,
		Config:    h.configStatus(),
	}
	for _, ep := range eps {
		route := h.o.Prefix() + "/" + ep.Config.Name
		if ep.Config.Version != "" {
			route += "/" + ep.Config.Version
		}
		page.Endpoints = append(page.Endpoints, statusRow{
			ID:                  ep.ID,
			Route:               route,
			Upstream:            ep.Config.URL,
			Source:              ep.Source,
			Status:              ep.Status,
			Breaker:             ep.CircuitBreakerState,
			ConsecutiveFailures: ep.ConsecutiveFailures,
			LastHealthCheck:     ep.LastHealthCheck,
			LastFailure:         ep.LastFailureTime,
			HealthError:         h.redact(ep.Health.LastError),
		})
	}
	var buf bytes.Buffer
	if err := h.pages.status.Execute(&buf, page); err != nil {
		return fmt.Errorf("rendering the status page: %w", err)
	}
	setPageHeaders(w, h.pages.statusCSP)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Write(buf.Bytes())
	return nil
}

// when formats an optional time for the status page.
func when(t *time.Time) string {
	if t == nil {
		return "never"
	}
	ago := time.Since(*t).Round(time.Second)
	if ago < 0 {
		ago = 0
	}
	return t.UTC().Format(time.RFC3339) + " (" + ago.String() + " ago)"
}
