package admin_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator/admin"
)

func TestTokenAuth(t *testing.T) {
	f := newFixture(t, withToken)
	tests := []struct {
		name      string
		opts      []reqOption
		status    int
		challenge string // part of WWW-Authenticate on 401
	}{
		{"refuses a missing token", nil, http.StatusUnauthorized, `Bearer realm="orchestrator-admin"`},
		{"refuses a wrong token", []reqOption{bearer("wrong")}, http.StatusUnauthorized, `error="invalid_token"`},
		{"refuses a token with a suffix", []reqOption{bearer(testToken + "x")}, http.StatusUnauthorized, `error="invalid_token"`},
		{"refuses a token prefix", []reqOption{bearer(testToken[:len(testToken)-1])}, http.StatusUnauthorized, `error="invalid_token"`},
		{"refuses another scheme", []reqOption{header("Authorization", "Basic "+testToken)}, http.StatusUnauthorized, `error="invalid_request"`},
		{"refuses a bare token", []reqOption{header("Authorization", testToken)}, http.StatusUnauthorized, `error="invalid_request"`},
		{"accepts the right token", []reqOption{bearer(testToken)}, http.StatusOK, ""},
		{"accepts the scheme in any case", []reqOption{header("Authorization", "bearer "+testToken)}, http.StatusOK, ""},
		{"accepts a remote client with the token", []reqOption{bearer(testToken), remote("203.0.113.50:4444"), host("admin.example.com")}, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := call(f.h, http.MethodGet, "/registry/endpoints", "", tt.opts...)
			if tt.status == http.StatusOK {
				decode[endpointList](t, rec, http.StatusOK)
				return
			}
			requireProblem(t, rec, tt.status, "unauthorized")
			assert.Contains(t, rec.Header().Get("WWW-Authenticate"), tt.challenge)
		})
	}
	t.Run("refuses a remote client without the token", func(t *testing.T) {
		rec := call(f.h, http.MethodPost, "/circuit-breaker/trip/orders", "", remote("203.0.113.50:4444"))
		requireProblem(t, rec, http.StatusUnauthorized, "unauthorized")
	})
}

func TestLoopbackOnlyWithoutToken(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		opts   []reqOption
		status int
		kind   string
	}{
		{"answers an IPv4 loopback client", nil, http.StatusOK, ""},
		{"answers an IPv6 loopback client", []reqOption{remote("[::1]:5000"), host("[::1]:9000")}, http.StatusOK, ""},
		{"answers an IPv4-mapped loopback client", []reqOption{remote("[::ffff:127.0.0.1]:5000")}, http.StatusOK, ""},
		{"answers any 127/8 address", []reqOption{remote("127.8.9.10:5000"), host("127.0.0.1")}, http.StatusOK, ""},
		{"answers Host localhost without port", []reqOption{host("localhost")}, http.StatusOK, ""},
		{"answers Host in upper case", []reqOption{host("LOCALHOST:9000")}, http.StatusOK, ""},
		{"answers Host *.localhost", []reqOption{host("admin.localhost:9000")}, http.StatusOK, ""},
		{"answers Host ::1 in brackets", []reqOption{host("[::1]")}, http.StatusOK, ""},
		{"refuses a remote client", []reqOption{remote("203.0.113.7:5000")}, http.StatusForbidden, "not-loopback"},
		{"refuses a remote client claiming X-Forwarded-For 127.0.0.1", []reqOption{remote("203.0.113.7:5000"), header("X-Forwarded-For", "127.0.0.1")}, http.StatusForbidden, "not-loopback"},
		{"refuses a remote client claiming X-Real-IP 127.0.0.1", []reqOption{remote("203.0.113.7:5000"), header("X-Real-IP", "127.0.0.1")}, http.StatusForbidden, "not-loopback"},
		{"refuses a remote client claiming Forwarded for=127.0.0.1", []reqOption{remote("203.0.113.7:5000"), header("Forwarded", "for=127.0.0.1")}, http.StatusForbidden, "not-loopback"},
		{"refuses a private-network client", []reqOption{remote("10.0.0.8:5000")}, http.StatusForbidden, "not-loopback"},
		{"refuses an unparseable remote address", []reqOption{remote("@")}, http.StatusForbidden, "not-loopback"},
		{"refuses Host evil.example (DNS rebinding)", []reqOption{host("evil.example")}, http.StatusForbidden, "host-not-allowed"},
		{"refuses Host evil.example with a port", []reqOption{host("evil.example:9000")}, http.StatusForbidden, "host-not-allowed"},
		{"refuses Host localhost.evil.example", []reqOption{host("localhost.evil.example")}, http.StatusForbidden, "host-not-allowed"},
		{"refuses Host of a LAN address", []reqOption{host("192.168.1.10:9000")}, http.StatusForbidden, "host-not-allowed"},
		{"refuses an empty Host", []reqOption{host("")}, http.StatusForbidden, "host-not-allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := call(f.h, http.MethodGet, "/registry/endpoints", "", tt.opts...)
			if tt.kind == "" {
				decode[endpointList](t, rec, tt.status)
				return
			}
			requireProblem(t, rec, tt.status, tt.kind)
		})
	}
	t.Run("X-Forwarded-For never makes a remote client look local for a change either", func(t *testing.T) {
		rec := call(f.h, http.MethodPost, "/circuit-breaker/trip/orders", "", remote("203.0.113.7:5000"), header("X-Forwarded-For", "127.0.0.1, ::1"))
		requireProblem(t, rec, http.StatusForbidden, "not-loopback")
		ep, err := f.o.Endpoint("orders")
		require.NoError(t, err)
		assert.Equal(t, "closed", string(ep.CircuitBreakerState), "nothing was tripped")
	})
}

