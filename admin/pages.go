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

// assets are the static files of /openapi.json, /docs, /redoc and /status.
// Nothing is fetched from elsewhere: the pages work offline.
//
//go:embed assets/openapi.json assets/docs.html assets/docs.js assets/docs.css assets/redoc.html assets/redoc.css assets/status.html assets/status.css
var assets embed.FS

// pages holds the rendered static pages and their Content-Security-Policy.
// Inline scripts and styles are allowed by their sha256 hash, so the policy
// needs neither 'unsafe-inline' nor a per-request nonce.
type pages struct {
	openapi   []byte
	docs      []byte
	docsCSP   string
	redoc     []byte
	redocCSP  string
	status    *template.Template
	statusCSP string
	traffic   *trafficWindow // per Handler, set by mustLoadPages
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

	var err error
	p.redoc, p.redocCSP, err = renderRedoc(p.openapi, read("redoc.html"), read("redoc.css"))
	if err != nil {
		panic("admin: building the /redoc page: " + err.Error())
	}

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

// mustLoadPages returns the pages, built once per process, with a traffic
// window of their own: each Handler computes the status page's rates from
// the renders it served.
func mustLoadPages() pages {
	p := loadPages()
	p.traffic = &trafficWindow{seen: map[string]trafficSample{}}
	return p
}

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
	ServerErrors        uint64
	RateLimited         uint64 // requests the rate limit refused
	LoadShed            uint64 // requests the adaptive limit shed
	InFlight            int64
	LastHealthCheck     *time.Time
	LastFailure         *time.Time
	HealthError         string
	Traffic             trafficRates
	// Chart is the last 15 minutes; nil without traffic.
	Chart *chart
	// Targets are the rows of an endpoint with a targets list, one per
	// target, under the endpoint's.
	Targets []targetRow
}

// targetRow is one target of an endpoint on the status page.
type targetRow struct {
	ID, URL          string
	Status           orchestrator.HealthStatus
	Breaker          orchestrator.BreakerState
	Weight           int
	Drained, Ejected bool
	AwaitingProbe    bool
	InFlight         int64
	Failures         int
	Ejections        uint64
	LastHealthCheck  *time.Time
	HealthError      string
	// Chart is the target's attempts of the last 15 minutes; nil
	// without any.
	Chart *chart
}

// trafficRates is the request rate and mean latency of one status row.
type trafficRates struct {
	// Rate is the requests per second since the window's start, shown as
	// Rate; RateValue is the machine-readable number ("" when unknown).
	Rate, RateValue string
	// Latency is the mean response time of the requests answered in the
	// window, LatencyValue the same in seconds ("" when none).
	Latency, LatencyValue string
	// Window says what the numbers cover, for the cells' titles.
	Window string
}

// minTrafficWindow is the shortest window the status page reports a rate
// over: renders closer together than this (two tabs, a double reload) are
// measured against the same, older sample instead of a near-empty window.
const minTrafficWindow = time.Second

// trafficSample is an endpoint's traffic counters at one render.
type trafficSample struct {
	at       time.Time
	requests uint64
	latency  time.Duration
}

// trafficWindow remembers the traffic counters each endpoint had at an
// earlier render of the status page, so that a render can show the request
// rate and mean latency since then rather than since the start.
type trafficWindow struct {
	mu   sync.Mutex
	seen map[string]trafficSample // by endpoint id
}

