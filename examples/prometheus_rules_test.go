package examples_test

// The alert rules are checked by promtool itself (Debian's prometheus
// package): `promtool check rules` parses them and `promtool test rules`
// runs the unit tests of prometheus/alerts_test.yaml, which fire every
// alert on synthetic series and keep it silent on healthy ones. The tests
// here also check, without promtool, that every alert has both kinds of
// unit test, and that the dashboard's process panels query what the
// gateway exposes.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	alertsTestFile  = "prometheus/alerts_test.yaml"
	promtoolTimeout = 2 * time.Minute
)

// runPromtool runs promtool with args in the test's directory and fails the
// test, with promtool's output, unless it exits 0.
func runPromtool(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), promtoolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	command := "promtool " + strings.Join(args, " ")
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("%s: still running after %v\n%s", command, promtoolTimeout, out)
	}
	if err != nil {
		t.Fatalf("%s: %v; want exit status 0\n%s", command, err, out)
	}
	t.Logf("%s:\n%s", command, out)
	return string(out)
}

func TestPrometheusRulesPromtool(t *testing.T) {
	bin := testutil.Promtool(t)

	t.Run("check rules", func(t *testing.T) {
		runPromtool(t, bin, "check", "rules", alertsFile)
	})
	t.Run("test rules", func(t *testing.T) {
		runPromtool(t, bin, "test", "rules", alertsTestFile)
	})

	// The dashboard's queries, with Grafana's variables filled in, as
	// recording rules: promtool parses each one as PromQL.
	t.Run("the dashboard queries parse", func(t *testing.T) {
		vars := strings.NewReplacer(
			"$__rate_interval", "5m",
			"$__interval", "1m",
			"$__range", "1h",
			"$instance", ".*",
			"$endpoint", ".*",
		)
		queries := dashboardQueries(t, loadDashboard(t))
		names := slices.Sorted(maps.Keys(queries))
		type recording struct {
			Record string `yaml:"record"`
			Expr   string `yaml:"expr"`
		}
		var rules []recording
		var index strings.Builder
		for i, name := range names {
			q := queries[name]
			if strings.HasPrefix(strings.TrimSpace(q), "label_values(") {
				continue // a Grafana function, not PromQL
			}
			record := fmt.Sprintf("dashboard:query_%d", i)
			rules = append(rules, recording{Record: record, Expr: vars.Replace(q)})
			fmt.Fprintf(&index, "%s: %s\n", record, name)
		}
		require.NotEmpty(t, rules)
		b, err := yaml.Marshal(map[string]any{
			"groups": []map[string]any{{"name": "dashboard", "rules": rules}},
		})
		require.NoError(t, err)
		file := filepath.Join(t.TempDir(), "dashboard-queries.yaml")
		require.NoError(t, os.WriteFile(file, b, 0o600))
		t.Logf("recording rules of %s:\n%s", dashboardFile, index.String())
		runPromtool(t, bin, "check", "rules", file)
	})
}

// promtoolTests is the unit test file format of `promtool test rules`.
// Strict decoding catches a misspelt key (exp_alert), which would
// otherwise read as a test that expects silence.
type promtoolTests struct {
	RuleFiles          []string        `yaml:"rule_files"`
	EvaluationInterval string          `yaml:"evaluation_interval"`
	GroupEvalOrder     []string        `yaml:"group_eval_order"`
	Tests              []promtoolGroup `yaml:"tests"`
}

type promtoolGroup struct {
	Name           string            `yaml:"name"`
	Interval       string            `yaml:"interval"`
	ExternalLabels map[string]string `yaml:"external_labels"`
	ExternalURL    string            `yaml:"external_url"`
	InputSeries    []struct {
		Series string `yaml:"series"`
		Values string `yaml:"values"`
	} `yaml:"input_series"`
	AlertRuleTests []struct {
		EvalTime  string `yaml:"eval_time"`
		Alertname string `yaml:"alertname"`
		ExpAlerts []struct {
			ExpLabels      map[string]string `yaml:"exp_labels"`
			ExpAnnotations map[string]string `yaml:"exp_annotations"`
		} `yaml:"exp_alerts"`
	} `yaml:"alert_rule_test"`
	PromQLExprTests []any `yaml:"promql_expr_test"`
}