func TestOrigin(t *testing.T) {
	allowed := func(o *admin.Options) { o.AllowedOrigins = []string{"https://ops.example.com"} }
	const create = `{"name":"csrf","url":"http://127.0.0.1:1"}`
	tests := []struct {
		name   string
		method string
		target string
		body   string
		opts   []reqOption
		status int
		kind   string
	}{
		{"refuses a foreign origin", http.MethodGet, "/registry/endpoints", "", []reqOption{header("Origin", "https://evil.example")}, http.StatusForbidden, "origin-not-allowed"},
		{"refuses a cross-origin text/plain POST", http.MethodPost, "/registry/endpoints", create,
			[]reqOption{header("Origin", "https://evil.example"), header("Content-Type", "text/plain")}, http.StatusForbidden, "origin-not-allowed"},
		{"refuses a cross-origin form POST to a lever", http.MethodPost, "/circuit-breaker/trip/orders", "",
			[]reqOption{header("Origin", "http://localhost:3000"), header("Content-Type", "application/x-www-form-urlencoded")}, http.StatusForbidden, "origin-not-allowed"},
		{"refuses Origin null", http.MethodGet, "/registry/endpoints", "", []reqOption{header("Origin", "null")}, http.StatusForbidden, "origin-not-allowed"},
		{"refuses two Origin headers", http.MethodGet, "/registry/endpoints", "",
			[]reqOption{header("Origin", "https://ops.example.com"), header("Origin", "https://evil.example")}, http.StatusForbidden, "origin-not-allowed"},
		{"refuses a foreign origin even on /health", http.MethodGet, "/health", "", []reqOption{header("Origin", "https://evil.example")}, http.StatusForbidden, "origin-not-allowed"},
		{"accepts an allowed origin", http.MethodGet, "/registry/endpoints", "", []reqOption{header("Origin", "https://ops.example.com")}, http.StatusOK, ""},
		{"accepts the admin's own origin", http.MethodPost, "/registry/endpoints", create, []reqOption{header("Origin", "http://localhost:9000")}, http.StatusCreated, ""},
		{"accepts requests without Origin", http.MethodGet, "/registry/endpoints", "", nil, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, allowed)
			rec := call(f.h, tt.method, tt.target, tt.body, tt.opts...)
			if tt.kind != "" {
				requireProblem(t, rec, tt.status, tt.kind)
				_, err := f.o.Endpoint("csrf")
				assert.Error(t, err, "the refused request changed nothing")
				return
			}
			require.Equal(t, tt.status, rec.Code, "%s", rec.Body)
		})
	}
	t.Run("an allowed origin gets CORS headers", func(t *testing.T) {
		f := newFixture(t, allowed)
		rec := call(f.h, http.MethodGet, "/registry/endpoints/orders", "", header("Origin", "https://ops.example.com"))
		require.Equal(t, http.StatusOK, rec.Code)
		assert.Equal(t, "https://ops.example.com", rec.Header().Get("Access-Control-Allow-Origin"))
		assert.Contains(t, rec.Header().Get("Access-Control-Expose-Headers"), "ETag")
		assert.Contains(t, rec.Header().Values("Vary"), "Origin")
	})
	t.Run("an allowed origin's preflight is answered", func(t *testing.T) {
		f := newFixture(t, allowed, withToken)
		rec := call(f.h, http.MethodOptions, "/registry/endpoints/orders", "",
			header("Origin", "https://ops.example.com"), header("Access-Control-Request-Method", "PUT"),
			header("Access-Control-Request-Headers", "authorization, content-type, if-match"))
		require.Equal(t, http.StatusNoContent, rec.Code, "%s", rec.Body)
		assert.Equal(t, "https://ops.example.com", rec.Header().Get("Access-Control-Allow-Origin"))
		assert.Equal(t, "GET, HEAD, PUT, DELETE", rec.Header().Get("Access-Control-Allow-Methods"))
		assert.Contains(t, rec.Header().Get("Access-Control-Allow-Headers"), "Authorization")
	})
	t.Run("a foreign origin's preflight is refused", func(t *testing.T) {
		f := newFixture(t, allowed)
		rec := call(f.h, http.MethodOptions, "/registry/endpoints", "",
			header("Origin", "https://evil.example"), header("Access-Control-Request-Method", "POST"))
		requireProblem(t, rec, http.StatusForbidden, "origin-not-allowed")
		assert.Empty(t, rec.Header().Get("Access-Control-Allow-Origin"))
	})
	t.Run("the admin's own origin still needs a loopback Host without token", func(t *testing.T) {
		f := newFixture(t)
		rec := call(f.h, http.MethodPost, "/registry/endpoints", create, host("evil.example:9000"), header("Origin", "http://evil.example:9000"))
		requireProblem(t, rec, http.StatusForbidden, "host-not-allowed")
	})
}