// snapshot reads every endpoint and the clock, computes each row's traffic
// numbers and records the samples the next render will be measured against.
// Renders are serialized here, so that samples only move forward in time
// and counts.
func (w *trafficWindow) snapshot(o *orchestrator.Orchestrator) ([]orchestrator.RegisteredEndpoint, time.Time, map[string]trafficRates) {
	w.mu.Lock()
	defer w.mu.Unlock()
	eps := o.Endpoints()
	now := time.Now()
	out := make(map[string]trafficRates, len(eps))
	live := make(map[string]bool, len(eps))
	for _, ep := range eps {
		live[ep.ID] = true
		cur := trafficSample{at: now, requests: ep.Traffic.Requests, latency: ep.Traffic.LatencySum.Std()}
		prev, ok := w.seen[ep.ID]
		// Counters restart when an endpoint is re-created (removed and
		// added again, or moved to another upstream): measure from scratch.
		ok = ok && cur.requests >= prev.requests && cur.latency >= prev.latency && now.After(prev.at)
		var r trafficRates
		if ok {
			elapsed := now.Sub(prev.at)
			n := cur.requests - prev.requests
			rate := float64(n) / elapsed.Seconds()
			r.Rate = formatRate(rate) + " req/s"
			r.RateValue = strconv.FormatFloat(rate, 'g', -1, 64)
			r.Window = "over the last " + roundDuration(elapsed).String()
			if n > 0 {
				r.setLatency((cur.latency - prev.latency) / time.Duration(n))
			} else {
				r.Latency = "—"
			}
		} else {
			// No earlier render: no rate yet, and the mean latency since
			// the endpoint's counters started.
			r.Rate = "—"
			r.Window = "since the endpoint started; the rate needs a second render"
			if cur.requests > 0 {
				r.setLatency(cur.latency / time.Duration(cur.requests))
			} else {
				r.Latency = "—"
			}
		}
		out[ep.ID] = r
		if !ok || now.Sub(prev.at) >= minTrafficWindow {
			w.seen[ep.ID] = cur
		}
	}
	for id := range w.seen {
		if !live[id] {
			delete(w.seen, id)
		}
	}
	return eps, now, out
}

func (r *trafficRates) setLatency(d time.Duration) {
	r.Latency = formatLatency(d)
	r.LatencyValue = strconv.FormatFloat(d.Seconds(), 'g', -1, 64)
}

// formatRate shows a request rate with three significant digits or so.
func formatRate(rate float64) string {
	switch {
	case rate >= 100:
		return strconv.FormatFloat(rate, 'f', 0, 64)
	case rate >= 10:
		return strconv.FormatFloat(rate, 'f', 1, 64)
	}
	return strconv.FormatFloat(rate, 'f', 2, 64)
}

// formatLatency shows a mean response time in µs, ms or s.
func formatLatency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', 0, 64) + " µs"
	case d < 10*time.Millisecond:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + " ms"
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + " s"
}

// roundDuration rounds a window for display.
func roundDuration(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}

func (h *Handler) getStatusPage(w http.ResponseWriter, r *http.Request) error {
	eps, now, traffic := h.pages.traffic.snapshot(h.o)
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
		// The endpoint may have gone since the snapshot: no chart then.
		tl, _ := h.o.Timeline(ep.ID)
		route := h.o.Prefix() + "/" + ep.Config.Name
		if ep.Config.Version != "" {
			route += "/" + ep.Config.Version
		}
		upstream := ep.Config.URL
		var targets []targetRow
		if len(ep.Targets) > 0 {
			upstream = strconv.Itoa(len(ep.Targets)) + " targets"
			for _, t := range ep.Targets {
				targets = append(targets, targetRow{ID: t.ID, URL: t.URL, Status: t.Status, Breaker: t.CircuitBreakerState,
					Weight: t.Weight, Drained: t.Drained, Ejected: t.Ejected, AwaitingProbe: t.AwaitingProbe,
					InFlight: t.InFlight, Failures: t.ConsecutiveRequestFailures, Ejections: t.Ejections,
					LastHealthCheck: t.LastCheckTime, HealthError: h.redact(t.Health.LastError),
					Chart: newChart(tl.Targets[t.ID], now)})
			}
		}
		page.Endpoints = append(page.Endpoints, statusRow{
			ID:                  ep.ID,
			Route:               route,
			Upstream:            upstream,
			Targets:             targets,
			Source:              ep.Source,
			Status:              ep.Status,
			Breaker:             ep.CircuitBreakerState,
			ConsecutiveFailures: ep.ConsecutiveRequestFailures,
			ServerErrors:        ep.Traffic.ServerErrors,
			RateLimited:         ep.Traffic.RateLimited,
			LoadShed:            ep.Traffic.LoadShed,
			InFlight:            ep.Traffic.InFlight,
			LastHealthCheck:     ep.LastHealthCheck,
			LastFailure:         ep.LastFailureTime,
			HealthError:         h.redact(ep.Health.LastError),
			Traffic:             traffic[ep.ID],
			Chart:               newChart(tl.Points, now),
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
