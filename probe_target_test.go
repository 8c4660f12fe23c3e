package orchestrator_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

// probeTargetOf returns the last target the prober got for id.
func probeTargetOf(t *testing.T, p *polProber, id string) orchestrator.ProbeTarget {
	t.Helper()
	var last *orchestrator.ProbeTarget
	for _, c := range p.targets() {
		if c.EndpointID == id {
			last = &c
		}
	}
	require.NotNil(t, last, "probes of %s: got none; want one", id)
	return *last
}

func TestProbeCustomProberGetsEveryEndpoint(t *testing.T) {
	t.Run("every endpoint with checks on is probed, with its host and port, with or without a health check path", func(t *testing.T) {
		// Given six endpoints, four with checks on, probed every 20ms
		p := &polProber{}
		polNew(t,
			orchestrator.WithProber(p),
			orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Interval: polDuration(20 * time.Millisecond)}),
			orchestrator.WithEndpoints(
				orchestrator.Endpoint{Name: "nopath", URL: "http://127.0.0.1:9061/api/v1"},
				orchestrator.Endpoint{Name: "https", URL: "https://localhost/api"},
				orchestrator.Endpoint{Name: "ipv6", URL: "http://[::1]:9062"},
				orchestrator.Endpoint{Name: "withpath", URL: "https://127.0.0.1:8443/api", HealthCheckPath: "/healthz"},
				orchestrator.Endpoint{Name: "checksoff", URL: "http://127.0.0.1:9063",
					HealthCheck: &orchestrator.HealthCheckConfig{Enabled: polPtr(false)}},
				orchestrator.Endpoint{Name: "off", URL: "http://127.0.0.1:9064", Disabled: true},
			),
		)

		// When each endpoint with checks on has been probed three times
		for _, id := range []string{"nopath", "https", "ipv6", "withpath"} {
			p.waitCount(t, id, 3)
		}

		// Then those with checks off or disabled never were
		got := p.ids()
		assert.Equal(t, []string{"https", "ipv6", "nopath", "withpath"}, got, "probed endpoints: got %v; want the four with checks on", got)

		// And each target names the host and port to check: the URL's port,
		// or its scheme's default; the URL only with a health check path
		want := map[string]orchestrator.ProbeTarget{
			"nopath":   {EndpointID: "nopath", Host: "127.0.0.1", Port: "9061"},
			"https":    {EndpointID: "https", Host: "localhost", Port: "443"},
			"ipv6":     {EndpointID: "ipv6", Host: "::1", Port: "9062"},
			"withpath": {EndpointID: "withpath", Host: "127.0.0.1", Port: "8443", URL: "https://127.0.0.1:8443/healthz"},
		}
		for id, w := range want {
			g := probeTargetOf(t, p, id)
			assert.Equal(t, w.Host, g.Host, "%s: probe Host: got %q; want %q", id, g.Host, w.Host)
			assert.Equal(t, w.Port, g.Port, "%s: probe Port: got %q; want %q", id, g.Port, w.Port)
			assert.Equal(t, w.URL, g.URL, "%s: probe URL: got %q; want %q", id, g.URL, w.URL)
			assert.Equal(t, id, g.Endpoint.Name, "%s: probe Endpoint.Name: got %q; want %q", id, g.Endpoint.Name, id)
		}
	})

	t.Run("a failing probe makes an endpoint without a health check path unhealthy and its requests fail fast", func(t *testing.T) {
		// Given an endpoint without a health check path whose probes fail
		backend := newPolBackend(t, "svc", http.StatusOK)
		p := &polProber{}
		p.failing.Store(true)
		o := polNew(t,
			orchestrator.WithProber(p),
			orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL,
				HealthCheck: &orchestrator.HealthCheckConfig{Interval: polDuration(20 * time.Millisecond), UnhealthyThreshold: 2, HealthyThreshold: 1}}),
		)

		// Then it turns unhealthy, is reported as actively checked, and a
		// request gets 503 without reaching the upstream
		v := polWaitStatus(t, o, "svc", orchestrator.StatusUnhealthy)
		assert.True(t, v.Health.Active, "Health.Active: got false; want true")
		assert.Equal(t, "fake probe failure", v.Health.LastError, "last error: got %q; want the probe's", v.Health.LastError)
		polRequireProblem(t, polGet(o, "/orchestrator/svc/items"), http.StatusServiceUnavailable, "endpoint-unhealthy", "svc")
		polRequireHits(t, backend, 0)

		// When the probes pass again, requests reach the upstream again
		p.failing.Store(false)
		polWaitStatus(t, o, "svc", orchestrator.StatusHealthy)
		polRequireCode(t, polGet(o, "/orchestrator/svc/items"), http.StatusOK)
		polRequireHits(t, backend, 1)
	})

	t.Run("CheckHealth probes an endpoint without a health check path", func(t *testing.T) {
		// Given an endpoint without a path, probed once an hour
		p := &polProber{}
		o := polNew(t,
			orchestrator.WithProber(p),
			orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Interval: polDuration(time.Hour), UnhealthyThreshold: 1}),
			orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "nopath", URL: "http://127.0.0.1:9065"}),
		)
		p.waitCount(t, "nopath", 1) // the probe made on registration

		// When it is checked now, and the probe fails
		p.failing.Store(true)
		v, err := o.CheckHealth(context.Background(), "nopath")

		// Then the probe ran and its result is in the view
		require.NoError(t, err)
		assert.Equal(t, 2, p.count("nopath"), "probes: got %d; want 2 (registration + CheckHealth)", p.count("nopath"))
		assert.True(t, v.Health.Active, "Health.Active: got false; want true")
		assert.Equal(t, orchestrator.StatusUnhealthy, v.Status, "status: got %q; want unhealthy", v.Status)
	})

	t.Run("an endpoint whose upstream changes is probed at once at its new host and port", func(t *testing.T) {
		// Given an endpoint without a path, probed once an hour, probed once
		p := &polProber{}
		o := polNew(t,
			orchestrator.WithProber(p),
			orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Interval: polDuration(time.Hour)}),
		)
		ep := orchestrator.Endpoint{Name: "svc", URL: "http://127.0.0.1:9066"}
		_, err := o.Register(context.Background(), ep)
		require.NoError(t, err)
		p.waitCount(t, "svc", 1)

		// When its upstream moves to another port
		ep.URL = "http://127.0.0.1:9067"
		_, err = o.Update(context.Background(), ep)
		require.NoError(t, err)

		// Then the new port is probed now, not an hour from now
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			ports := []string{}
			for _, tg := range p.targets() {
				ports = append(ports, tg.Port)
			}
			assert.True(c, slices.Contains(ports, "9067"), "ports probed: got %v; want 9067 among them", ports)
		}, polWait, polTick)
	})

	t.Run("turning checks off for an endpoint stops its probes and lets its breaker judge it again", func(t *testing.T) {
		// Given an endpoint without a path made unhealthy by its probes
		backend := newPolBackend(t, "svc", http.StatusOK)
		p := &polProber{}
		p.failing.Store(true)
		o := polNew(t,
			orchestrator.WithProber(p),
			orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Interval: polDuration(20 * time.Millisecond), UnhealthyThreshold: 1}),
		)
		ep := orchestrator.Endpoint{Name: "svc", URL: backend.URL}
		_, err := o.Register(context.Background(), ep)
		require.NoError(t, err)
		polWaitStatus(t, o, "svc", orchestrator.StatusUnhealthy)

		// When its health checks are turned off
		ep.HealthCheck = &orchestrator.HealthCheckConfig{Enabled: polPtr(false)}
		_, err = o.Update(context.Background(), ep)
		require.NoError(t, err)

		// Then it is no longer reported unhealthy or checked, keeps no
		// probe results, and serves
		v := polView(t, o, "svc")
		assert.Equal(t, orchestrator.StatusHealthy, v.Status, "status (judged by its closed breaker): got %q; want healthy", v.Status)
		assert.False(t, v.Health.Active, "Health.Active: got true; want false")
		assert.Empty(t, v.Health.LastError, "Health.LastError: got %q; want none once it is not checked", v.Health.LastError)
		assert.Zero(t, v.Health.ConsecutiveFailures, "Health.ConsecutiveFailures: got %d; want 0 once it is not checked", v.Health.ConsecutiveFailures)
		polRequireCode(t, polGet(o, "/orchestrator/svc/items"), http.StatusOK)

		// And once any probe under way has ended, it is not probed again
		n := probeCountAfterQuiet(t, p, "svc")
		require.Never(t, func() bool { return p.count("svc") != n }, 100*time.Millisecond, 5*time.Millisecond,
			"probes after checks were turned off: got more than %d; want none", n)
	})
}

