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
			c.reloadErr = &orchestrator.ConfigError{File: "config.yaml", Errors: []orchestrator.FieldError{
				{Field: "endpoints[0].url", Message: "is required", Line: 3, Column: 5},
				{Field: "endpoints[1].bogus", Message: "unknown field", Line: 9, Column: 5},
			}}
		})
		p := requireProblem(t, call(f.h, http.MethodPost, "/config/reload", ""), http.StatusBadRequest, "invalid-config")
		require.Len(t, p.Errors, 2)
		assert.Equal(t, orchestrator.FieldError{Field: "endpoints[0].url", Message: "is required", Line: 3, Column: 5}, p.Errors[0])
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
	seed, err := os.ReadFile("../testdata/seed.yaml") // DESIGN.md's seed config, verbatim
	require.NoError(t, err)
	type result struct {
		Valid     bool `json:"valid"`
		Endpoints int  `json:"endpoints"`
	}
	f := newFixture(t)
	t.Run("accepts the seed config", func(t *testing.T) {
		got := decode[result](t, call(f.h, http.MethodPost, "/config/validate", string(seed)), http.StatusOK)
		assert.Equal(t, result{Valid: true, Endpoints: 1}, got)
	})
	t.Run("accepts JSON", func(t *testing.T) {
		body := `{"endpoints":[{"name":"a","url":"http://127.0.0.1:1"},{"name":"b","url":"http://127.0.0.1:2"}]}`
		got := decode[result](t, call(f.h, http.MethodPost, "/config/validate", body), http.StatusOK)
		assert.Equal(t, result{Valid: true, Endpoints: 2}, got)
	})
	t.Run("answers 400 with every error located", func(t *testing.T) {
		body := "endpoints:\n  - name: a\n    bogus: 1\n  - name: b\n    url: ftp://x\n"
		p := requireProblem(t, call(f.h, http.MethodPost, "/config/validate", body), http.StatusBadRequest, "invalid-config")
		require.NotEmpty(t, p.Errors)
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
	t.Run("answers 413 past 1 MiB", func(t *testing.T) {
		body := "# " + strings.Repeat("x", 1<<20) + "\n"
		requireProblem(t, call(f.h, http.MethodPost, "/config/validate", body), http.StatusRequestEntityTooLarge, "body-too-large")
	})
}