func TestOpenRoutes(t *testing.T) {
	metrics := func(o *admin.Options) {
		o.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("up 1\n")) })
	}
	modes := []struct {
		name string
		conf []func(*admin.Options)
	}{
		{"with a token", []func(*admin.Options){metrics, withToken}},
		{"without a token", []func(*admin.Options){metrics}},
	}
	for _, mode := range modes {
		for _, target := range []string{"/health", "/health/live", "/metrics", "/openapi.json", "/docs", "/redoc"} {
			t.Run(target+" is open to a remote client "+mode.name, func(t *testing.T) {
				f := newFixture(t, mode.conf...)
				rec := call(f.h, http.MethodGet, target, "", remote("198.51.100.20:6000"), host("gateway.example.com"))
				assert.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
			})
		}
	}
	t.Run("Routes marks exactly /health, /health/live, /metrics and the pages without data open", func(t *testing.T) {
		f := newFixture(t)
		var open []string
		for _, r := range f.h.Routes() {
			if r.Open {
				open = append(open, r.Method+" "+r.Pattern)
			}
		}
		assert.Equal(t, []string{"GET /health", "GET /health/live", "GET /metrics", "GET /openapi.json", "GET /docs", "GET /redoc"}, open)
	})
}

// TestTokenNeverLeaks drives every route with the token configured, in the
// config shown by the API and in the config's last error, and checks that
// it appears in no response (body or header) and no log line.
func TestTokenNeverLeaks(t *testing.T) {
	f := newFixture(t, withToken, func(o *admin.Options) {
		o.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("up 1\n")) })
	})
	leak := "open " + testToken + ": permission denied"
	f.conf.set(func(c *fakeConfig) { c.status.LastError = &leak })

	var seen strings.Builder
	record := func(rec *httptest.ResponseRecorder) {
		for k, vs := range rec.Header() {
			seen.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
		}
		seen.WriteString(rec.Body.String() + "\n")
	}
	auth := bearer(testToken)
	for _, r := range f.h.Routes() {
		target := strings.NewReplacer("{id}", "orders", "{path...}", "orders/x").Replace(r.Pattern)
		for _, opts := range [][]reqOption{{auth}, {bearer(testToken + "-wrong")}, nil} {
			rec := call(f.h, r.Method, target, "", opts...)
			record(rec)
		}
	}
	// The token inside a request path or a reload error must not come back either.
	f.conf.set(func(c *fakeConfig) { c.reloadErr = errors.New("token " + testToken + " rejected") })
	for _, target := range []string{"/config/reload", "/registry/endpoints/" + testToken} {
		rec := call(f.h, http.MethodPost, target, "", auth)
		record(rec)
	}

	responses, logs := seen.String(), f.logs.String()
	require.True(t, strings.Contains(logs, `"logger":"orchestrator.admin"`), "the admin logs its requests")
	if i := strings.Index(responses, testToken); i >= 0 {
		t.Errorf("the token appears in a response: …%s…", responses[max(0, i-200):i])
	}
	if i := strings.Index(logs, testToken); i >= 0 {
		t.Errorf("the token appears in the logs: …%s…", logs[max(0, i-200):i])
	}
	assert.False(t, strings.Contains(strings.ToLower(logs), "authorization"), "no Authorization header is logged")
	assert.True(t, strings.Contains(responses, "[redacted]"), "secrets are replaced, not silently dropped")
}

