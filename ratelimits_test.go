package orchestrator_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

// slow is a rate that refills nothing within a test: one request every
// 1,000 s, so only the burst decides.
const slow = 0.001

func rlGet(o http.Handler, path, remote string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if remote != "" {
		req.RemoteAddr = remote
	}
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	o.ServeHTTP(rec, req)
	return rec
}

func TestRateLimitForTheWholeEndpoint(t *testing.T) {
	backend := newPolBackend(t, "svc", http.StatusOK)
	o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL,
		RateLimit: &orchestrator.RateLimits{{RequestsPerSecond: slow, Burst: 2}}}))

	first := rlGet(o, "/orchestrator/svc/x", "", nil)
	require.Equal(t, http.StatusOK, first.Code)
	assert.Equal(t, `"default";q=2;w=2000`, first.Header().Get("RateLimit-Policy"))
	assert.Equal(t, `"default";r=1;t=1000`, first.Header().Get("RateLimit"))
	second := rlGet(o, "/orchestrator/svc/x", "", nil)
	require.Equal(t, http.StatusOK, second.Code)
	assert.Equal(t, `"default";r=0;t=2000`, second.Header().Get("RateLimit"))

	third := rlGet(o, "/orchestrator/svc/x", "", nil)
	res := polResponse{Code: third.Code, Header: third.Header(), Body: third.Body.String()}
	polRequireProblem(t, res, http.StatusTooManyRequests, "rate-limited", "svc")
	assert.Equal(t, "1000", third.Header().Get("Retry-After"))
	assert.Equal(t, `"default";q=2;w=2000`, third.Header().Get("RateLimit-Policy"))
	assert.Equal(t, `"default";r=0;t=2000`, third.Header().Get("RateLimit"))
	assert.NotEmpty(t, third.Header().Get("X-Request-Id"))
	polRequireHits(t, backend, 2)
	assert.Equal(t, uint64(1), polView(t, o, "svc").Traffic.RateLimited, "the endpoint's view counts the refusal")
}

func TestRateLimitNeverFallsBack(t *testing.T) {
	backend := newPolBackend(t, "svc", http.StatusOK)
	o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL,
		RateLimit: &orchestrator.RateLimits{{RequestsPerSecond: slow, Burst: 1}},
		Fallback:  &orchestrator.FallbackConfig{Strategy: orchestrator.FallbackStaticResponse, Status: 200, Body: "fallback"}}))
	require.Equal(t, http.StatusOK, rlGet(o, "/orchestrator/svc/x", "", nil).Code)
	rec := rlGet(o, "/orchestrator/svc/x", "", nil)
	assert.Equal(t, http.StatusTooManyRequests, rec.Code)
	assert.NotContains(t, rec.Body.String(), "fallback")
}

func TestRateLimitPerClientIP(t *testing.T) {
	backend := newPolBackend(t, "svc", http.StatusOK)
	o := polNew(t,
		orchestrator.WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8")),
		orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL,
			RateLimit: &orchestrator.RateLimits{{RequestsPerSecond: slow, Burst: 1, Key: "client_ip"}}}))
	path := "/orchestrator/svc/x"
	xff := func(v string) http.Header { return http.Header{"X-Forwarded-For": {v}} }

	t.Run("each client its own bucket", func(t *testing.T) {
		assert.Equal(t, http.StatusOK, rlGet(o, path, "192.0.2.1:1000", nil).Code)
		assert.Equal(t, http.StatusTooManyRequests, rlGet(o, path, "192.0.2.1:1001", nil).Code, "the same client, another port")
		assert.Equal(t, http.StatusOK, rlGet(o, path, "192.0.2.2:1000", nil).Code, "another client")
	})
	t.Run("IPv6 clients are keyed per /64", func(t *testing.T) {
		assert.Equal(t, http.StatusOK, rlGet(o, path, "[2001:db8:1:2::1]:1000", nil).Code)
		assert.Equal(t, http.StatusTooManyRequests, rlGet(o, path, "[2001:db8:1:2:ffff::9]:1000", nil).Code, "the same /64")
		assert.Equal(t, http.StatusOK, rlGet(o, path, "[2001:db8:1:3::1]:1000", nil).Code, "another /64")
	})
	t.Run("X-Forwarded-For counts only from a trusted proxy", func(t *testing.T) {
		assert.Equal(t, http.StatusOK, rlGet(o, path, "10.1.1.1:1000", xff("198.51.100.7")).Code)
		assert.Equal(t, http.StatusTooManyRequests, rlGet(o, path, "10.1.1.2:1000", xff("198.51.100.7")).Code, "the same client through another proxy")
		assert.Equal(t, http.StatusOK, rlGet(o, path, "10.1.1.1:1000", xff("198.51.100.8, 10.2.2.2")).Code, "the nearest untrusted hop")
		// An untrusted client's own X-Forwarded-For is ignored: it cannot
		// pose as a fresh client.
		assert.Equal(t, http.StatusOK, rlGet(o, path, "203.0.113.5:1000", xff("198.51.100.99")).Code)
		assert.Equal(t, http.StatusTooManyRequests, rlGet(o, path, "203.0.113.5:1000", xff("198.51.100.100")).Code)
	})
}

