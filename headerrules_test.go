package orchestrator_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

// hrSeen is what a header-echoing backend received.
type hrSeen struct {
	Host   string
	Header http.Header
}

// newHeaderEcho answers with the request's Host and headers as JSON, and
// sets the response headers given.
func newHeaderEcho(t *testing.T, respond http.Header) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range respond {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(hrSeen{Host: r.Host, Header: r.Header})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func hrDo(t *testing.T, h http.Handler, req *http.Request) (*http.Response, hrSeen) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	var seen hrSeen
	if res.StatusCode == http.StatusOK {
		require.NoError(t, json.NewDecoder(res.Body).Decode(&seen))
	}
	return res, seen
}

func TestHeaderRules(t *testing.T) {
	backend := newHeaderEcho(t, http.Header{
		"X-Powered-By":  {"php/5"},
		"Cache-Control": {"no-cache"},
		"Vary":          {"Accept"},
	})
	o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{
		Name: "svc", Version: "v1", URL: backend.URL,
		RequestHeaders: &orchestrator.HeaderRules{
			Set:    map[string]string{"x-tenant": "blue", "X-Forwarded-Host": "public.example", "Host": "svc.internal"},
			Add:    map[string]string{"X-Via-Gateway": "orchestrator", "Accept-Language": "fr"},
			Remove: []string{"cookie", "X-Debug"},
		},
		ResponseHeaders: &orchestrator.HeaderRules{
			Set:    map[string]string{"Cache-Control": "max-age=60", "Strict-Transport-Security": "max-age=31536000"},
			Add:    map[string]string{"Vary": "Origin"},
			Remove: []string{"X-Powered-By"},
		},
	}))

	req := httptest.NewRequest(http.MethodGet, "/orchestrator/svc/v1/x", nil)
	req.Header.Set("X-Tenant", "red")
	req.Header.Set("Accept-Language", "en")
	req.Header.Set("Cookie", "session=1")
	req.Header.Set("X-Debug", "1")
	req.Header.Set("Authorization", "Bearer user-token")
	req.Header.Set("Te", "trailers")
	res, seen := hrDo(t, o, req)
	require.Equal(t, http.StatusOK, res.StatusCode)

	t.Run("request rules set, add and remove after the gateway's own headers", func(t *testing.T) {
		assert.Equal(t, []string{"blue"}, seen.Header["X-Tenant"], "set replaces the client's value")
		assert.Equal(t, []string{"public.example"}, seen.Header["X-Forwarded-Host"], "set overrides what the gateway set")
		assert.Equal(t, "svc.internal", seen.Host, "Host set by a rule")
		assert.Equal(t, []string{"en", "fr"}, seen.Header["Accept-Language"], "add keeps the client's value")
		assert.Equal(t, []string{"orchestrator"}, seen.Header["X-Via-Gateway"])
		assert.NotContains(t, seen.Header, "Cookie")
		assert.NotContains(t, seen.Header, "X-Debug")
	})
	t.Run("what the rules do not name passes as before", func(t *testing.T) {
		assert.Equal(t, []string{"Bearer user-token"}, seen.Header["Authorization"], "authentication passes through untouched")
		assert.Equal(t, []string{"trailers"}, seen.Header["Te"], "TE: trailers still reaches the upstream")
		assert.NotEmpty(t, seen.Header.Get("X-Request-Id"))
		assert.NotEmpty(t, seen.Header.Get("X-Forwarded-For"))
	})
	t.Run("response rules edit the upstream's response", func(t *testing.T) {
		assert.Equal(t, []string{"max-age=60"}, res.Header["Cache-Control"])
		assert.Equal(t, []string{"max-age=31536000"}, res.Header["Strict-Transport-Security"])
		assert.Equal(t, []string{"Accept", "Origin"}, res.Header["Vary"])
		assert.NotContains(t, res.Header, "X-Powered-By")
		assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
	})
	t.Run("each request gets the rules' values afresh", func(t *testing.T) {
		// The compiled values are shared by requests: an add on one must
		// not write into the next one's.
		for range 3 {
			r := httptest.NewRequest(http.MethodGet, "/orchestrator/svc/v1/x", nil)
			r.Header.Set("Accept-Language", "de")
			_, again := hrDo(t, o, r)
			assert.Equal(t, []string{"de", "fr"}, again.Header["Accept-Language"])
			res, _ := hrDo(t, o, httptest.NewRequest(http.MethodGet, "/orchestrator/svc/v1/x", nil))
			assert.Equal(t, []string{"Accept", "Origin"}, res.Header["Vary"])
		}
	})
}

