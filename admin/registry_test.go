package admin_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

func TestRegistryList(t *testing.T) {
	f := newFixture(t)
	_, err := f.o.Register(t.Context(), orchestrator.Endpoint{Name: "extra", URL: f.backend.URL})
	require.NoError(t, err)

	tests := []struct {
		name   string
		target string
		want   []string
	}{
		{"lists every endpoint", "/registry/endpoints", []string{"extra", "legacy", "orders", "users_v1"}},
		{"filters by source", "/registry/endpoints?source=api", []string{"extra"}},
		{"filters by status", "/registry/endpoints?status=unhealthy", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decode[endpointList](t, call(f.h, http.MethodGet, tt.target, ""), http.StatusOK)
			assert.Equal(t, tt.want, got.ids())
			assert.Equal(t, len(tt.want), got.Count)
		})
	}
	t.Run("answers 400 for an unknown filter value", func(t *testing.T) {
		p := requireProblem(t, call(f.h, http.MethodGet, "/registry/endpoints?source=file", ""), http.StatusBadRequest, "invalid-parameter")
		require.Len(t, p.Errors, 1)
		assert.Equal(t, "source", p.Errors[0].Field)
	})
}

func TestRegistryGet(t *testing.T) {
	f := newFixture(t)
	t.Run("answers the endpoint with its revision as ETag", func(t *testing.T) {
		rec := call(f.h, http.MethodGet, "/registry/endpoints/orders", "")
		got := decode[orchestrator.RegisteredEndpoint](t, rec, http.StatusOK)
		assert.Equal(t, "orders", got.ID)
		assert.NotZero(t, got.Revision)
		assert.Equal(t, `"`+strconv.FormatUint(got.Revision, 10)+`"`, rec.Header().Get("ETag"))
		assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	})
	t.Run("answers 404 for an unknown id", func(t *testing.T) {
		requireProblem(t, call(f.h, http.MethodGet, "/registry/endpoints/nope", ""), http.StatusNotFound, "not-found")
	})
}