func TestRateLimitPerHeaderAndSeveralLimits(t *testing.T) {
	backend := newPolBackend(t, "svc", http.StatusOK)
	o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: backend.URL,
		RateLimit: &orchestrator.RateLimits{
			{RequestsPerSecond: slow, Burst: 3},                          // the whole endpoint
			{RequestsPerSecond: slow, Burst: 1, Key: "header:X-Api-Key"}, // each key
		}}))
	key := func(v string) http.Header { return http.Header{"X-Api-Key": {v}} }
	path := "/orchestrator/svc/x"

	ok := rlGet(o, path, "", key("a"))
	require.Equal(t, http.StatusOK, ok.Code)
	assert.Equal(t, `"limit2";q=1;w=1000`, ok.Header().Get("RateLimit-Policy"), "the header reports the limit closest to refusing")
	refused := rlGet(o, path, "", key("a"))
	assert.Equal(t, http.StatusTooManyRequests, refused.Code, "a's own bucket is empty")
	assert.Equal(t, `"limit2";q=1;w=1000`, refused.Header().Get("RateLimit-Policy"))
	assert.Equal(t, http.StatusOK, rlGet(o, path, "", key("b")).Code)
	assert.Equal(t, http.StatusOK, rlGet(o, path, "", nil).Code, "no header: one shared bucket")
	// Three admitted: the endpoint's own limit refuses a fresh key too.
	fresh := rlGet(o, path, "", key("c"))
	assert.Equal(t, http.StatusTooManyRequests, fresh.Code, "a new header value cannot pass the endpoint's limit")
	assert.Equal(t, `"limit1";q=3;w=3000`, fresh.Header().Get("RateLimit-Policy"))
	polRequireHits(t, backend, 3)
}

func TestRateLimitGlobalDefault(t *testing.T) {
	a := newPolBackend(t, "a", http.StatusOK)
	b := newPolBackend(t, "b", http.StatusOK)
	c := newPolBackend(t, "c", http.StatusOK)
	o := polNew(t,
		orchestrator.WithRateLimit(orchestrator.RateLimitConfig{RequestsPerSecond: slow, Burst: 1}),
		orchestrator.WithEndpoints(
			orchestrator.Endpoint{Name: "a", URL: a.URL},
			orchestrator.Endpoint{Name: "b", URL: b.URL},
			orchestrator.Endpoint{Name: "c", URL: c.URL, RateLimit: &orchestrator.RateLimits{{RequestsPerSecond: slow, Burst: 2}}},
			orchestrator.Endpoint{Name: "free", URL: c.URL, RateLimit: &orchestrator.RateLimits{}},
		))
	for range 3 {
		assert.Equal(t, http.StatusOK, rlGet(o, "/orchestrator/free/x", "", nil).Code, "rate_limit: [] opts out of the global limit")
	}
	for _, name := range []string{"a", "b"} {
		assert.Equal(t, http.StatusOK, rlGet(o, "/orchestrator/"+name+"/x", "", nil).Code, "%s: a bucket of its own", name)
		assert.Equal(t, http.StatusTooManyRequests, rlGet(o, "/orchestrator/"+name+"/x", "", nil).Code)
	}
	assert.Equal(t, http.StatusOK, rlGet(o, "/orchestrator/c/x", "", nil).Code)
	assert.Equal(t, http.StatusOK, rlGet(o, "/orchestrator/c/x", "", nil).Code, "c's own limit replaces the global one")
	assert.Equal(t, http.StatusTooManyRequests, rlGet(o, "/orchestrator/c/x", "", nil).Code)
}