// TestPrometheusAlertsUnitTested checks, without promtool, that
// alerts_test.yaml tests every alert of alerts.yaml both ways: firing (a
// non-empty exp_alerts) and silent (an empty one).
func TestPrometheusAlertsUnitTested(t *testing.T) {
	b, err := os.ReadFile(alertsTestFile)
	require.NoError(t, err)
	var f promtoolTests
	require.NoError(t, yaml.UnmarshalWithOptions(b, &f, yaml.Strict()), "%s is not a promtool unit test file", alertsTestFile)

	assert.Equal(t, []string{filepath.Base(alertsFile)}, f.RuleFiles, "%s rule_files: got %v; want the rules beside it", alertsTestFile, f.RuleFiles)
	assert.Regexp(t, promDuration, f.EvaluationInterval, "evaluation_interval")
	require.NotEmpty(t, f.Tests, "%s: no tests", alertsTestFile)

	alerts := map[string]rule{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts[r.Alert] = r
			}
		}
	}
	require.NotEmpty(t, alerts, "%s: no alerts", alertsFile)

	fires, silent := map[string]int{}, map[string]int{}
	for _, g := range f.Tests {
		assert.NotEmpty(t, g.Name, "a test group has no name")
		assert.NotEmpty(t, g.InputSeries, "test %q has no input_series", g.Name)
		for _, s := range g.InputSeries {
			assert.NotEmpty(t, s.Series, "test %q: an input series has no name", g.Name)
			assert.NotEmpty(t, s.Values, "test %q: %s has no values", g.Name, s.Series)
		}
		for _, at := range g.AlertRuleTests {
			r, ok := alerts[at.Alertname]
			if !assert.True(t, ok, "test %q: alertname %q is not an alert of %s (promtool would expect silence from it and pass)", g.Name, at.Alertname, alertsFile) {
				continue
			}
			assert.Regexp(t, promDuration, at.EvalTime, "test %q alert %s eval_time", g.Name, at.Alertname)
			if len(at.ExpAlerts) == 0 {
				silent[at.Alertname]++
				continue
			}
			fires[at.Alertname]++
			for _, e := range at.ExpAlerts {
				assert.Equal(t, r.Labels["severity"], e.ExpLabels["severity"], "test %q alert %s: exp_labels severity", g.Name, at.Alertname)
				assert.NotEmpty(t, e.ExpAnnotations["summary"], "test %q alert %s: exp_annotations has no summary (promtool compares them)", g.Name, at.Alertname)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(alerts)) {
		assert.Positive(t, fires[name], "alert %s: no alert_rule_test in %s expects it to fire (non-empty exp_alerts)", name, alertsTestFile)
		assert.Positive(t, silent[name], "alert %s: no alert_rule_test in %s expects it silent (exp_alerts: [])", name, alertsTestFile)
	}
}

func TestPrometheusP99LatencyAlert(t *testing.T) {
	var p99 *rule
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "OrchestratorEndpointHighLatencyP99" {
				p99 = &r
			}
		}
	}
	require.NotNil(t, p99, "%s: no alert OrchestratorEndpointHighLatencyP99", alertsFile)
	e := regexp.MustCompile(`\s+`).ReplaceAllString(strings.TrimSpace(p99.Expr), " ")
	// The gateway's histogram has Prometheus le buckets (not VictoriaMetrics
	// vmrange ones), one set per endpoint.
	assert.Regexp(t, `^histogram_quantile\(0\.99, ?sum by \((instance, endpoint, le|endpoint, instance, le|instance, le, endpoint|le, instance, endpoint|endpoint, le, instance|le, endpoint, instance)\) \(rate\(orchestrator_request_duration_seconds_bucket\[\w+\]\)\) ?\) > [0-9.]+$`, e,
		"p99 alert expr: got %q; want the p99 of the request-duration buckets per instance and endpoint over a threshold", e)
	d, err := time.ParseDuration(p99.For)
	if assert.NoError(t, err, "p99 alert for: %q", p99.For) {
		assert.GreaterOrEqual(t, d, 5*time.Minute, "p99 alert for: got %v; want some minutes", d)
	}
}

// systemPanels are the process panels of the dashboard, by a query each
// must hold.
var systemPanels = []struct {
	what  string
	query *regexp.Regexp
	unit  string // "" for any
}{
	{"process CPU", regexp.MustCompile(`\brate\(process_cpu_seconds_total\{`), ""},
	{"resident memory", regexp.MustCompile(`\bprocess_resident_memory_bytes\b`), "bytes"},
	{"goroutines", regexp.MustCompile(`\bgo_goroutines\b`), ""},
	{"GC pauses", regexp.MustCompile(`\bgo_gc_duration_seconds(_sum)?\b`), "s"},
	{"GC cycles", regexp.MustCompile(`\brate\(go_gc_duration_seconds_count\{`), ""},
	{"open file descriptors", regexp.MustCompile(`\bprocess_open_fds\b`), ""},
	{"the file descriptor limit", regexp.MustCompile(`\bprocess_max_fds\b`), ""},
}