func TestRegistryCreate(t *testing.T) {
	t.Run("registers an endpoint that is routable at once", func(t *testing.T) {
		f := newFixture(t)
		body := `{"name":"billing","version":"v2","url":"` + f.backend.URL + `/bill","methods":["get"],"timeout":"5s"}`
		rec := call(f.h, http.MethodPost, "/registry/endpoints", body)
		got := decode[orchestrator.RegisteredEndpoint](t, rec, http.StatusCreated)
		assert.Equal(t, "billing_v2", got.ID)
		assert.Equal(t, orchestrator.SourceAPI, got.Source)
		assert.Equal(t, []string{"GET"}, got.Config.Methods)
		assert.Equal(t, "/registry/endpoints/billing_v2", rec.Header().Get("Location"))
		assert.Equal(t, `"`+strconv.FormatUint(got.Revision, 10)+`"`, rec.Header().Get("ETag"))

		proxied := f.proxied(t, "/orchestrator/billing/v2/invoices?x=1")
		assert.Equal(t, http.StatusOK, proxied.Code)
		assert.Equal(t, "backend GET /bill/invoices?x=1", proxied.Body.String())
	})

	t.Run("Location keeps the prefix the admin API is mounted under", func(t *testing.T) {
		f := newFixture(t)
		mounted := http.StripPrefix("/admin", f.h)
		rec := call(mounted, http.MethodPost, "/admin/registry/endpoints", `{"name":"billing","url":"`+f.backend.URL+`"}`)
		require.Equal(t, http.StatusCreated, rec.Code, "%s", rec.Body)
		assert.Equal(t, "/admin/registry/endpoints/billing", rec.Header().Get("Location"))
	})

	tests := []struct {
		name   string
		body   string
		status int
		kind   string
		fields []string // every field the problem must name
	}{
		{"refuses a duplicate id with 409", `{"name":"orders","url":"http://127.0.0.1:1"}`, http.StatusConflict, "conflict", nil},
		{"refuses a taken route with 409", `{"id":"other","name":"orders","url":"http://127.0.0.1:1"}`, http.StatusConflict, "conflict", nil},
		{"lists every invalid field", `{"name":"bad name!","url":"","auth_type":"magic","health_check_path":"health"}`, http.StatusBadRequest, "validation-failed",
			[]string{"name", "url", "auth_type", "health_check_path"}},
		{"names an unknown field", `{"name":"x","url":"http://127.0.0.1:1","colour":"red"}`, http.StatusBadRequest, "invalid-json", []string{"colour"}},
		{"names a field of the wrong type", `{"name":"x","url":"http://127.0.0.1:1","methods":"GET"}`, http.StatusBadRequest, "invalid-json", []string{"methods"}},
		{"names a nested field of the wrong type", `{"name":"x","url":"http://127.0.0.1:1","circuit_breaker":{"failure_threshold":"many"}}`, http.StatusBadRequest, "invalid-json",
			[]string{"circuit_breaker.failure_threshold"}},
		{"refuses malformed JSON", `{"name":"x",`, http.StatusBadRequest, "invalid-json", nil},
		{"refuses a syntax error", `{"name" "x"}`, http.StatusBadRequest, "invalid-json", nil},
		{"refuses an empty body", ``, http.StatusBadRequest, "invalid-json", nil},
		{"refuses trailing data", `{"name":"x","url":"http://127.0.0.1:1"} {"name":"y"}`, http.StatusBadRequest, "invalid-json", nil},
		{"refuses an array with an invalid endpoint, naming it by index", `[{"name":"x"}]`, http.StatusBadRequest, "validation-failed", []string{"[0].url"}},
		{"refuses an empty array", `[]`, http.StatusBadRequest, "invalid-json", nil},
		{"refuses an invalid duration", `{"name":"x","url":"http://127.0.0.1:1","timeout":"soon"}`, http.StatusBadRequest, "invalid-json", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			p := requireProblem(t, call(f.h, http.MethodPost, "/registry/endpoints", tt.body), tt.status, tt.kind)
			var named []string
			for _, fe := range p.Errors {
				named = append(named, fe.Field)
				assert.NotEmpty(t, fe.Message, "field error %q has a message", fe.Field)
			}
			for _, field := range tt.fields {
				assert.Contains(t, named, field, "the problem names %q: %+v", field, p)
			}
			assert.Len(t, f.o.Endpoints(), 3, "nothing was registered")
		})
	}

	t.Run("answers 413 past 1 MiB", func(t *testing.T) {
		f := newFixture(t)
		body := `{"name":"x","url":"http://127.0.0.1:1","body":"` + strings.Repeat("a", 1<<20) + `"}`
		requireProblem(t, call(f.h, http.MethodPost, "/registry/endpoints", body), http.StatusRequestEntityTooLarge, "body-too-large")
	})
	t.Run("answers 413 past 1 MiB of a body of unknown length", func(t *testing.T) {
		f := newFixture(t)
		body := `{"name":"x","url":"http://127.0.0.1:1","fallback":{"body":"` + strings.Repeat("a", 1<<20) + `"}}`
		rec := call(f.h, http.MethodPost, "/registry/endpoints", body, func(r *http.Request) { r.ContentLength = -1 })
		requireProblem(t, rec, http.StatusRequestEntityTooLarge, "body-too-large")
	})
}

