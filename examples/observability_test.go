package examples_test

// The observability examples — the Grafana dashboard and the Prometheus
// alert rules — are checked for their structure, and every metric they
// query is looked up in the /metrics of a running orchestratord (run
// in-process), so that a renamed metric or label breaks this test rather
// than an operator's dashboard.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator/internal/server"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

const (
	dashboardFile = "grafana/dashboard.json"
	alertsFile    = "prometheus/alerts.yaml"
)

// ---- the Grafana dashboard ---------------------------------------------------

type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	ID            *int    `json:"id"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []templateVar `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int          `json:"id"`
	Type       string       `json:"type"`
	Title      string       `json:"title"`
	Datasource *dsRef       `json:"datasource"`
	GridPos    *gridPos     `json:"gridPos"`
	Targets    []target     `json:"targets"`
	Panels     []panel      `json:"panels"` // of a collapsed row
	FieldConf  *fieldConfig `json:"fieldConfig"`
}

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type gridPos struct {
	H, W, X, Y int
}

type target struct {
	RefID        string `json:"refId"`
	Expr         string `json:"expr"`
	LegendFormat string `json:"legendFormat"`
	Datasource   *dsRef `json:"datasource"`
}

type fieldConfig struct {
	Defaults struct {
		Unit string `json:"unit"`
	} `json:"defaults"`
}

type templateVar struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Datasource *dsRef          `json:"datasource"`
}

// queryText is a query variable's PromQL: a string, or an object whose
// "query" holds it (the format of Grafana 10+).
func (v templateVar) queryText(t *testing.T) string {
	t.Helper()
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	require.NoError(t, json.Unmarshal(v.Query, &o), "variable %s: query %s is neither a string nor an object", v.Name, v.Query)
	return o.Query
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(b, &d), "%s is not valid JSON", dashboardFile)
	return d
}

// allPanels flattens rows.
func (d dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// dashboardQueries is every PromQL expression of the dashboard, named for
// the error messages.
func dashboardQueries(t *testing.T, d dashboard) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			out[fmt.Sprintf("panel %q target %s", p.Title, tg.RefID)] = tg.Expr
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			out[fmt.Sprintf("variable %q", v.Name)] = v.queryText(t)
		}
	}
	return out
}