func TestGrafanaSystemPanels(t *testing.T) {
	d := loadDashboard(t) // fails unless the file is JSON

	ids := map[int]string{}
	for _, p := range d.allPanels() {
		if prev, dup := ids[p.ID]; dup || p.ID == 0 {
			t.Errorf("panel %q: id %d; want a unique non-zero id (also used by %q)", p.Title, p.ID, prev)
		}
		ids[p.ID] = p.Title
	}

	// No two panels overlap on the 24-column grid.
	top := d.Panels
	for i, a := range top {
		for _, b := range top[i+1:] {
			if a.GridPos == nil || b.GridPos == nil {
				continue
			}
			ga, gb := *a.GridPos, *b.GridPos
			if ga.X < gb.X+gb.W && gb.X < ga.X+ga.W && ga.Y < gb.Y+gb.H && gb.Y < ga.Y+ga.H {
				t.Errorf("panels %q %+v and %q %+v overlap", a.Title, ga, b.Title, gb)
			}
		}
	}

	for _, want := range systemPanels {
		var found []panel
		for _, p := range d.allPanels() {
			for _, tg := range p.Targets {
				if want.query.MatchString(tg.Expr) {
					found = append(found, p)
					break
				}
			}
		}
		if !assert.NotEmpty(t, found, "%s: no panel has a query matching %s", want.what, want.query) {
			continue
		}
		for _, p := range found {
			if want.unit != "" && assert.NotNil(t, p.FieldConf, "panel %q has no fieldConfig", p.Title) {
				assert.Equal(t, want.unit, p.FieldConf.Defaults.Unit, "panel %q (%s) unit", p.Title, want.what)
			}
			// The go_ and process_ series of every program Prometheus
			// scrapes match instance=~".*" (the instance variable's All):
			// each query keeps the gateway's targets only.
			for _, tg := range p.Targets {
				assert.Regexp(t, `\band on ?\((job, ?instance|instance, ?job|instance)\) ?orchestrator_[a-z_]+`, tg.Expr,
					"panel %q target %s: got %q; want it limited to the targets that export orchestrator_ series", p.Title, tg.RefID, tg.Expr)
			}
		}
	}
	fds := regexp.MustCompile(`\bprocess_open_fds\b`)
	limit := regexp.MustCompile(`\bprocess_max_fds\b`)
	for _, p := range d.allPanels() {
		var hasOpen, hasMax bool
		for _, tg := range p.Targets {
			hasOpen = hasOpen || fds.MatchString(tg.Expr)
			hasMax = hasMax || limit.MatchString(tg.Expr)
		}
		if hasOpen {
			assert.True(t, hasMax, "panel %q shows process_open_fds without process_max_fds, the limit", p.Title)
		}
	}
}

// runtimeMetric finds the Go runtime and process metrics of a PromQL
// expression.
var runtimeMetric = regexp.MustCompile(`\b(?:go|process)_[a-zA-Z0-9_]*[a-zA-Z0-9]`)

// TestObservabilityRuntimeMetricsExist looks up every go_ and process_
// metric the dashboard and the alerts query in the /metrics of a running
// orchestratord, as TestObservabilityMetricsExist does for the
// orchestrator_ ones.
func TestObservabilityRuntimeMetricsExist(t *testing.T) {
	if testing.Short() {
		t.Skip("runs orchestratord in-process; skipped in -short mode")
	}
	queries := dashboardQueries(t, loadDashboard(t))
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			queries["alert "+r.Alert] = r.Expr
		}
	}
	used := map[string][]string{} // metric -> the queries that use it
	for name, q := range queries {
		for _, m := range runtimeMetric.FindAllString(quoted.ReplaceAllString(q, `""`), -1) {
			used[m] = append(used[m], name)
		}
	}
	require.NotEmpty(t, used, "the dashboard queries no go_ or process_ metric")

	exp := liveExposition(t)
	for _, m := range slices.Sorted(maps.Keys(used)) {
		if _, ok := exp[m]; !ok {
			names := used[m]
			slices.Sort(names)
			t.Errorf("%s, queried by %s: got no such series in a live /metrics; want it exposed (VictoriaMetrics/metrics writes process_open_fds and process_max_fds only from metrics.WriteFDMetrics)",
				m, strings.Join(slices.Compact(names), ", "))
		}
	}
}