func TestRegistryUpdate(t *testing.T) {
	// register adds the API-owned endpoint "pay" and returns its ETag.
	register := func(t *testing.T, f *fixture) string {
		t.Helper()
		rec := call(f.h, http.MethodPost, "/registry/endpoints", `{"name":"pay","url":"`+f.backend.URL+`/pay"}`)
		require.Equal(t, http.StatusCreated, rec.Code, "%s", rec.Body)
		return rec.Header().Get("ETag")
	}
	t.Run("replaces the config, taking the id from the path", func(t *testing.T) {
		f := newFixture(t)
		before := register(t, f)
		rec := call(f.h, http.MethodPut, "/registry/endpoints/pay", `{"name":"pay","url":"`+f.backend.URL+`/pay2"}`)
		got := decode[orchestrator.RegisteredEndpoint](t, rec, http.StatusOK)
		assert.Equal(t, "pay", got.ID)
		assert.Equal(t, f.backend.URL+"/pay2", got.Config.URL)
		assert.NotEqual(t, before, rec.Header().Get("ETag"), "the ETag changes with the revision")
		assert.Equal(t, "backend GET /pay2/x", f.proxied(t, "/orchestrator/pay/x").Body.String())
	})

	tests := []struct {
		name    string
		target  string
		body    string
		ifMatch func(etag string) string // "" = no If-Match
		status  int
		kind    string
	}{
		{"accepts a matching If-Match", "/registry/endpoints/pay", `{"name":"pay","url":"http://127.0.0.1:7"}`,
			func(etag string) string { return etag }, http.StatusOK, ""},
		{"accepts If-Match: *", "/registry/endpoints/pay", `{"name":"pay","url":"http://127.0.0.1:7"}`,
			func(string) string { return "*" }, http.StatusOK, ""},
		{"accepts a list holding the ETag", "/registry/endpoints/pay", `{"name":"pay","url":"http://127.0.0.1:7"}`,
			func(etag string) string { return `"12345", ` + etag }, http.StatusOK, ""},
		{"answers 412 for a stale If-Match", "/registry/endpoints/pay", `{"name":"pay","url":"http://127.0.0.1:7"}`,
			func(string) string { return `"999999"` }, http.StatusPreconditionFailed, "precondition-failed"},
		{"answers 412 for a weak tag", "/registry/endpoints/pay", `{"name":"pay","url":"http://127.0.0.1:7"}`,
			func(etag string) string { return "W/" + etag }, http.StatusPreconditionFailed, "precondition-failed"},
		{"accepts the path's id in the body", "/registry/endpoints/pay", `{"id":"pay","name":"pay","url":"http://127.0.0.1:7"}`,
			nil, http.StatusOK, ""},
		{"answers 400 when the body's id differs", "/registry/endpoints/pay", `{"id":"other","name":"pay","url":"http://127.0.0.1:7"}`,
			nil, http.StatusBadRequest, "validation-failed"},
		{"answers 400 for an invalid config", "/registry/endpoints/pay", `{"name":"pay","url":"nope"}`,
			nil, http.StatusBadRequest, "validation-failed"},
		{"answers 400 for an unknown field", "/registry/endpoints/pay", `{"name":"pay","url":"http://127.0.0.1:7","urls":[]}`,
			nil, http.StatusBadRequest, "invalid-json"},
		{"answers 404 for an unknown id", "/registry/endpoints/nope", `{"name":"nope","url":"http://127.0.0.1:7"}`,
			nil, http.StatusNotFound, "not-found"},
		{"answers 409 for a config-owned endpoint", "/registry/endpoints/orders", `{"name":"orders","url":"http://127.0.0.1:7"}`,
			nil, http.StatusConflict, "conflict"},
		{"answers 409 when the new route is taken", "/registry/endpoints/pay", `{"name":"orders","url":"http://127.0.0.1:7"}`,
			nil, http.StatusConflict, "conflict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			etag := register(t, f)
			var opts []reqOption
			if tt.ifMatch != nil {
				opts = append(opts, header("If-Match", tt.ifMatch(etag)))
			}
			rec := call(f.h, http.MethodPut, tt.target, tt.body, opts...)
			if tt.kind == "" {
				got := decode[orchestrator.RegisteredEndpoint](t, rec, tt.status)
				assert.Equal(t, "http://127.0.0.1:7", got.Config.URL)
				return
			}
			p := requireProblem(t, rec, tt.status, tt.kind)
			if tt.status == http.StatusConflict && strings.Contains(tt.target, "orders") {
				assert.Contains(t, p.Detail, "edit the file", "a config-owned endpoint's 409 says what to do")
			}
			ep, err := f.o.Endpoint("pay")
			require.NoError(t, err)
			assert.Equal(t, f.backend.URL+"/pay", ep.Config.URL, "nothing changed")
		})
	}
}