func TestGrafanaDashboard(t *testing.T) {
	d := loadDashboard(t)

	t.Run("identity", func(t *testing.T) {
		assert.Regexp(t, `^[a-zA-Z0-9_-]{1,40}$`, d.UID, "uid: got %q; want a Grafana uid (at most 40 of [a-zA-Z0-9_-])", d.UID)
		assert.NotEmpty(t, d.Title, "title")
		assert.GreaterOrEqual(t, d.SchemaVersion, 36, "schemaVersion: got %d; want 36 or more (datasource objects)", d.SchemaVersion)
		assert.Nil(t, d.ID, "id: got %v; want null so that an import creates a new dashboard", d.ID)
	})

	t.Run("a Prometheus data source variable that every query uses", func(t *testing.T) {
		var ds *templateVar
		for i, v := range d.Templating.List {
			if v.Type == "datasource" {
				ds = &d.Templating.List[i]
			}
		}
		require.NotNil(t, ds, "templating.list: got no variable of type datasource; want one")
		assert.Equal(t, "datasource", ds.Name, "data source variable name: got %q; want datasource", ds.Name)
		assert.Equal(t, "prometheus", ds.queryText(t), "data source variable query: got %q; want prometheus", ds.queryText(t))

		want := "${datasource}"
		for _, v := range d.Templating.List {
			if v.Type == "query" {
				if assert.NotNil(t, v.Datasource, "variable %s has no datasource", v.Name) {
					assert.Equal(t, want, v.Datasource.UID, "variable %s datasource uid: got %q; want %q", v.Name, v.Datasource.UID, want)
				}
			}
		}
		for _, p := range d.allPanels() {
			if p.Type == "row" {
				continue
			}
			if assert.NotNil(t, p.Datasource, "panel %q has no datasource", p.Title) {
				assert.Equal(t, "prometheus", p.Datasource.Type, "panel %q datasource type: got %q; want prometheus", p.Title, p.Datasource.Type)
				assert.Equal(t, want, p.Datasource.UID, "panel %q datasource uid: got %q; want %q", p.Title, p.Datasource.UID, want)
			}
			for _, tg := range p.Targets {
				if tg.Datasource != nil {
					assert.Equal(t, want, tg.Datasource.UID, "panel %q target %s datasource uid: got %q; want %q", p.Title, tg.RefID, tg.Datasource.UID, want)
				}
			}
		}
	})

	t.Run("panels have ids, positions and targets", func(t *testing.T) {
		ids := map[int]string{}
		for _, p := range d.allPanels() {
			assert.NotEmpty(t, p.Title, "panel %d has no title", p.ID)
			assert.NotEmpty(t, p.Type, "panel %q has no type", p.Title)
			if prev, dup := ids[p.ID]; dup || p.ID == 0 {
				t.Errorf("panel %q: id %d; want a unique non-zero id (also used by %q)", p.Title, p.ID, prev)
			}
			ids[p.ID] = p.Title
			if assert.NotNil(t, p.GridPos, "panel %q has no gridPos", p.Title) {
				g := p.GridPos
				assert.True(t, g.W > 0 && g.H > 0 && g.X >= 0 && g.X+g.W <= 24, "panel %q gridPos: got %+v; want inside the 24-column grid", p.Title, *g)
			}
			if p.Type == "row" {
				continue
			}
			if assert.NotEmpty(t, p.Targets, "panel %q has no targets", p.Title) {
				refs := map[string]bool{}
				for _, tg := range p.Targets {
					assert.NotEmpty(t, strings.TrimSpace(tg.Expr), "panel %q target %s has no expr", p.Title, tg.RefID)
					assert.False(t, refs[tg.RefID] || tg.RefID == "", "panel %q: refId %q; want unique and non-empty", p.Title, tg.RefID)
					refs[tg.RefID] = true
				}
			}
		}
	})

	t.Run("shows what an operator needs", func(t *testing.T) {
		queries := dashboardQueries(t, d)
		all := strings.Join(slices.Collect(maps.Values(queries)), "\n")
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`rate\(orchestrator_requests_total\{`),                            // request rate
			regexp.MustCompile(`orchestrator_requests_total\{[^}]*status=~"5\.\."`),              // error rate
			regexp.MustCompile(`orchestrator_circuit_breaker_state`),                             // breaker state
			regexp.MustCompile(`orchestrator_endpoint_health\b`),                                 // health
			regexp.MustCompile(`orchestrator_config_reloads_total`),                              // config reloads
			regexp.MustCompile(`label_values\(orchestrator_[a-z_]+(\{[^}]*\})?, *endpoint\)`),    // endpoint variable
			regexp.MustCompile(`sum by \(endpoint\) \(rate\(orchestrator_requests_total\{[^}]*`), // per endpoint
		} {
			assert.Regexp(t, want, all, "no dashboard query matches %s", want)
		}
		for _, q := range []string{"0.5", "0.95", "0.99"} {
			want := regexp.MustCompile(`histogram_quantile\(` + regexp.QuoteMeta(q) +
				`, *sum by \((endpoint, *le|le, *endpoint)\) \(rate\(orchestrator_request_duration_seconds_bucket\{`)
			assert.Regexp(t, want, all, "no per-endpoint p%s latency query", strings.TrimPrefix(q, "0."))
		}
		for name, q := range queries {
			assertBalanced(t, name, q)
		}
	})
}

// assertBalanced catches the commonest PromQL typo: unbalanced brackets.
func assertBalanced(t *testing.T, name, expr string) {
	t.Helper()
	stripped := quoted.ReplaceAllString(expr, `""`)
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	for _, r := range stripped {
		switch r {
		case '(', '[', '{':
			stack = append(stack, r)
		case ')', ']', '}':
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				t.Errorf("%s: unbalanced %q in %s", name, r, expr)
				return
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) != 0 {
		t.Errorf("%s: unclosed %q in %s", name, string(stack), expr)
	}
}

// ---- the Prometheus rules ----------------------------------------------------

type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(alertsFile)
	require.NoError(t, err)
	var f ruleFile
	require.NoError(t, yaml.UnmarshalWithOptions(b, &f, yaml.Strict()), "%s is not a Prometheus rule file", alertsFile)
	return f
}

// promDuration is Prometheus's duration syntax, such as 1m or 1h30m.
var promDuration = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)

