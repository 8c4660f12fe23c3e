package orchestrator_test

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

func TestTargetAndRetryMetrics(t *testing.T) {
	bs := mtBackends(t, 2, http.StatusOK)
	refused := testutil.RefusedURL(t)
	ep := orchestrator.Endpoint{Name: "svc",
		Targets:          append(mtTargets(bs), orchestrator.Target{ID: "gone", URL: refused}),
		OutlierDetection: &orchestrator.OutlierDetectionConfig{ConsecutiveFailures: intp(1), BaseEjectionTime: polDuration(time.Hour), MaxEjectionPercent: 50},
		Retry:            &orchestrator.RetryConfig{Attempts: 1, Backoff: polDuration(time.Millisecond)}}
	o := obsNew(t, orchestrator.WithEndpoints(ep))
	for range 6 {
		obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/svc/x", nil), http.StatusOK)
	}
	s := obsScrapeOf(t, o)
	// Round robin sent the third request to "gone", which refused it: a
	// retry went to b0, and "gone" was ejected.
	s.expect(t, 1, "orchestrator_target_requests_total", "endpoint", "svc", "target", "gone")
	s.expect(t, 1, "orchestrator_target_upstream_errors_total", "endpoint", "svc", "target", "gone", "kind", "refused")
	s.expect(t, 0, "orchestrator_target_upstream_errors_total", "endpoint", "svc", "target", "b0", "kind", "refused")
	s.expect(t, 1, "orchestrator_target_ejections_total", "endpoint", "svc", "target", "gone")
	s.expect(t, 0, "orchestrator_target_eligible", "endpoint", "svc", "target", "gone")
	s.expect(t, 1, "orchestrator_target_eligible", "endpoint", "svc", "target", "b0")
	assert.Equal(t, 6.0, s.value(t, "orchestrator_target_requests_total", "endpoint", "svc", "target", "b0")+s.value(t, "orchestrator_target_requests_total", "endpoint", "svc", "target", "b1"))
	s.expect(t, 1, "orchestrator_retried_requests_total", "endpoint", "svc", "outcome", "succeeded")
	s.expect(t, 0, "orchestrator_retried_requests_total", "endpoint", "svc", "outcome", "exhausted")
	assert.Equal(t, 1.0, s.value(t, "orchestrator_retry_attempts_total", "endpoint", "svc", "target", "b0")+s.value(t, "orchestrator_retry_attempts_total", "endpoint", "svc", "target", "b1"))
	s.expect(t, 0, "orchestrator_retry_budget_exceeded_total", "endpoint", "svc")

	obsRequireCleanExposition(t, o)

	// A reload that removes a target drops its series.
	ep.Targets = ep.Targets[:2]
	require.NoError(t, o.Sync(t.Context(), orchestrator.SourceConfig, []orchestrator.Endpoint{ep}))
	s = obsScrapeOf(t, o)
	assert.Empty(t, s.where("target", "gone"))
	s.expect(t, 1, "orchestrator_target_eligible", "endpoint", "svc", "target", "b0")
}

// TestTheURLShorthandHasNoNewSeries: a seed user's exposition gains no
// family from targets or retries.
func TestTheURLShorthandHasNoNewSeries(t *testing.T) {
	o := obsNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: obsBackend(t).URL}))
	obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/svc/x", nil), http.StatusOK)
	var b bytes.Buffer
	o.WritePrometheus(&b)
	for _, family := range []string{"orchestrator_target_", "orchestrator_retr", "orchestrator_rate_limited", "orchestrator_load_shed", "orchestrator_adaptive"} {
		assert.False(t, strings.Contains(b.String(), family), "the url shorthand shows %s families:\n%s", family, b.String())
	}
}

// The rate limit's refusals are counted, only for endpoints with a limit,
// and the exposition stays clean for promtool.
func TestRateLimitedIsCounted(t *testing.T) {
	o := obsNew(t, orchestrator.WithEndpoints(
		orchestrator.Endpoint{Name: "svc", URL: obsBackend(t).URL, RateLimit: &orchestrator.RateLimits{{RequestsPerSecond: 0.001, Burst: 1}}},
		orchestrator.Endpoint{Name: "free", URL: obsBackend(t).URL},
	))
	obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/svc/x", nil), http.StatusOK)
	for range 2 {
		obsRequireCode(t, obsServe(o, http.MethodGet, "/orchestrator/svc/x", nil), http.StatusTooManyRequests)
	}
	s := obsScrapeOf(t, o)
	s.expect(t, 2, "orchestrator_rate_limited_total", "endpoint", "svc")
	for _, smp := range s.named("orchestrator_rate_limited_total") {
		assert.Equal(t, "svc", smp.labels["endpoint"], "a series for an endpoint without a limit")
	}
	obsRequireCleanExposition(t, o)
}

// obsRequireCleanExposition checks o's exposition: HELP and TYPE for every
// family, and nothing promtool objects to but the tolerated lints.
func obsRequireCleanExposition(t *testing.T, o *orchestrator.Orchestrator) {
	t.Helper()
	var b bytes.Buffer
	o.WritePrometheus(&b)
	assert.Empty(t, testutil.ExpositionMetadataProblems(b.String()))
	findings, _ := runPromtoolCheck(t, testutil.Promtool(t), b.String())
	for _, f := range findings {
		if !slices.Contains(promtoolToleratedLints, f) {
			t.Errorf("promtool check metrics: %q", f)
		}
	}
}
