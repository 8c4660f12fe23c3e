package admin_test

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/admin"
	"github.com/orchestrator-go/orchestrator/config"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

func TestConfigStatus(t *testing.T) {
	t.Run("answers the manager's status", func(t *testing.T) {
		f := newFixture(t)
		got := decode[admin.ConfigStatus](t, call(f.h, http.MethodGet, "/config/status", ""), http.StatusOK)
		assert.Equal(t, "/etc/orchestrator/config.yaml", got.Path)
		assert.Equal(t, "9f86d081", got.Version)
		assert.True(t, got.Watching)
		require.NotNil(t, got.LoadedAt)
		assert.Nil(t, got.LastError)
	})
	t.Run("answers an empty status without a config file", func(t *testing.T) {
		f := newFixture(t, withoutConfig)
		rec := call(f.h, http.MethodGet, "/config/status", "")
		got := decode[map[string]any](t, rec, http.StatusOK)
		assert.Equal(t, map[string]any{
			"path": "", "version": "", "loaded_at": nil, "reload_count": float64(0),
			"last_error": nil, "last_error_at": nil, "watching": false,
		}, got)
	})
	t.Run("needs authorization", func(t *testing.T) {
		f := newFixture(t, withToken)
		requireProblem(t, call(f.h, http.MethodGet, "/config/status", ""), http.StatusUnauthorized, "unauthorized")
	})
}

func TestConfigEndpoints(t *testing.T) {
	type list struct {
		Endpoints []orchestrator.Endpoint `json:"endpoints"`
		Count     int                     `json:"count"`
	}
	ids := func(l list) []string {
		var out []string
		for _, ep := range l.Endpoints {
			out = append(out, ep.ID)
		}
		return out
	}
	t.Run("lists the applied config's endpoints with their ids", func(t *testing.T) {
		f := newFixture(t)
		got := decode[list](t, call(f.h, http.MethodGet, "/config/endpoints", ""), http.StatusOK)
		assert.Equal(t, 3, got.Count)
		assert.Equal(t, []string{"users_v1", "orders", "legacy"}, ids(got))
	})
	t.Run("lists the program's config endpoints without a config file", func(t *testing.T) {
		f := newFixture(t, withoutConfig)
		_, err := f.o.Register(t.Context(), orchestrator.Endpoint{Name: "extra", URL: f.backend.URL})
		require.NoError(t, err)
		got := decode[list](t, call(f.h, http.MethodGet, "/config/endpoints", ""), http.StatusOK)
		assert.Equal(t, []string{"legacy", "orders", "users_v1"}, ids(got), "API-owned endpoints are not config")
	})
	t.Run("refuses a remote client without token", func(t *testing.T) {
		f := newFixture(t)
		requireProblem(t, call(f.h, http.MethodGet, "/config/endpoints", "", remote("203.0.113.9:1234")), http.StatusForbidden, "not-loopback")
	})
}

