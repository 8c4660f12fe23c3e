package orchestrator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

func TestRegisterRefusesForbiddenUpstreams(t *testing.T) {
	o, err := orchestrator.New()
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })
	o.SetListenAddrs("127.0.0.1:18999")

	for _, u := range []string{
		"http://169.254.169.254/latest/meta-data",
		"http://[fd00:ec2::254]/",
		"http://[fe80::1]:8080",
		"http://127.0.0.1:18999/orchestrator", // the gateway itself
		"http://user:pass@127.0.0.1:9000",     // credentials in the URL
		"file:///etc/passwd",
		"gopher://127.0.0.1:70",
	} {
		t.Run(u, func(t *testing.T) {
			_, err := o.Register(context.Background(), orchestrator.Endpoint{Name: "x", URL: u})
			var verr *orchestrator.ValidationError
			require.ErrorAs(t, err, &verr, "Register(%s): got %v; want a validation error", u, err)
			assert.Equal(t, "url", verr.Errors[0].Field)
			_, err = o.Endpoint("x")
			assert.ErrorIs(t, err, orchestrator.ErrNotFound, "a refused endpoint must not be registered")
		})
	}
}

func TestAllowedUpstreamsLetAnAddressThrough(t *testing.T) {
	o, err := orchestrator.New(orchestrator.WithAllowedUpstreams("169.254.170.2"))
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })
	_, err = o.Register(context.Background(), orchestrator.Endpoint{Name: "ecs", URL: "http://169.254.170.2/v2/metadata"})
	require.NoError(t, err)
	_, err = o.Register(context.Background(), orchestrator.Endpoint{Name: "aws", URL: "http://169.254.169.254/"})
	require.Error(t, err, "only the listed address is allowed")
}