func TestProbeEndpointsTurnedOnKeepTheirOwnHealth(t *testing.T) {
	// Given two endpoints without a health check path, registered with
	// checks off: "bad" fails its probes, "good" passes its one probe an hour
	p := &polProber{}
	prober := orchestrator.ProberFunc(func(ctx context.Context, target orchestrator.ProbeTarget) error {
		p.Probe(ctx, target)
		if target.EndpointID == "bad" {
			return errors.New("bad is down")
		}
		return nil
	})
	o := polNew(t,
		orchestrator.WithProber(prober),
		orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{UnhealthyThreshold: 1, HealthyThreshold: 2}),
	)
	good := orchestrator.Endpoint{Name: "good", URL: "http://127.0.0.1:9072",
		HealthCheck: &orchestrator.HealthCheckConfig{Enabled: polPtr(false), Interval: polDuration(time.Hour)}}
	bad := orchestrator.Endpoint{Name: "bad", URL: "http://127.0.0.1:9073",
		HealthCheck: &orchestrator.HealthCheckConfig{Enabled: polPtr(false), Interval: polDuration(20 * time.Millisecond)}}
	for _, ep := range []orchestrator.Endpoint{good, bad} {
		_, err := o.Register(context.Background(), ep)
		require.NoError(t, err)
	}

	// When checks are turned on for both
	for _, ep := range []orchestrator.Endpoint{good, bad} {
		ep.HealthCheck = &orchestrator.HealthCheckConfig{Enabled: polPtr(true), Interval: ep.HealthCheck.Interval}
		_, err := o.Update(context.Background(), ep)
		require.NoError(t, err)
	}
	p.waitCount(t, "good", 1)
	p.waitCount(t, "bad", 3)

	// Then each is judged by its own probes only
	polWaitStatus(t, o, "bad", orchestrator.StatusUnhealthy)
	v := polView(t, o, "good")
	assert.Equal(t, orchestrator.StatusHealthy, v.Status, "good's status: got %q; want healthy (bad's probes are not its own)", v.Status)
	assert.Empty(t, v.Health.LastError, "good's last error: got %q; want none", v.Health.LastError)
	assert.Equal(t, 1, v.Health.ConsecutiveSuccesses, "good's consecutive successes: got %d; want 1", v.Health.ConsecutiveSuccesses)
}