func TestRegistryDelete(t *testing.T) {
	tests := []struct {
		name    string
		id      string
		ifMatch string
		status  int
		kind    string
	}{
		{"deregisters an API-owned endpoint", "pay", "", http.StatusNoContent, ""},
		{"honours a matching If-Match", "pay", "current", http.StatusNoContent, ""},
		{"answers 412 for a stale If-Match", "pay", `"999999"`, http.StatusPreconditionFailed, "precondition-failed"},
		{"answers 404 for an unknown id", "nope", "", http.StatusNotFound, "not-found"},
		{"answers 409 for a config-owned endpoint", "orders", "", http.StatusConflict, "conflict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			rec := call(f.h, http.MethodPost, "/registry/endpoints", `{"name":"pay","url":"`+f.backend.URL+`"}`)
			require.Equal(t, http.StatusCreated, rec.Code, "%s", rec.Body)
			var opts []reqOption
			switch tt.ifMatch {
			case "":
			case "current":
				opts = append(opts, header("If-Match", rec.Header().Get("ETag")))
			default:
				opts = append(opts, header("If-Match", tt.ifMatch))
			}
			rec = call(f.h, http.MethodDelete, "/registry/endpoints/"+tt.id, "", opts...)
			if tt.kind != "" {
				requireProblem(t, rec, tt.status, tt.kind)
				assert.Len(t, f.o.Endpoints(), 4, "nothing was removed")
				return
			}
			require.Equal(t, tt.status, rec.Code, "%s", rec.Body)
			assert.Empty(t, rec.Body.String())
			requireProblem(t, call(f.h, http.MethodGet, "/registry/endpoints/"+tt.id, ""), http.StatusNotFound, "not-found")
			assert.Equal(t, http.StatusNotFound, f.proxied(t, "/orchestrator/pay/x").Code, "the route is gone")
		})
	}
}

func TestRegistryStats(t *testing.T) {
	type stats struct {
		Total          int            `json:"total"`
		BySource       map[string]int `json:"by_source"`
		ByStatus       map[string]int `json:"by_status"`
		ByBreakerState map[string]int `json:"by_circuit_breaker_state"`
		Routes         int            `json:"routes"`
	}
	f := newFixture(t)
	_, err := f.o.Register(t.Context(), orchestrator.Endpoint{Name: "extra", URL: f.backend.URL})
	require.NoError(t, err)
	got := decode[stats](t, call(f.h, http.MethodGet, "/registry/stats", ""), http.StatusOK)
	assert.Equal(t, 4, got.Total)
	assert.Equal(t, map[string]int{"config": 3, "api": 1}, got.BySource)
	assert.Equal(t, 4, got.Routes)
	assert.Len(t, got.ByStatus, 4)
	assert.Len(t, got.ByBreakerState, 4)

	t.Run("needs authorization", func(t *testing.T) {
		f := newFixture(t, withToken)
		requireProblem(t, call(f.h, http.MethodGet, "/registry/stats", ""), http.StatusUnauthorized, "unauthorized")
	})
}

func TestRegistrySync(t *testing.T) {
	t.Run("re-applies the file's endpoints", func(t *testing.T) {
		f := newFixture(t)
		// Drift: the file now lists only users_v1; sync makes the gateway follow.
		f.conf.set(func(c *fakeConfig) { c.cfg.Endpoints = c.cfg.Endpoints[:1] })
		got := decode[endpointList](t, call(f.h, http.MethodPost, "/registry/sync", ""), http.StatusOK)
		assert.Equal(t, []string{"users_v1"}, got.ids())
		assert.Equal(t, http.StatusNotFound, f.proxied(t, "/orchestrator/orders/x").Code)
	})
	t.Run("answers 409 without a config file", func(t *testing.T) {
		f := newFixture(t, withoutConfig)
		requireProblem(t, call(f.h, http.MethodPost, "/registry/sync", ""), http.StatusConflict, "no-config-file")
	})
	t.Run("answers 400 listing every error when the file's endpoints collide", func(t *testing.T) {
		f := newFixture(t)
		_, err := f.o.Register(t.Context(), orchestrator.Endpoint{Name: "extra", URL: f.backend.URL})
		require.NoError(t, err)
		f.conf.set(func(c *fakeConfig) {
			c.cfg.Endpoints = append(c.cfg.Endpoints, orchestrator.Endpoint{Name: "extra", URL: f.backend.URL})
		})
		p := requireProblem(t, call(f.h, http.MethodPost, "/registry/sync", ""), http.StatusBadRequest, "validation-failed")
		assert.NotEmpty(t, p.Errors)
	})
}