func TestRateLimitSurvivesAReload(t *testing.T) {
	backend := newPolBackend(t, "svc", http.StatusOK)
	ep := orchestrator.Endpoint{Name: "svc", URL: backend.URL, RateLimit: &orchestrator.RateLimits{{RequestsPerSecond: slow, Burst: 1}}}
	o := polNew(t, orchestrator.WithEndpoints(ep))
	require.Equal(t, http.StatusOK, rlGet(o, "/orchestrator/svc/x", "", nil).Code)

	ep.Timeout = polDuration(5 * time.Second) // another setting changes
	require.NoError(t, o.Apply(context.Background(), orchestrator.Desired{Endpoints: []orchestrator.Endpoint{ep}}))
	assert.Equal(t, http.StatusTooManyRequests, rlGet(o, "/orchestrator/svc/x", "", nil).Code, "the bucket was kept: a reload is no way around the limit")

	ep.RateLimit = &orchestrator.RateLimits{{RequestsPerSecond: slow, Burst: 2}} // the limit itself changes: a new bucket
	require.NoError(t, o.Apply(context.Background(), orchestrator.Desired{Endpoints: []orchestrator.Endpoint{ep}}))
	assert.Equal(t, http.StatusOK, rlGet(o, "/orchestrator/svc/x", "", nil).Code)
}

func TestRateLimitValidation(t *testing.T) {
	cases := []struct {
		name   string
		limits *orchestrator.RateLimits
		field  string
	}{
		{"no rate", &orchestrator.RateLimits{{}}, "endpoints[0].rate_limit.requests_per_second"},
		{"a negative burst", &orchestrator.RateLimits{{RequestsPerSecond: 1, Burst: -1}}, "endpoints[0].rate_limit.burst"},
		{"an unknown key", &orchestrator.RateLimits{{RequestsPerSecond: 1, Key: "cookie:x"}}, "endpoints[0].rate_limit.key"},
		{"a bad header name", &orchestrator.RateLimits{{RequestsPerSecond: 1, Key: "header:a b"}}, "endpoints[0].rate_limit.key"},
		{"the second of a list", &orchestrator.RateLimits{{RequestsPerSecond: 1}, {RequestsPerSecond: 1, MaxKeys: -1, Key: "client_ip"}}, "endpoints[0].rate_limit[1].max_keys"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := orchestrator.New(orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: "http://127.0.0.1:9", RateLimit: c.limits}))
			var verr *orchestrator.ValidationError
			require.True(t, errors.As(err, &verr), "error %v: want a *ValidationError", err)
			require.Len(t, verr.Errors, 1, "%v", verr.Errors)
			assert.Equal(t, c.field, verr.Errors[0].Field)
		})
	}
	_, err := orchestrator.New(orchestrator.WithRateLimit(orchestrator.RateLimitConfig{RequestsPerSecond: -1}))
	assert.ErrorContains(t, err, "rate_limit.requests_per_second")
}

func TestRateLimitsJSON(t *testing.T) {
	var ep orchestrator.Endpoint
	require.NoError(t, json.Unmarshal([]byte(`{"name":"a","rate_limit":{"requests_per_second":5}}`), &ep))
	assert.Equal(t, orchestrator.RateLimits{{RequestsPerSecond: 5}}, *ep.RateLimit)
	require.NoError(t, json.Unmarshal([]byte(`{"name":"a","rate_limit":[{"requests_per_second":5},{"requests_per_second":1,"key":"client_ip"}]}`), &ep))
	assert.Len(t, *ep.RateLimit, 2)
	err := json.Unmarshal([]byte(`{"name":"a","rate_limit":{"requests_per_second":5,"burts":3}}`), &ep)
	assert.ErrorContains(t, err, "burts", "a misspelt field is refused, not dropped")
	out, err := json.Marshal(orchestrator.RateLimits{{RequestsPerSecond: 5}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"requests_per_second":5}`, string(out), "one limit is written as a mapping")
}