// probeCountAfterQuiet returns p's count of probes of id once it has stayed
// the same across two polls 50ms apart (more than the 20ms interval and its
// jitter): a probe that had started when checks were turned off may still be
// recorded.
func probeCountAfterQuiet(t *testing.T, p *polProber, id string) int {
	t.Helper()
	deadline := time.Now().Add(polWait)
	n := p.count(id)
	for time.Now().Before(deadline) {
		<-time.After(50 * time.Millisecond)
		m := p.count(id)
		if m == n {
			return n
		}
		n = m
	}
	t.Fatalf("probes of %s kept coming for %v after checks were turned off", id, polWait)
	return 0
}

func TestProbeHTTPProberChecksOnlyHealthCheckPaths(t *testing.T) {
	// An upstream that records the paths it is asked for
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	ownTransport := &http.Transport{}
	t.Cleanup(ownTransport.CloseIdleConnections)
	seen := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(paths)
	}

	t.Run("a target without a URL has nothing to GET and passes", func(t *testing.T) {
		err := (&orchestrator.HTTPProber{}).Probe(context.Background(), orchestrator.ProbeTarget{EndpointID: "nopath", Host: "127.0.0.1", Port: "9068"})
		assert.NoError(t, err, "probe without a URL: got %v; want nil", err)
	})

	for _, tc := range []struct {
		name string
		opts []orchestrator.Option
	}{
		{"the default prober", nil},
		{"an HTTPProber set with WithProber", []orchestrator.Option{orchestrator.WithProber(&orchestrator.HTTPProber{Client: &http.Client{Transport: ownTransport}})}},
	} {
		t.Run(tc.name+" probes only endpoints with a health check path", func(t *testing.T) {
			// Given an endpoint with a health check path and one without,
			// on the same upstream, due together and then every 20ms
			mu.Lock()
			paths = nil
			mu.Unlock()
			o := polNew(t, append(tc.opts,
				orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Interval: polDuration(20 * time.Millisecond)}),
				orchestrator.WithEndpoints(
					orchestrator.Endpoint{Name: "withpath", URL: srv.URL + "/api", HealthCheckPath: "/health"},
					orchestrator.Endpoint{Name: "nopath", URL: srv.URL + "/api"},
				))...)

			// When the one with a path has been probed three times
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				got := seen()
				assert.GreaterOrEqual(c, len(got), 3, "requests to the upstream: got %v; want at least 3 probes", got)
			}, polWait, polTick)

			// Then every request the upstream got was a GET of that path,
			// and the other endpoint is judged by its breaker alone
			got := seen()
			for _, path := range got {
				assert.Equal(t, "/health", path, "paths the upstream was asked for: got %v; want only /health", got)
			}
			v := polView(t, o, "nopath")
			assert.False(t, v.Health.Active, "nopath Health.Active: got true; want false")
			assert.Equal(t, orchestrator.StatusHealthy, v.Status, "nopath status (judged by its closed breaker): got %q; want healthy", v.Status)
			assert.True(t, polView(t, o, "withpath").Health.Active, "withpath Health.Active: got false; want true")
		})
	}
}
