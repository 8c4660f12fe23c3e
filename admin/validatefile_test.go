package admin_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/admin"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

// fourProblems has an unknown field and a bad duration, which decoding
// finds, and a bad url and an empty name, which validation finds.
func fourProblems(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../testdata/four-problems.yaml")
	require.NoError(t, err)
	return string(b)
}

// fourProblemsWant is where validating fourProblems places its problems.
var fourProblemsWant = []string{
	"6:3 server.colour",
	"10:14 endpoints[0].timeout",
	"12:10 endpoints[1].url",
	"13:11 endpoints[2].name",
}

func located(errs []testutil.FieldError) []string {
	out := make([]string, len(errs))
	for i, fe := range errs {
		out[i] = fmt.Sprintf("%d:%d %s", fe.Line, fe.Column, fe.Field)
	}
	return out
}

// validateAnswer is the body of a successful POST /config/validate.
type validateAnswer struct {
	Valid           bool                       `json:"valid"`
	Endpoints       int                        `json:"endpoints"`
	Path            string                     `json:"path"`
	Plan            orchestrator.Plan          `json:"plan"`
	RestartRequired []orchestrator.FieldChange `json:"restart_required"`
}

func plannedIDs(eps []orchestrator.PlannedEndpoint) []string {
	ids := []string{}
	for _, ep := range eps {
		ids = append(ids, ep.ID)
	}
	return ids
}

// writeConfig writes content to a config file in a temporary directory and
// points the fixture's manager at it.
func writeConfig(t *testing.T, f *fixture, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	f.conf.set(func(c *fakeConfig) { c.status.Path = path })
	return path
}

// Issue 13, point 1: POST /config/validate with no body answered
// {"valid":true,"endpoints":0}, the verdict on an empty config. It now
// validates the file the server runs on.
func TestConfigValidateTheFileOnDisk(t *testing.T) {
	t.Run("a valid file answers 200 with its endpoints and path", func(t *testing.T) {
		f := newFixture(t)
		path := writeConfig(t, f, "endpoints:\n  - name: a\n    url: http://127.0.0.1:1\n  - name: b\n    url: http://127.0.0.1:2\n")
		rec := call(f.h, http.MethodPost, "/config/validate", "")
		require.Equal(t, http.StatusOK, rec.Code, "body %s", rec.Body)
		got := decode[validateAnswer](t, rec, http.StatusOK)
		assert.True(t, got.Valid)
		assert.Equal(t, 2, got.Endpoints)
		assert.Equal(t, path, got.Path)
		// The plan against the running gateway: a and b added, the
		// fixture's three config endpoints removed.
		assert.Equal(t, []string{"a", "b"}, plannedIDs(got.Plan.Added))
		assert.Equal(t, []string{"legacy", "orders", "users_v1"}, plannedIDs(got.Plan.Removed))
		assert.Equal(t, int64(0), f.conf.Status().ReloadCount, "validating applies nothing")
	})
	t.Run("an invalid file answers 400 naming the file and listing every problem at its line", func(t *testing.T) {
		f := newFixture(t)
		path := writeConfig(t, f, fourProblems(t))
		rec := call(f.h, http.MethodPost, "/config/validate", "")
		p := requireProblem(t, rec, http.StatusBadRequest, "invalid-config")
		assert.Equal(t, fourProblemsWant, located(p.Errors))
		assert.Equal(t, "the configuration file "+path+" has 4 errors; nothing was changed", p.Detail)
		assert.NotContains(t, rec.Body.String(), `"omitted"`)
		_, err := f.o.Endpoint("users")
		assert.Error(t, err, "nothing was applied")
	})
	t.Run("a body is validated rather than the file", func(t *testing.T) {
		f := newFixture(t)
		writeConfig(t, f, fourProblems(t))
		rec := call(f.h, http.MethodPost, "/config/validate", "endpoints: []\n", contentType("application/yaml"))
		got := decode[validateAnswer](t, rec, http.StatusOK)
		assert.True(t, got.Valid)
		assert.Zero(t, got.Endpoints)
		assert.Empty(t, got.Path)
		assert.Len(t, got.Plan.Removed, 3)
	})
	t.Run("answers 409 without a config file", func(t *testing.T) {
		f := newFixture(t, withoutConfig)
		requireProblem(t, call(f.h, http.MethodPost, "/config/validate", ""), http.StatusConflict, "no-config-file")
	})
	t.Run("answers 409 when the manager runs without a file", func(t *testing.T) {
		f := newFixture(t)
		f.conf.set(func(c *fakeConfig) { c.validateErr = fmt.Errorf("embedded default: %w", admin.ErrNoConfigFile) })
		requireProblem(t, call(f.h, http.MethodPost, "/config/validate", ""), http.StatusConflict, "no-config-file")
	})
	t.Run("answers 409 when the manager cannot validate its file", func(t *testing.T) {
		// Embedding hides every method but ConfigManager's.
		f := newFixture(t, func(o *admin.Options) { o.Config = struct{ admin.ConfigManager }{o.Config} })
		p := requireProblem(t, call(f.h, http.MethodPost, "/config/validate", ""), http.StatusConflict, "no-config-file")
		assert.Contains(t, p.Detail, "ConfigFileValidator")
	})
	t.Run("answers 500 when the file cannot be read, as a reload does", func(t *testing.T) {
		f := newFixture(t)
		f.conf.set(func(c *fakeConfig) { c.status.Path = filepath.Join(t.TempDir(), "absent.yaml") })
		p := requireProblem(t, call(f.h, http.MethodPost, "/config/validate", ""), http.StatusInternalServerError, "internal")
		assert.Contains(t, p.Detail, "absent.yaml")
	})
}