// TestPprof: the profiles are off unless Options.Pprof is set, and then
// behind the same guard as every protected route.
func TestPprof(t *testing.T) {
	profiles := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("profile " + r.URL.Path))
	})
	withPprof := func(o *admin.Options) { o.Pprof = profiles }

	t.Run("off by default: 404 even to an authorized caller", func(t *testing.T) {
		f := newFixture(t, withToken)
		requireProblem(t, call(f.h, http.MethodGet, "/debug/pprof/", "", bearer(testToken)), http.StatusNotFound, "no-admin-route")
		requireProblem(t, call(f.h, http.MethodGet, "/debug/pprof/heap", "", bearer(testToken)), http.StatusNotFound, "no-admin-route")
	})
	t.Run("on with a token: answers the token, refuses anyone else", func(t *testing.T) {
		f := newFixture(t, withToken, withPprof)
		for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap"} {
			rec := call(f.h, http.MethodGet, p, "", bearer(testToken))
			require.Equal(t, http.StatusOK, rec.Code, "GET %s: %s", p, rec.Body)
			assert.Equal(t, "profile "+p, rec.Body.String())
			requireProblem(t, call(f.h, http.MethodGet, p, ""), http.StatusUnauthorized, "unauthorized")
			requireProblem(t, call(f.h, http.MethodGet, p, "", bearer("wrong"), remote("203.0.113.50:4444")), http.StatusUnauthorized, "unauthorized")
		}
	})
	t.Run("on without a token: loopback only", func(t *testing.T) {
		f := newFixture(t, withPprof)
		rec := call(f.h, http.MethodGet, "/debug/pprof/", "")
		require.Equal(t, http.StatusOK, rec.Code, "loopback GET: %s", rec.Body)
		requireProblem(t, call(f.h, http.MethodGet, "/debug/pprof/", "", remote("203.0.113.7:5000")), http.StatusForbidden, "not-loopback")
		requireProblem(t, call(f.h, http.MethodGet, "/debug/pprof/", "", host("evil.example")), http.StatusForbidden, "host-not-allowed")
	})
	t.Run("go tool pprof's symbol lookup keeps its octet-stream body", func(t *testing.T) {
		// The pprof tool posts addresses as application/octet-stream; the
		// lookup changes nothing, so the JSON-only rule does not apply.
		f := newFixture(t, withPprof)
		rec := call(f.h, http.MethodPost, "/debug/pprof/symbol", "0x1234", contentType("application/octet-stream"))
		assert.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
		requireProblem(t, call(f.h, http.MethodPost, "/debug/pprof/symbol", "0x1234", header("Sec-Fetch-Site", "cross-site")),
			http.StatusForbidden, "cross-site")
	})
	t.Run("an unknown path answers 404 whatever the body", func(t *testing.T) {
		f := newFixture(t)
		requireProblem(t, call(f.h, http.MethodPost, "/nope", "x", contentType("text/plain")), http.StatusNotFound, "no-admin-route")
	})
	t.Run("not part of the documented routes", func(t *testing.T) {
		f := newFixture(t, withPprof)
		for _, r := range f.h.Routes() {
			assert.NotContains(t, r.Pattern, "pprof")
		}
	})
}

