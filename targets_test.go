package orchestrator_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/config"
)

func intp(n int) *int { return &n }

// TestTargetValidationNamesTheTarget: every problem of a target list is
// reported at endpoints[i].targets[j].field, all at once.
func TestTargetValidationNamesTheTarget(t *testing.T) {
	d := orchestrator.Desired{Endpoints: []orchestrator.Endpoint{
		{Name: "a", URL: "http://127.0.0.1:1"},
		{Name: "b", URL: "http://127.0.0.1:2"},
		{Name: "c", Targets: []orchestrator.Target{
			{URL: "http://127.0.0.1:3"},
			{URL: "ftp://127.0.0.1:4"},
			{URL: "http://127.0.0.1:3"},
			{URL: "http://127.0.0.1:5", Weight: intp(-1), ID: "-bad"},
			{URL: "http://127.0.0.1:6", TLS: &orchestrator.TargetTLS{CertFile: "c.pem"}},
			{URL: "http://127.0.0.1:7/x"},
			{URL: "http://127.0.0.1:7/y"},
		},
			LoadBalancing:    &orchestrator.LoadBalancingConfig{Policy: "hash", Sticky: &orchestrator.StickyConfig{Cookie: "a b", SameSite: "sometimes"}},
			OutlierDetection: &orchestrator.OutlierDetectionConfig{MaxEjectionPercent: 101},
			Retry:            &orchestrator.RetryConfig{Attempts: -1, On: []string{"connect_error", "5xx", "200"}},
		},
	}}
	fields := cfgFields(t, d.Validate())
	assert.ElementsMatch(t, []string{
		"endpoints[2].targets[1].url",
		"endpoints[2].targets[2].url",
		"endpoints[2].targets[2].id",
		"endpoints[2].targets[3].id",
		"endpoints[2].targets[3].weight",
		"endpoints[2].targets[4].tls",
		"endpoints[2].targets[4].tls",
		"endpoints[2].targets[6].id",
		"endpoints[2].load_balancing.hash_key",
		"endpoints[2].load_balancing.sticky.cookie",
		"endpoints[2].load_balancing.sticky.same_site",
		"endpoints[2].outlier_detection.max_ejection_percent",
		"endpoints[2].retry.attempts",
		"endpoints[2].retry.on[1]",
		"endpoints[2].retry.on[2]",
	}, fields)
}

func TestURLOrTargets(t *testing.T) {
	both := orchestrator.Endpoint{Name: "a", URL: "http://127.0.0.1:1", Targets: []orchestrator.Target{{URL: "http://127.0.0.1:2"}}}
	assert.Equal(t, []string{"targets"}, cfgFields(t, both.Validate()))
	neither := orchestrator.Endpoint{Name: "a"}
	assert.Equal(t, []string{"url"}, cfgFields(t, neither.Validate()))
}

func TestTargetIDDefaultsToHostPort(t *testing.T) {
	for url, want := range map[string]string{
		"http://127.0.0.1:8080/api": "127.0.0.1:8080",
		"http://127.0.0.1/api":      "127.0.0.1:80",
		"https://127.0.0.1":         "127.0.0.1:443",
		"http://[::1]:9/":           "[::1]:9",
		"https://[::1]/":            "[::1]:443",
	} {
		assert.Equal(t, want, orchestrator.Target{URL: url}.TargetID(), url)
	}
	assert.Equal(t, "a", orchestrator.Target{URL: "http://127.0.0.1:1", ID: "a"}.TargetID())
	ep := orchestrator.Endpoint{Name: "a", URL: "http://127.0.0.1:1"}
	require.Len(t, ep.TargetList(), 1)
	assert.Equal(t, "http://127.0.0.1:1", ep.TargetList()[0].URL)
}

// TestTargetsFromYAML: the config file takes targets and their sections,
// and reports a bad one at its line.
func TestTargetsFromYAML(t *testing.T) {
	c, err := config.Parse([]byte(`
endpoints:
  - name: users
    version: v1
    targets:
      - url: http://127.0.0.1:8080/api
        weight: 3
        id: a
      - url: https://127.0.0.1:8443/api
        weight: 0
        tls: {server_name: users.internal, insecure_skip_verify: true}
    load_balancing: {policy: hash, hash_key: "header:X-User-ID"}
    outlier_detection: {consecutive_failures: 3, base_ejection_time: 10s}
    retry: {attempts: 2, on: [connect_error, 503], max_replay_bytes: 1024}
`), "targets.yaml")
	require.NoError(t, err)
	ep := c.Endpoints[0]
	require.Len(t, ep.Targets, 2)
	assert.Equal(t, "a", ep.Targets[0].TargetID())
	assert.Equal(t, 3, *ep.Targets[0].Weight)
	assert.Equal(t, 0, *ep.Targets[1].Weight)
	assert.Equal(t, "127.0.0.1:8443", ep.Targets[1].TargetID())
	assert.Equal(t, "users.internal", ep.Targets[1].TLS.ServerName)
	assert.Equal(t, "header:X-User-ID", ep.LoadBalancing.HashKey)
	assert.Equal(t, 3, *ep.OutlierDetection.ConsecutiveFailures)
	assert.Equal(t, int64(1024), ep.Retry.MaxReplayBytes)

	_, err = config.Parse([]byte(`
endpoints:
  - name: users
    targets:
      - url: http://127.0.0.1:8080/api
      - url: gopher://127.0.0.1:1
`), "targets.yaml")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "endpoints[0].targets[1].url")
}