// Issue 13, point 6, through POST /config/validate: the body's problems of
// decoding and of validation in one answer.
func TestConfigValidateReportsEveryProblemAtOnce(t *testing.T) {
	f := newFixture(t)
	p := requireProblem(t, call(f.h, http.MethodPost, "/config/validate", fourProblems(t), contentType("application/yaml")),
		http.StatusBadRequest, "invalid-config")
	assert.Equal(t, fourProblemsWant, located(p.Errors))
	assert.Equal(t, "the configuration has 4 errors; nothing was changed", p.Detail)
}

// Issue 13, point 6, for JSON bodies: an endpoint with an unknown field and
// a value of the wrong type had its bad url reported only once those were
// fixed.
func TestJSONBodyReportsDecodingAndValidationProblemsAtOnce(t *testing.T) {
	for _, method := range []string{http.MethodPost, http.MethodPut} {
		t.Run(method+" reports the unknown field, the wrong type and the bad url", func(t *testing.T) {
			f := newFixture(t)
			body := "{\n  \"name\": \"svc\",\n  \"url\": \"ftp://127.0.0.1:1\",\n  \"colour\": \"blue\",\n  \"max_concurrent\": \"many\"\n}"
			target := "/registry/endpoints"
			if method == http.MethodPut {
				target += "/svc"
			}
			p := requireProblem(t, call(f.h, method, target, body), http.StatusBadRequest, "invalid-json")
			assert.Equal(t, []string{"3:10 url", "4:3 colour", "5:21 max_concurrent"}, located(p.Errors))
			assert.Contains(t, p.Detail, "3 problems")
			assert.Contains(t, p.Detail, "the first, at line 3, column 10: url: ")
		})
	}
	t.Run("a value that did not decode is not also reported missing", func(t *testing.T) {
		f := newFixture(t)
		body := `{"name": ["svc"], "url": "http://127.0.0.1:1", "nmae": "x"}`
		p := requireProblem(t, call(f.h, http.MethodPost, "/registry/endpoints", body), http.StatusBadRequest, "invalid-json")
		var fields []string
		for _, fe := range p.Errors {
			fields = append(fields, fe.Field+": "+fe.Message)
		}
		assert.Equal(t, []string{"name: must be a string", `nmae: unknown field "nmae" (did you mean "name"?)`}, fields)
	})
	t.Run("a body with 150 problems lists 100 and counts the rest", func(t *testing.T) {
		// 100 unknown fields, found by decoding, and 50 bad methods, found
		// by validation.
		var b strings.Builder
		b.WriteString(`{"name": "svc", "url": "http://127.0.0.1:1", "methods": [`)
		for i := range 50 {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(`"BAD METHOD"`)
		}
		b.WriteString("]")
		for i := range 100 {
			fmt.Fprintf(&b, ",\n \"x%d\": 1", i)
		}
		b.WriteString("}")
		f := newFixture(t)
		rec := call(f.h, http.MethodPost, "/registry/endpoints", b.String())
		p := requireProblem(t, rec, http.StatusBadRequest, "invalid-json")
		assert.Len(t, p.Errors, orchestrator.MaxReportedErrors)
		assert.Equal(t, 50, p.Omitted, "body %s", rec.Body)
		assert.Contains(t, p.Detail, "150 problems")
		assert.Equal(t, "methods[0]", p.Errors[0].Field, "the problems come in body order")
		assert.Equal(t, "x49", p.Errors[99].Field)
	})
}