// TestWriteMediaType: a write that carries a body must label it JSON (or
// YAML on /config/validate). text/plain, form and multipart bodies are what
// a browser sends cross-origin without a preflight, so refusing them closes
// the CSRF hole of a browser that omits Origin; a bodyless write needs no
// Content-Type at all.
func TestWriteMediaType(t *testing.T) {
	const create = `{"name":"csrf","url":"http://127.0.0.1:1"}`
	refused := []struct {
		name   string
		method string
		target string
		body   string
		opts   []reqOption
	}{
		{"a text/plain POST", http.MethodPost, "/registry/endpoints", create, []reqOption{contentType("text/plain")}},
		{"a text/plain POST with a charset", http.MethodPost, "/registry/endpoints", create, []reqOption{contentType("text/plain; charset=utf-8")}},
		{"a form POST", http.MethodPost, "/registry/endpoints", "name=csrf&url=http://127.0.0.1:1", []reqOption{contentType("application/x-www-form-urlencoded")}},
		{"a multipart POST", http.MethodPost, "/registry/endpoints", "--b\r\n\r\n" + create + "\r\n--b--\r\n", []reqOption{contentType("multipart/form-data; boundary=b")}},
		{"a POST without Content-Type", http.MethodPost, "/registry/endpoints", create, []reqOption{noContentType}},
		{"a chunked POST without Content-Type", http.MethodPost, "/registry/endpoints", create, []reqOption{noContentType, chunked}},
		{"a POST with an unparseable Content-Type", http.MethodPost, "/registry/endpoints", create, []reqOption{contentType("json")}},
		{"a POST labelled YAML off /config/validate", http.MethodPost, "/registry/endpoints", create, []reqOption{contentType("application/yaml")}},
		{"a text/plain PUT", http.MethodPut, "/registry/endpoints/orders", create, []reqOption{contentType("text/plain")}},
		{"a text/plain DELETE with a body", http.MethodDelete, "/registry/endpoints/orders", "x", []reqOption{contentType("text/plain")}},
		{"a form POST to a lever", http.MethodPost, "/circuit-breaker/trip/orders", "a=b", []reqOption{contentType("application/x-www-form-urlencoded")}},
		{"a text/plain body to /config/validate", http.MethodPost, "/config/validate", "endpoints: []\n", []reqOption{contentType("text/plain")}},
	}
	for _, tt := range refused {
		t.Run("refuses "+tt.name+" with 415", func(t *testing.T) {
			f := newFixture(t)
			rec := call(f.h, tt.method, tt.target, tt.body, tt.opts...)
			p := requireProblem(t, rec, http.StatusUnsupportedMediaType, "unsupported-media-type")
			assert.Contains(t, p.Detail, "application/json", "the detail says what is accepted")
			accept := rec.Header().Get("Accept")
			assert.Contains(t, accept, "application/json", "Accept lists the accepted media types (RFC 9110 §15.5.16)")
			if tt.target == "/config/validate" {
				assert.Contains(t, accept, "application/yaml")
			} else {
				assert.NotContains(t, accept, "yaml")
			}
			assert.Len(t, f.o.Endpoints(), 3, "nothing was registered or removed")
			ep, err := f.o.Endpoint("orders")
			require.NoError(t, err)
			assert.Equal(t, "closed", string(ep.CircuitBreakerState), "nothing was tripped")
		})
	}
	t.Run("the 415 names the Content-Type received", func(t *testing.T) {
		f := newFixture(t)
		p := requireProblem(t, call(f.h, http.MethodPost, "/registry/endpoints", create, contentType("text/plain; charset=utf-8")),
			http.StatusUnsupportedMediaType, "unsupported-media-type")
		assert.Contains(t, p.Detail, "text/plain; charset=utf-8")
		p = requireProblem(t, call(f.h, http.MethodPost, "/registry/endpoints", create, noContentType),
			http.StatusUnsupportedMediaType, "unsupported-media-type")
		assert.Contains(t, p.Detail, "no Content-Type")
	})

	accepted := []struct {
		name   string
		method string
		target string
		body   string
		opts   []reqOption
		status int
	}{
		{"application/json", http.MethodPost, "/registry/endpoints", create, []reqOption{contentType("application/json")}, http.StatusCreated},
		{"application/json with a charset", http.MethodPost, "/registry/endpoints", create, []reqOption{contentType("application/json; charset=utf-8")}, http.StatusCreated},
		{"application/json in upper case", http.MethodPost, "/registry/endpoints", create, []reqOption{contentType("Application/JSON; Charset=UTF-8")}, http.StatusCreated},
		{"a +json type", http.MethodPost, "/registry/endpoints", create, []reqOption{contentType("application/merge-patch+json")}, http.StatusCreated},
		{"JSON on a PUT", http.MethodPut, "/registry/endpoints/orders", `{"name":"orders","url":"http://127.0.0.1:7"}`, nil, http.StatusConflict},
		{"application/yaml on /config/validate", http.MethodPost, "/config/validate", "endpoints: []\n", []reqOption{contentType("application/yaml")}, http.StatusOK},
		{"application/x-yaml on /config/validate", http.MethodPost, "/config/validate", "endpoints: []\n", []reqOption{contentType("application/x-yaml")}, http.StatusOK},
		{"text/yaml on /config/validate", http.MethodPost, "/config/validate", "endpoints: []\n", []reqOption{contentType("text/yaml; charset=utf-8")}, http.StatusOK},
		{"text/x-yaml on /config/validate", http.MethodPost, "/config/validate", "endpoints: []\n", []reqOption{contentType("text/x-yaml")}, http.StatusOK},
		{"JSON on /config/validate", http.MethodPost, "/config/validate", `{"endpoints":[]}`, nil, http.StatusOK},
		{"a bodyless reload", http.MethodPost, "/config/reload", "", nil, http.StatusOK},
		{"a bodyless trip", http.MethodPost, "/circuit-breaker/trip/orders", "", nil, http.StatusOK},
		{"a bodyless trip labelled text/plain", http.MethodPost, "/circuit-breaker/trip/orders", "", []reqOption{contentType("text/plain")}, http.StatusOK},
		{"a bodyless reset-all", http.MethodPost, "/circuit-breaker/reset-all", "", nil, http.StatusOK},
		{"a bodyless sync", http.MethodPost, "/registry/sync", "", nil, http.StatusOK},
		{"a bodyless DELETE", http.MethodDelete, "/registry/endpoints/orders", "", nil, http.StatusConflict},
		{"a GET with a text/plain body", http.MethodGet, "/registry/endpoints", "x", []reqOption{contentType("text/plain")}, http.StatusOK},
	}
	for _, tt := range accepted {
		t.Run("accepts "+tt.name, func(t *testing.T) {
			f := newFixture(t)
			rec := call(f.h, tt.method, tt.target, tt.body, tt.opts...)
			assert.Equal(t, tt.status, rec.Code, "%s", rec.Body)
		})
	}
	t.Run("deletes an API-owned endpoint without a body", func(t *testing.T) {
		f := newFixture(t)
		require.Equal(t, http.StatusCreated, call(f.h, http.MethodPost, "/registry/endpoints", create).Code)
		rec := call(f.h, http.MethodDelete, "/registry/endpoints/csrf", "")
		assert.Equal(t, http.StatusNoContent, rec.Code, "%s", rec.Body)
	})
	t.Run("a caller without the token learns 401, not what bodies are accepted", func(t *testing.T) {
		f := newFixture(t, withToken)
		requireProblem(t, call(f.h, http.MethodPost, "/registry/endpoints", create, contentType("text/plain")), http.StatusUnauthorized, "unauthorized")
		requireProblem(t, call(f.h, http.MethodPost, "/registry/endpoints", create, contentType("text/plain"), bearer(testToken)),
			http.StatusUnsupportedMediaType, "unsupported-media-type")
	})
	t.Run("the /docs page's own request passes", func(t *testing.T) {
		// docs.js sends the requestBody's media type, same-origin, with the token.
		f := newFixture(t, withToken)
		rec := call(f.h, http.MethodPost, "/registry/endpoints", create, bearer(testToken), contentType("application/json"),
			header("Origin", "http://localhost:9000"), header("Sec-Fetch-Site", "same-origin"))
		assert.Equal(t, http.StatusCreated, rec.Code, "%s", rec.Body)
	})
}