func TestConfigReload(t *testing.T) {
	t.Run("applies the file and answers the new status", func(t *testing.T) {
		f := newFixture(t)
		f.conf.set(func(c *fakeConfig) {
			next := c.cfg
			next.Endpoints = append([]orchestrator.Endpoint{{Name: "fresh", URL: f.backend.URL + "/fresh"}}, c.cfg.Endpoints...)
			c.next = &next
		})
		got := decode[admin.ConfigStatus](t, call(f.h, http.MethodPost, "/config/reload", ""), http.StatusOK)
		assert.EqualValues(t, 1, got.ReloadCount)
		rec := f.proxied(t, "/orchestrator/fresh/x")
		assert.Equal(t, http.StatusOK, rec.Code, "the reloaded endpoint is routable: %s", rec.Body)
	})
	t.Run("answers 400 listing every error of an invalid file", func(t *testing.T) {
		f := newFixture(t)
		f.conf.set(func(c *fakeConfig) {
			c.reloadErr = &config.Error{File: "config.yaml", Errors: []orchestrator.FieldError{
				{Field: "endpoints[0].url", Message: "is required", Line: 3, Column: 5},
				{Field: "endpoints[1].bogus", Message: "unknown field", Line: 9, Column: 5},
			}}
		})
		p := requireProblem(t, call(f.h, http.MethodPost, "/config/reload", ""), http.StatusBadRequest, "invalid-config")
		require.Len(t, p.Errors, 2)
		assert.Equal(t, testutil.FieldError{Field: "endpoints[0].url", Message: "is required", Line: 3, Column: 5}, p.Errors[0])
		assert.Equal(t, "endpoints[1].bogus", p.Errors[1].Field)
	})
	t.Run("answers 409 without a config file", func(t *testing.T) {
		f := newFixture(t, withoutConfig)
		requireProblem(t, call(f.h, http.MethodPost, "/config/reload", ""), http.StatusConflict, "no-config-file")
	})
	t.Run("answers 409 when the manager has no file", func(t *testing.T) {
		f := newFixture(t)
		f.conf.set(func(c *fakeConfig) { c.reloadErr = fmt.Errorf("embedded default: %w", admin.ErrNoConfigFile) })
		requireProblem(t, call(f.h, http.MethodPost, "/config/reload", ""), http.StatusConflict, "no-config-file")
	})
	t.Run("answers 500 when the file cannot be read", func(t *testing.T) {
		f := newFixture(t)
		f.conf.set(func(c *fakeConfig) { c.reloadErr = errBoom })
		p := requireProblem(t, call(f.h, http.MethodPost, "/config/reload", ""), http.StatusInternalServerError, "internal")
		assert.Contains(t, p.Detail, "boom")
	})
}

func TestConfigValidate(t *testing.T) {
	seed, err := os.ReadFile("../testdata/seed.yaml") // docs/DESIGN.md's seed config, verbatim
	require.NoError(t, err)
	type result struct {
		Valid     bool `json:"valid"`
		Endpoints int  `json:"endpoints"`
	}
	f := newFixture(t)
	t.Run("accepts the seed config", func(t *testing.T) {
		got := decode[result](t, call(f.h, http.MethodPost, "/config/validate", string(seed), contentType("application/yaml")), http.StatusOK)
		assert.Equal(t, result{Valid: true, Endpoints: 1}, got)
	})
	t.Run("accepts JSON", func(t *testing.T) {
		body := `{"endpoints":[{"name":"a","url":"http://127.0.0.1:1"},{"name":"b","url":"http://127.0.0.1:2"}]}`
		got := decode[result](t, call(f.h, http.MethodPost, "/config/validate", body), http.StatusOK)
		assert.Equal(t, result{Valid: true, Endpoints: 2}, got)
	})
	t.Run("answers 400 with every error located", func(t *testing.T) {
		body := "endpoints:\n  - name: a\n    bogus: 1\n  - name: b\n    url: ftp://x\n"
		rec := call(f.h, http.MethodPost, "/config/validate", body, contentType("application/yaml"))
		p := requireProblem(t, rec, http.StatusBadRequest, "invalid-config")
		require.NotEmpty(t, p.Errors)
		assert.NotContains(t, rec.Body.String(), `"omitted"`, "nothing was omitted, so the member is absent")
		for _, fe := range p.Errors {
			assert.NotEmpty(t, fe.Field, "every error names its field: %+v", fe)
			assert.NotEmpty(t, fe.Message, "every error has a message: %+v", fe)
			assert.Positive(t, fe.Line, "every error has a line: %+v", fe)
			assert.Positive(t, fe.Column, "every error has a column: %+v", fe)
		}
		var fields []string
		for _, fe := range p.Errors {
			fields = append(fields, fe.Field)
		}
		assert.Contains(t, strings.Join(fields, " "), "bogus", "the unknown field is named: %v", fields)
	})
	t.Run("lists the first 100 errors and counts the rest", func(t *testing.T) {
		// 150 endpoints, each with exactly one problem: an ftp URL.
		var b strings.Builder
		b.WriteString("endpoints:\n")
		for i := range 150 {
			fmt.Fprintf(&b, "  - name: e%d\n    url: ftp://127.0.0.1/%d\n", i, i)
		}
		_, err := config.Parse([]byte(b.String()), "request")
		var ce *config.Error
		require.ErrorAs(t, err, &ce)
		require.Equal(t, 150, ce.Total(), "the validator finds one problem per endpoint: %v", err)

		rec := call(f.h, http.MethodPost, "/config/validate", b.String(), contentType("application/yaml"))
		p := requireProblem(t, rec, http.StatusBadRequest, "invalid-config")
		assert.Len(t, p.Errors, orchestrator.MaxReportedErrors)
		assert.Equal(t, 50, p.Omitted, "the problems past the first 100 are counted: %s", rec.Body)
		assert.Contains(t, p.Detail, "150 errors")
		assert.Equal(t, "endpoints[0].url", p.Errors[0].Field)
		assert.Equal(t, "endpoints[99].url", p.Errors[99].Field)
	})
}