// TestDialTimeGuardStopsLoopsBackIntoTheGateway registers, through the
// config path (no registration-time check), an endpoint that points back at
// the gateway's own listener: the dial itself is refused, so the request
// cannot loop, and the client gets a 502 problem naming the reason.
func TestDialTimeGuardStopsLoopsBackIntoTheGateway(t *testing.T) {
	var inner atomic.Int64
	var o *orchestrator.Orchestrator
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.Add(1)
		o.ServeHTTP(w, r)
	}))
	t.Cleanup(gw.Close)
	var err error
	o, err = orchestrator.New(orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "loop", URL: gw.URL + "/orchestrator/loop"}))
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })
	o.SetListenAddrs(gw.Listener.Addr().String())

	resp, err := http.Get(gw.URL + "/orchestrator/loop/x")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusBadGateway, resp.StatusCode)
	var p struct {
		Type   string `json:"type"`
		Detail string `json:"detail"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
	assert.Equal(t, "urn:orchestrator:problem:upstream-forbidden", p.Type)
	assert.Contains(t, p.Detail, "own listener")
	assert.EqualValues(t, 1, inner.Load(), "the gateway was entered %d times; want once (no loop)", inner.Load())
}

// TestHealthProbesObeyTheUpstreamGuard points an endpoint's health check at
// the gateway's own listener: the probe's dial is refused, so the probe
// never reaches it and the endpoint goes unhealthy.
func TestHealthProbesObeyTheUpstreamGuard(t *testing.T) {
	var probed atomic.Int64
	self := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			probed.Add(1)
		}
	}))
	t.Cleanup(self.Close)
	o, err := orchestrator.New(
		orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Interval: orchestrator.Duration(20 * time.Millisecond), UnhealthyThreshold: 2}),
	)
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })
	o.SetListenAddrs(self.Listener.Addr().String())
	require.NoError(t, o.Sync(context.Background(), orchestrator.SourceConfig, []orchestrator.Endpoint{
		{Name: "self", URL: self.URL, HealthCheckPath: "/health"},
	}))

	require.Eventually(t, func() bool {
		v, err := o.Endpoint("self")
		return err == nil && v.Status == orchestrator.StatusUnhealthy
	}, 10*time.Second, 10*time.Millisecond, "the endpoint never went unhealthy")
	v, _ := o.Endpoint("self")
	assert.Contains(t, v.Health.LastError, "own listener", "probe error: got %q", v.Health.LastError)
	assert.Zero(t, probed.Load(), "probes that reached the gateway's own listener: got %d; want 0", probed.Load())
}

// TestRegisterRefusesZonedAndEmbeddedLinkLocal: an IPv6 zone, an
// IPv4-compatible, IPv4-mapped, NAT64 or 6to4 form, and Alibaba Cloud's
// metadata address are all refused at registration, with a reason that
// names the address and the setting that would allow it. Loopback in the
// same forms is not link-local or metadata and stays allowed. No endpoint
// here has a health check, so nothing is dialled, even before the fix.
func TestRegisterRefusesZonedAndEmbeddedLinkLocal(t *testing.T) {
	o, err := orchestrator.New()
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })

	for i, tt := range []struct{ url, names string }{
		{"http://[fe80::1%25eth0]:9/", "fe80::1%eth0"},
		{"http://[fe80::1%254]:9/", "fe80::1%4"},
		{"http://[fd00:ec2::254%25eth0]/", "fd00:ec2::254%eth0"},
		{"http://[::169.254.169.254]/", "169.254.169.254"},
		{"http://[::ffff:169.254.169.254]/", "169.254.169.254"},
		{"http://[64:ff9b::a9fe:a9fe]/latest/meta-data", "64:ff9b::a9fe:a9fe"},
		{"http://[2002:a9fe:a9fe::1]/", "2002:a9fe:a9fe::1"},
		{"http://100.100.100.200/latest/meta-data", "100.100.100.200"},
	} {
		t.Run(tt.url, func(t *testing.T) {
			name := fmt.Sprintf("refused%d", i)
			_, err := o.Register(context.Background(), orchestrator.Endpoint{Name: name, URL: tt.url})
			var verr *orchestrator.ValidationError
			require.ErrorAs(t, err, &verr, "Register(%s): got %v; want a validation error", tt.url, err)
			assert.Equal(t, "url", verr.Errors[0].Field)
			assert.Contains(t, verr.Errors[0].Message, tt.names)
			assert.Contains(t, verr.Errors[0].Message, "registry.allowed_upstreams")
			_, err = o.Endpoint(name)
			assert.ErrorIs(t, err, orchestrator.ErrNotFound, "a refused endpoint must not be registered")
		})
	}
	for i, u := range []string{"http://127.0.0.1:9/", "http://[::1]:9/", "http://[2002:7f00:1::]:9/", "http://[64:ff9b::7f00:1]:9/"} {
		_, err := o.Register(context.Background(), orchestrator.Endpoint{Name: fmt.Sprintf("allowed%d", i), URL: u})
		assert.NoError(t, err, "Register(%s)", u)
	}
}

// unknownZone names no interface, so that the tests below send nothing
// even on the unfixed code: connect(2) to a link-local address with no
// interface fails with EINVAL before any packet. (fe80::1%eth0 would send
// neighbour discovery out of a real interface.)
const unknownZone = "orchguardnone0"

// TestDialTimeGuardRefusesAZonedLinkLocalUpstream: an endpoint from the
// config (no registration check) with a zoned link-local address is refused
// by the dial-time guard, and the client gets the upstream-forbidden problem.
func TestDialTimeGuardRefusesAZonedLinkLocalUpstream(t *testing.T) {
	o, err := orchestrator.New(orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "ll", URL: "http://[fe80::1%25" + unknownZone + "]:9"}))
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })

	rec := httptest.NewRecorder()
	o.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/orchestrator/ll/x", nil))
	require.Equal(t, http.StatusBadGateway, rec.Code)
	var p struct {
		Type   string `json:"type"`
		Detail string `json:"detail"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
	assert.Equal(t, "urn:orchestrator:problem:upstream-forbidden", p.Type)
	assert.Contains(t, p.Detail, "fe80::1%"+unknownZone)
	assert.Contains(t, p.Detail, "link-local")
}

// TestHealthProbesRefuseAZonedLinkLocalUpstream: the probe's dial to a
// zoned link-local address is refused by the guard, not attempted.
func TestHealthProbesRefuseAZonedLinkLocalUpstream(t *testing.T) {
	o, err := orchestrator.New(
		orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Interval: orchestrator.Duration(20 * time.Millisecond), UnhealthyThreshold: 2}),
	)
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })
	require.NoError(t, o.Sync(context.Background(), orchestrator.SourceConfig, []orchestrator.Endpoint{
		{Name: "ll", URL: "http://[fe80::1%25" + unknownZone + "]:9", HealthCheckPath: "/health"},
	}))

	require.Eventually(t, func() bool {
		v, err := o.Endpoint("ll")
		return err == nil && v.Status == orchestrator.StatusUnhealthy
	}, 10*time.Second, 10*time.Millisecond, "the endpoint never went unhealthy")
	v, _ := o.Endpoint("ll")
	assert.Contains(t, v.Health.LastError, "link-local", "probe error: got %q", v.Health.LastError)
}