// TestCrossSiteWrites: a browser marks a request from another site
// Sec-Fetch-Site: cross-site, a header no page can forge. Such a write is
// refused even with the token and even without Origin; reads, and writes
// the browser calls same-origin, same-site or user-initiated ("none"), pass.
func TestCrossSiteWrites(t *testing.T) {
	refused := []struct {
		name   string
		method string
		target string
		body   string
		opts   []reqOption
	}{
		{"a bodyless lever", http.MethodPost, "/circuit-breaker/trip/orders", "", nil},
		{"a JSON POST", http.MethodPost, "/registry/endpoints", `{"name":"csrf","url":"http://127.0.0.1:1"}`, nil},
		{"a DELETE", http.MethodDelete, "/registry/endpoints/orders", "", nil},
		{"a reload", http.MethodPost, "/config/reload", "", nil},
		{"a lever with the header in upper case", http.MethodPost, "/circuit-breaker/trip/orders", "", []reqOption{header("Sec-Fetch-Site", "Cross-Site")}},
		{"a method the path does not serve", http.MethodPatch, "/registry/endpoints/orders", "", nil},
	}
	for _, mode := range []struct {
		name string
		conf []func(*admin.Options)
		auth []reqOption
	}{
		{"without a token", nil, nil},
		{"with a valid token", []func(*admin.Options){withToken}, []reqOption{bearer(testToken)}},
	} {
		for _, tt := range refused {
			t.Run("refuses "+tt.name+" "+mode.name, func(t *testing.T) {
				f := newFixture(t, mode.conf...)
				opts := append(append([]reqOption{}, mode.auth...), tt.opts...)
				if len(tt.opts) == 0 {
					opts = append(opts, header("Sec-Fetch-Site", "cross-site"))
				}
				p := requireProblem(t, call(f.h, tt.method, tt.target, tt.body, opts...), http.StatusForbidden, "cross-site")
				assert.Contains(t, p.Detail, "Sec-Fetch-Site")
				assert.Len(t, f.o.Endpoints(), 3, "nothing was registered or removed")
				ep, err := f.o.Endpoint("orders")
				require.NoError(t, err)
				assert.Equal(t, "closed", string(ep.CircuitBreakerState), "nothing was tripped")
			})
		}
	}
	for _, site := range []string{"same-origin", "same-site", "none"} {
		t.Run("accepts a write marked "+site, func(t *testing.T) {
			f := newFixture(t)
			rec := call(f.h, http.MethodPost, "/circuit-breaker/trip/orders", "", header("Sec-Fetch-Site", site))
			assert.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
		})
	}
	t.Run("accepts a cross-site read", func(t *testing.T) {
		f := newFixture(t)
		rec := call(f.h, http.MethodGet, "/registry/endpoints", "", header("Sec-Fetch-Site", "cross-site"))
		decode[endpointList](t, rec, http.StatusOK)
	})
	t.Run("accepts a cross-site write from an allowed origin", func(t *testing.T) {
		// Listing an origin in allowed_origins is the operator's consent to
		// that site's dashboard; it preflights and must send JSON anyway.
		f := newFixture(t, withToken, func(o *admin.Options) { o.AllowedOrigins = []string{"https://ops.example.net"} })
		rec := call(f.h, http.MethodPost, "/circuit-breaker/trip/orders", "", bearer(testToken),
			header("Origin", "https://ops.example.net"), header("Sec-Fetch-Site", "cross-site"))
		assert.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
		assert.Equal(t, "https://ops.example.net", rec.Header().Get("Access-Control-Allow-Origin"))
	})
	t.Run("a foreign origin is still refused as such", func(t *testing.T) {
		f := newFixture(t)
		rec := call(f.h, http.MethodPost, "/circuit-breaker/trip/orders", "",
			header("Origin", "https://evil.example"), header("Sec-Fetch-Site", "cross-site"))
		requireProblem(t, rec, http.StatusForbidden, "origin-not-allowed")
	})
}