// TestConfigValidateLimit: POST /config/validate takes a config up to
// server.max_config_bytes (Options.MaxConfigBytes), the cap of the config
// file itself, rather than the 1 MiB of the JSON routes.
func TestConfigValidateLimit(t *testing.T) {
	comment := func(n int) string { // a valid config of exactly n bytes
		const doc = "endpoints: []\n"
		return doc + "#" + strings.Repeat("x", n-len(doc)-2) + "\n"
	}
	t.Run("defaults to config.DefaultMaxConfigBytes", func(t *testing.T) {
		f := newFixture(t)
		rec := call(f.h, http.MethodPost, "/config/validate", comment(2<<20), contentType("application/yaml"))
		assert.Equal(t, http.StatusOK, rec.Code, "a 2 MiB config is under the 8 MiB default: %.300s", rec.Body)
		p := requireProblem(t, call(f.h, http.MethodPost, "/config/validate", comment(config.DefaultMaxConfigBytes+1), contentType("application/yaml")),
			http.StatusRequestEntityTooLarge, "body-too-large")
		assert.Contains(t, p.Detail, "server.max_config_bytes")
		assert.Contains(t, p.Detail, fmt.Sprint(config.DefaultMaxConfigBytes))
	})
	small := func(o *admin.Options) { o.MaxConfigBytes = 1024 }
	t.Run("accepts a config of exactly the limit", func(t *testing.T) {
		f := newFixture(t, small)
		rec := call(f.h, http.MethodPost, "/config/validate", comment(1024), contentType("application/yaml"))
		assert.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
	})
	for _, tt := range []struct {
		name string
		opts []reqOption
	}{
		{"of a known length", nil},
		{"of unknown length", []reqOption{chunked}},
	} {
		t.Run("answers 413 naming server.max_config_bytes past the limit, body "+tt.name, func(t *testing.T) {
			f := newFixture(t, small)
			opts := append([]reqOption{contentType("application/yaml")}, tt.opts...)
			p := requireProblem(t, call(f.h, http.MethodPost, "/config/validate", comment(1025), opts...),
				http.StatusRequestEntityTooLarge, "body-too-large")
			assert.Contains(t, p.Detail, "server.max_config_bytes")
			assert.Contains(t, p.Detail, "1024 bytes")
		})
	}
	t.Run("the other routes keep their 1 MiB cap", func(t *testing.T) {
		f := newFixture(t, func(o *admin.Options) { o.MaxConfigBytes = 4 << 20 })
		body := `{"name":"x","url":"http://127.0.0.1:1","fallback":{"body":"` + strings.Repeat("a", 1<<20) + `"}}`
		p := requireProblem(t, call(f.h, http.MethodPost, "/registry/endpoints", body), http.StatusRequestEntityTooLarge, "body-too-large")
		assert.NotContains(t, p.Detail, "max_config_bytes")
	})
}