func TestPrometheusAlerts(t *testing.T) {
	f := loadRules(t)
	require.NotEmpty(t, f.Groups, "%s: no rule groups", alertsFile)

	alerts := map[string]rule{}
	groups := map[string]bool{}
	for _, g := range f.Groups {
		assert.NotEmpty(t, g.Name, "a rule group has no name")
		assert.False(t, groups[g.Name], "group %q: got it twice; want unique group names", g.Name)
		groups[g.Name] = true
		assert.NotEmpty(t, g.Rules, "group %q has no rules", g.Name)
		for _, r := range g.Rules {
			if !assert.NotEmpty(t, r.Alert, "group %q: a rule without alert (recording rules do not belong here)", g.Name) {
				continue
			}
			assert.Regexp(t, `^[A-Z][A-Za-z0-9]+$`, r.Alert, "alert name")
			_, dup := alerts[r.Alert]
			assert.False(t, dup, "alert %s: got it twice; want unique alert names", r.Alert)
			alerts[r.Alert] = r
			assert.NotEmpty(t, strings.TrimSpace(r.Expr), "alert %s has no expr", r.Alert)
			assertBalanced(t, "alert "+r.Alert, r.Expr)
			assert.Regexp(t, promDuration, r.For, "alert %s for: got %q; want a Prometheus duration", r.Alert, r.For)
			assert.Contains(t, []string{"critical", "warning", "info"}, r.Labels["severity"], "alert %s severity label: got %q; want critical, warning or info", r.Alert, r.Labels["severity"])
			assert.NotEmpty(t, r.Annotations["summary"], "alert %s has no summary annotation", r.Alert)
			assert.NotEmpty(t, r.Annotations["description"], "alert %s has no description annotation", r.Alert)
		}
	}

	// The alerts docs/DESIGN.md's states call for, by what they test rather than
	// by name.
	find := func(what string, match func(r rule) bool) (rule, bool) {
		t.Helper()
		for _, r := range alerts {
			if match(r) {
				return r, true
			}
		}
		t.Errorf("got no alert for %s in %s; want one", what, alertsFile)
		return rule{}, false
	}
	space := regexp.MustCompile(`\s+`)
	norm := func(s string) string { return space.ReplaceAllString(strings.TrimSpace(s), " ") }

	if open, ok := find("a breaker open for a minute", func(r rule) bool {
		return regexp.MustCompile(`orchestrator_circuit_breaker_state\s*(==|>=)\s*2\b`).MatchString(r.Expr)
	}); ok {
		assert.Equal(t, "1m", open.For, "breaker-open alert for: got %q; want 1m", open.For)
	}

	if unhealthy, ok := find("an unhealthy endpoint", func(r rule) bool {
		return regexp.MustCompile(`orchestrator_endpoint_health\s*(==\s*0|<\s*1)\b`).MatchString(r.Expr)
	}); ok {
		d, err := time.ParseDuration(unhealthy.For)
		if assert.NoError(t, err, "unhealthy alert for: got %q; want a duration", unhealthy.For) {
			assert.GreaterOrEqual(t, d, 2*time.Minute, "unhealthy alert for: got %v; want some minutes", d)
		}
	}

	if errRate, ok := find("a 5xx rate above 5% per endpoint", func(r rule) bool {
		return strings.Contains(r.Expr, `orchestrator_requests_total{status=~"5.."}`)
	}); ok {
		e := norm(errRate.Expr)
		assert.Regexp(t, `sum by \((instance, )?endpoint\) \(rate\(orchestrator_requests_total\{status=~"5\.\."\}\[\w+\]\)\) / sum by \((instance, )?endpoint\) \(rate\(orchestrator_requests_total\[\w+\]\)\)`, e,
			"the 5xx alert: got %q; want 5xx divided by all requests per endpoint", e)
		assert.Regexp(t, `> 0\.05$`, e, "the 5xx alert threshold: got %q; want > 0.05", e)
	}
	for name, r := range alerts {
		for _, text := range r.Annotations {
			assert.NotContains(t, text, "{{$labels", "alert %s: template spacing", name)
			for _, m := range regexp.MustCompile(`\$labels\.([a-z_]+)`).FindAllStringSubmatch(text, -1) {
				assert.Contains(t, []string{"endpoint", "instance", "job", "result"}, m[1], "alert %s annotation uses label %s", name, m[1])
			}
		}
	}
}

// TestPrometheusConfig checks that the sample Prometheus config loads the
// alert rules beside it and scrapes /metrics.
func TestPrometheusConfig(t *testing.T) {
	b, err := os.ReadFile("prometheus/prometheus.yml")
	require.NoError(t, err)
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	require.NoError(t, yaml.Unmarshal(b, &cfg))
	for _, f := range cfg.RuleFiles {
		_, err := os.Stat(filepath.Join("prometheus", f))
		assert.NoError(t, err, "rule_files names %s: got no such file beside prometheus.yml", f)
	}
	assert.Contains(t, cfg.RuleFiles, filepath.Base(alertsFile), "rule_files: got %v; want the alert rules", cfg.RuleFiles)
	require.Len(t, cfg.ScrapeConfigs, 1, "scrape_configs: got %d; want 1", len(cfg.ScrapeConfigs))
	sc := cfg.ScrapeConfigs[0]
	assert.Equal(t, "/metrics", sc.MetricsPath, "metrics_path: got %q; want /metrics", sc.MetricsPath)
	require.NotEmpty(t, sc.StaticConfigs, "static_configs")
	assert.NotEmpty(t, sc.StaticConfigs[0].Targets, "targets")
}