func TestHeaderRulesOrderIsRemoveSetAdd(t *testing.T) {
	backend := newHeaderEcho(t, nil)
	o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{
		Name: "svc", URL: backend.URL,
		RequestHeaders: &orchestrator.HeaderRules{
			Remove: []string{"X-A"},
			Set:    map[string]string{"X-A": "set"},
			Add:    map[string]string{"X-A": "added"},
		},
	}))
	req := httptest.NewRequest(http.MethodGet, "/orchestrator/svc/x", nil)
	req.Header.Add("X-A", "client")
	_, seen := hrDo(t, o, req)
	assert.Equal(t, []string{"set", "added"}, seen.Header["X-A"])
}

func TestHeaderRulesChangeOnReload(t *testing.T) {
	backend := newHeaderEcho(t, nil)
	ep := orchestrator.Endpoint{Name: "svc", URL: backend.URL, RequestHeaders: &orchestrator.HeaderRules{Set: map[string]string{"X-Env": "one"}}}
	o := polNew(t, orchestrator.WithEndpoints(ep))
	_, seen := hrDo(t, o, httptest.NewRequest(http.MethodGet, "/orchestrator/svc/x", nil))
	require.Equal(t, "one", seen.Header.Get("X-Env"))

	ep.RequestHeaders = &orchestrator.HeaderRules{Set: map[string]string{"X-Env": "two"}}
	require.NoError(t, o.Apply(context.Background(), orchestrator.Desired{Endpoints: []orchestrator.Endpoint{ep}}))
	_, seen = hrDo(t, o, httptest.NewRequest(http.MethodGet, "/orchestrator/svc/x", nil))
	assert.Equal(t, "two", seen.Header.Get("X-Env"))
}

func TestHeaderRulesValidation(t *testing.T) {
	ep := func(req, res *orchestrator.HeaderRules) orchestrator.Endpoint {
		return orchestrator.Endpoint{Name: "svc", URL: "http://127.0.0.1:9", RequestHeaders: req, ResponseHeaders: res}
	}
	cases := []struct {
		name     string
		ep       orchestrator.Endpoint
		field    string
		contains string
	}{
		{"set Connection", ep(&orchestrator.HeaderRules{Set: map[string]string{"connection": "close"}}, nil), "request_headers.set.connection", "hop-by-hop"},
		{"add Upgrade", ep(&orchestrator.HeaderRules{Add: map[string]string{"Upgrade": "h2c"}}, nil), "request_headers.add.Upgrade", "hop-by-hop"},
		{"remove TE", ep(&orchestrator.HeaderRules{Remove: []string{"X-Ok", "TE"}}, nil), "request_headers.remove[1]", "hop-by-hop"},
		{"set Transfer-Encoding on responses", ep(nil, &orchestrator.HeaderRules{Set: map[string]string{"Transfer-Encoding": "chunked"}}), "response_headers.set.Transfer-Encoding", "hop-by-hop"},
		{"add Keep-Alive on responses", ep(nil, &orchestrator.HeaderRules{Add: map[string]string{"Keep-Alive": "timeout=5"}}), "response_headers.add.Keep-Alive", "hop-by-hop"},
		{"remove Trailer on responses", ep(nil, &orchestrator.HeaderRules{Remove: []string{"Trailer"}}), "response_headers.remove[0]", "hop-by-hop"},
		{"set Proxy-Authorization", ep(&orchestrator.HeaderRules{Set: map[string]string{"Proxy-Authorization": "x"}}, nil), "request_headers.set.Proxy-Authorization", "hop-by-hop"},
		{"set Content-Length", ep(&orchestrator.HeaderRules{Set: map[string]string{"Content-Length": "3"}}, nil), "request_headers.set.Content-Length", "body"},
		{"add Host", ep(&orchestrator.HeaderRules{Add: map[string]string{"Host": "x"}}, nil), "request_headers.add.Host", "only be set"},
		{"set Host on responses", ep(nil, &orchestrator.HeaderRules{Set: map[string]string{"Host": "x"}}), "response_headers.set.Host", "request header"},
		{"a bad name", ep(&orchestrator.HeaderRules{Set: map[string]string{"X Bad": "x"}}, nil), "request_headers.set.X Bad", "not a valid header name"},
		{"a value with CRLF", ep(&orchestrator.HeaderRules{Set: map[string]string{"X-A": "a\r\nX-Injected: 1"}}, nil), "request_headers.set.X-A", "control character"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := orchestrator.New(orchestrator.WithEndpoints(c.ep))
			var verr *orchestrator.ValidationError
			require.True(t, errors.As(err, &verr), "error %v: want a *ValidationError", err)
			require.Len(t, verr.Errors, 1, "errors: %v", verr.Errors)
			assert.Equal(t, "endpoints[0]."+c.field, verr.Errors[0].Field)
			assert.Contains(t, verr.Errors[0].Message, c.contains)
		})
	}
}

func TestHeaderRulesNeverCarryTheAdminToken(t *testing.T) {
	const token = "s3cret-admin-token"
	leaky := orchestrator.Endpoint{Name: "svc", URL: "http://127.0.0.1:9",
		RequestHeaders:  &orchestrator.HeaderRules{Set: map[string]string{"Authorization": "Bearer " + token}},
		ResponseHeaders: &orchestrator.HeaderRules{Add: map[string]string{"X-Debug-Token": token}},
	}

	t.Run("at start", func(t *testing.T) {
		_, err := orchestrator.New(orchestrator.WithAdminToken(token), orchestrator.WithEndpoints(leaky))
		var verr *orchestrator.ValidationError
		require.True(t, errors.As(err, &verr), "error %v: want a *ValidationError", err)
		fields := []string{}
		for _, fe := range verr.Errors {
			fields = append(fields, fe.Field)
			assert.Contains(t, fe.Message, "admin token")
			assert.NotContains(t, fe.Message, token, "the error must not echo the token")
		}
		assert.ElementsMatch(t, []string{"endpoints[0].request_headers.set.Authorization", "endpoints[0].response_headers.add.X-Debug-Token"}, fields)
	})

	t.Run("through the API", func(t *testing.T) {
		o := polNew(t, orchestrator.WithAdminToken(token))
		_, err := o.Register(context.Background(), leaky)
		var verr *orchestrator.ValidationError
		require.True(t, errors.As(err, &verr), "error %v: want a *ValidationError", err)
		_, err = o.Endpoint("svc")
		assert.ErrorIs(t, err, orchestrator.ErrNotFound, "a refused endpoint must not be registered")
	})

	t.Run("the same rules are fine on a gateway without that token", func(t *testing.T) {
		_, err := orchestrator.New(orchestrator.WithAdminToken("another-token"), orchestrator.WithEndpoints(leaky))
		require.NoError(t, err)
	})
}

// Response rules are on every answer of the endpoint, the gateway's own
// included, as Caddy's and Traefik's header rules are: an HSTS header is
// not missing from an error page.
func TestResponseRulesOnTheGatewaysOwnAnswers(t *testing.T) {
	hsts := &orchestrator.HeaderRules{Set: map[string]string{"Strict-Transport-Security": "max-age=60"}}
	o := polNew(t, orchestrator.WithEndpoints(
		orchestrator.Endpoint{Name: "down", URL: testutil.RefusedURL(t), ResponseHeaders: hsts},
		orchestrator.Endpoint{Name: "fallback", URL: testutil.RefusedURL(t), ResponseHeaders: hsts,
			CircuitBreaker: &orchestrator.CircuitBreakerConfig{FailureThreshold: 1},
			Fallback:       &orchestrator.FallbackConfig{Strategy: orchestrator.FallbackStaticResponse, Status: 200, Body: "canned"}},
		orchestrator.Endpoint{Name: "plain", URL: testutil.RefusedURL(t)},
	))
	res := polGet(o, "/orchestrator/down/x")
	polRequireProblem(t, res, http.StatusBadGateway, "upstream-unreachable", "down")
	assert.Equal(t, "max-age=60", res.Header.Get("Strict-Transport-Security"), "a problem document")

	res = polGet(o, "/orchestrator/fallback/x") // the upstream refuses: the fallback answers
	require.Equal(t, "canned", res.Body)
	assert.Equal(t, "max-age=60", res.Header.Get("Strict-Transport-Security"), "a static fallback")

	res = polGet(o, "/orchestrator/plain/x")
	assert.Empty(t, res.Header.Get("Strict-Transport-Security"), "an endpoint without rules")
}