// ---- every metric exists -----------------------------------------------------

var (
	// metricName finds the orchestrator metrics of a PromQL expression.
	metricName = regexp.MustCompile(`\borchestrator_[a-zA-Z0-9_]*[a-zA-Z0-9]`)
	// selector is a metric with its label matchers.
	selector = regexp.MustCompile(`\b(orchestrator_[a-zA-Z0-9_]*)\s*\{([^}]*)\}`)
	matcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`)
	byClause = regexp.MustCompile(`\b(?:by|without|on|ignoring)\s*\(([^)]*)\)`)
	// quoted is a PromQL string, stripped before looking for names.
	quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	// targetLabels are added by Prometheus when it scrapes.
	targetLabels = []string{"instance", "job"}
)

// exposition is what a /metrics answer holds: every sample name with the
// label names seen on it, histogram families included under their own
// name (orchestrator_request_duration_seconds for its _bucket, _sum and
// _count samples).
type exposition map[string]map[string]bool

func parseExposition(t *testing.T, r io.Reader) exposition {
	t.Helper()
	out := exposition{}
	add := func(name string, labels []string) {
		if out[name] == nil {
			out[name] = map[string]bool{}
		}
		for _, l := range labels {
			out[name][l] = true
		}
	}
	line := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? \S+`)
	label := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		text := sc.Text()
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		m := line.FindStringSubmatch(text)
		require.NotNil(t, m, "exposition line %q", text)
		var labels []string
		for _, l := range label.FindAllStringSubmatch(quotedValue.ReplaceAllString(m[3], `"`), -1) {
			labels = append(labels, l[1])
		}
		add(m[1], labels)
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if family, ok := strings.CutSuffix(m[1], suffix); ok {
				add(family, labels)
			}
		}
	}
	require.NoError(t, sc.Err())
	return out
}

// quotedValue is a label value in the exposition, so that a value holding
// `x="` is not taken for a label.
var quotedValue = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// metricsOf returns the distinct orchestrator metric names of expr.
func metricsOf(expr string) []string {
	names := metricName.FindAllString(quoted.ReplaceAllString(expr, `""`), -1)
	slices.Sort(names)
	return slices.Compact(names)
}

// checkAgainst checks every metric and label an expression uses against a
// live exposition.
func checkAgainst(t *testing.T, exp exposition, name, expr string) {
	t.Helper()
	stripped := quoted.ReplaceAllString(expr, `""`)
	names := metricsOf(expr)
	if !strings.Contains(expr, "label_values") {
		assert.NotEmpty(t, names, "%s queries no orchestrator_ metric: %s", name, expr)
	}
	known := map[string]bool{}
	for _, l := range targetLabels {
		known[l] = true
	}
	for _, n := range names {
		labels, ok := exp[n]
		if !ok {
			t.Errorf("%s queries %s: got no such series or histogram family in a live /metrics; want every queried metric exposed", name, n)
			continue
		}
		for l := range labels {
			known[l] = true
		}
	}
	for _, m := range selector.FindAllStringSubmatch(stripped, -1) {
		labels := exp[m[1]]
		for _, lm := range matcher.FindAllStringSubmatch(m[2], -1) {
			if slices.Contains(targetLabels, lm[1]) || labels == nil {
				continue
			}
			assert.True(t, labels[lm[1]], "%s: %s{%s=...}: /metrics has no such label on %s; got labels %v", name, m[1], lm[1], m[1], keys(labels))
		}
	}
	for _, m := range byClause.FindAllStringSubmatch(stripped, -1) {
		for _, l := range strings.Split(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				assert.True(t, known[l], "%s: groups by %q, a label none of its metrics has (%v)", name, l, names)
			}
		}
	}
}

func TestObservabilityMetricsExist(t *testing.T) {
	if testing.Short() {
		t.Skip("runs orchestratord in-process; skipped in -short mode")
	}
	exp := liveExposition(t)

	// The samples the alerts rely on, with the meaning they assume.
	t.Run("the exposition says what the alerts assume", func(t *testing.T) {
		assert.True(t, exp["orchestrator_requests_total"]["status"], "orchestrator_requests_total has a status label")
		assert.True(t, exp["orchestrator_request_duration_seconds_bucket"]["le"], "the duration histogram has le buckets")
		assert.True(t, exp["orchestrator_config_reloads_total"]["result"], "orchestrator_config_reloads_total has a result label")
	})

	t.Run("dashboard", func(t *testing.T) {
		queries := dashboardQueries(t, loadDashboard(t))
		require.NotEmpty(t, queries)
		for name, q := range queries {
			checkAgainst(t, exp, name, q)
		}
	})
	t.Run("alerts", func(t *testing.T) {
		f := loadRules(t)
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				checkAgainst(t, exp, "alert "+r.Alert, r.Expr)
			}
		}
	})
}

// TestExtractMetricNames pins the extraction the checks above rely on.
func TestExtractMetricNames(t *testing.T) {
	got := metricsOf(`histogram_quantile(0.95, sum by (endpoint, le) (rate(orchestrator_request_duration_seconds_bucket{endpoint=~"orchestrator_fake"}[5m])))
/ on(endpoint) orchestrator_endpoint_health`)
	want := []string{"orchestrator_endpoint_health", "orchestrator_request_duration_seconds_bucket"}
	assert.Equal(t, want, got, "got %v; want %v", got, want)

	exp := parseExposition(t, strings.NewReader(`# TYPE x counter
orchestrator_request_duration_seconds_bucket{endpoint="a",le="0.1"} 1
orchestrator_request_duration_seconds_sum{endpoint="a"} 0.05
orchestrator_requests_total{endpoint="a",method="GET",status="200"} 3
`))
	assert.True(t, exp["orchestrator_request_duration_seconds"]["le"], "the family name carries its buckets' labels")
	assert.True(t, exp["orchestrator_requests_total"]["status"])
	assert.Nil(t, exp["orchestrator_nope"])
}

// liveExposition runs orchestratord in-process (internal/server.Run, as
// cmd/orchestratord does) in front of a loopback backend, sends traffic that
// creates the lazily created series (a 200, a 500, an unrouted 404, a
// breaker trip and the 503 behind it) and returns its /metrics.
func liveExposition(t *testing.T) exposition {
	t.Helper()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/fail") {
			http.Error(w, "failing on purpose", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(backend.Close)

	config := testutil.ConfigFile(t, fmt.Sprintf(`server:
  host: 127.0.0.1
logging:
  level: error
health_check:
  interval: 3600
endpoints:
  - name: svc
    version: v1
    url: "%s/svc"
    health_check_path: /health
`, backend.URL))

	var stdout, stderr testutil.LogBuffer
	ready := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Options{
			ConfigPath: config, Host: "127.0.0.1", Port: "0",
			Stdout: &stdout, Stderr: &stderr,
			Ready: func(main, _ net.Addr) { ready <- main },
		})
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err, "server.Run at shutdown: got %v; want nil", err)
		case <-time.After(30 * time.Second):
			t.Error("server.Run did not return within 30s of its context ending")
		}
	}
	t.Cleanup(stop)

	var base string
	select {
	case addr := <-ready:
		base = "http://" + addr.String()
	case err := <-done:
		stopped = true
		cancel()
		t.Fatalf("server.Run: got %v before serving; want it serving\nstderr:\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("server.Run not serving after 30s\nstderr:\n%s", stderr.String())
	}

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	send := func(method, path string, want int) string {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		require.NoError(t, err)
		resp, err := client.Do(req)
		require.NoError(t, err, "%s %s", method, path)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, want, resp.StatusCode, "%s %s: got %d; want %d; body %s", method, path, resp.StatusCode, want, body)
		return string(body)
	}
	send(http.MethodGet, "/orchestrator/svc/v1/ok", http.StatusOK)
	send(http.MethodGet, "/orchestrator/svc/v1/fail", http.StatusInternalServerError)
	send(http.MethodGet, "/orchestrator/nope/v1/x", http.StatusNotFound)
	send(http.MethodPost, "/circuit-breaker/trip/svc_v1", http.StatusOK)
	send(http.MethodGet, "/orchestrator/svc/v1/ok", http.StatusServiceUnavailable)
	text := send(http.MethodGet, "/metrics", http.StatusOK)

	// The values the alerts test for, as the tripped breaker sets them.
	assert.Contains(t, text, `orchestrator_circuit_breaker_state{endpoint="svc_v1"} 2`+"\n", "an open breaker reads 2")
	assert.Regexp(t, `(?m)^orchestrator_requests_total\{endpoint="svc_v1",method="GET",status="5\d\d"\} [1-9]`, text, "5xx answers are counted with their status")
	assert.Regexp(t, `(?m)^orchestrator_config_reloads_total\{result="(success|failure)"\} `, text)
	return parseExposition(t, strings.NewReader(text))
}
