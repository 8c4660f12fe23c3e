package admin_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator/admin"
)

// TestRoutesMatchDesign pins the route list to docs/DESIGN.md's "Admin API".
func TestRoutesMatchDesign(t *testing.T) {
	want := []string{
		"GET /health", "GET /health/live", "GET /health/status", "GET /health/endpoints", "GET /health/endpoints/{id}", "GET /health/unhealthy", "GET /health/summary",
		"POST /health/check/{id}",
		"GET /config/status", "GET /config/endpoints", "POST /config/reload", "POST /config/validate",
		"GET /registry/endpoints", "GET /registry/endpoints/{id}", "GET /registry/stats",
		"POST /registry/endpoints", "POST /registry/sync", "PUT /registry/endpoints/{id}", "DELETE /registry/endpoints/{id}",
		"POST /registry/endpoints/{id}/targets/{target}/drain", "POST /registry/endpoints/{id}/targets/{target}/restore",
		"GET /circuit-breaker/status", "GET /circuit-breaker/endpoints/{id}", "GET /circuit-breaker/open",
		"POST /circuit-breaker/reset/{id}", "POST /circuit-breaker/trip/{id}", "POST /circuit-breaker/reset-all",
		"GET /router/routes", "GET /router/test/{id}", "GET /router/debug/{path...}", "POST /router/refresh",
		"GET /metrics", "GET /openapi.json", "GET /docs", "GET /redoc", "GET /status",
	}
	f := newFixture(t)
	var got []string
	for _, r := range f.h.Routes() {
		got = append(got, r.Method+" "+r.Pattern)
		assert.NotEmpty(t, r.Summary, "%s %s has a summary", r.Method, r.Pattern)
	}
	assert.ElementsMatch(t, want, got)
}

// openAPIPath spells a ServeMux pattern as an OpenAPI path template:
// "{path...}" becomes "{path}".
func openAPIPath(pattern string) string {
	return strings.ReplaceAll(pattern, "...}", "}")
}

var operationMethods = []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}

// TestOpenAPIMatchesRoutes fails when a mounted route is missing from
// /openapi.json or the document describes a route that is not mounted, and
// checks that the document is internally consistent.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	f := newFixture(t)
	rec := call(f.h, http.MethodGet, "/openapi.json", "")
	require.Equal(t, http.StatusOK, rec.Code)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &doc), "openapi.json is JSON")
	require.Equal(t, "3.1.0", doc["openapi"])
	paths, ok := doc["paths"].(map[string]any)
	require.True(t, ok, "the document has paths")

	mounted := map[string]admin.Route{}
	for _, r := range f.h.Routes() {
		mounted[strings.ToLower(r.Method)+" "+openAPIPath(r.Pattern)] = r
	}
	described := map[string]map[string]any{}
	for path, item := range paths {
		for _, m := range operationMethods {
			if op, ok := item.(map[string]any)[m].(map[string]any); ok {
				described[m+" "+path] = op
			}
		}
	}
	for key := range mounted {
		assert.Contains(t, described, key, "mounted route %q is missing from openapi.json", key)
	}
	for key := range described {
		assert.Contains(t, mounted, key, "openapi.json describes %q, which is not mounted", key)
	}

	tags := map[string]bool{}
	for _, tag := range doc["tags"].([]any) {
		tags[tag.(map[string]any)["name"].(string)] = true
	}
	for key, op := range described {
		r, ok := mounted[key]
		if !ok {
			continue
		}
		t.Run(key, func(t *testing.T) {
			assert.Equal(t, r.Summary, op["summary"], "the summary matches Routes()")
			assert.NotEmpty(t, op["operationId"])
			opTags, _ := op["tags"].([]any)
			require.Len(t, opTags, 1)
			assert.True(t, tags[opTags[0].(string)], "tag %v is declared", opTags[0])

			security, hasSecurity := op["security"].([]any)
			if r.Open {
				assert.True(t, hasSecurity && len(security) == 0, "an open route declares security: []")
			} else {
				assert.False(t, hasSecurity, "a protected route inherits the bearer requirement")
			}

			responses, _ := op["responses"].(map[string]any)
			require.NotEmpty(t, responses)
			if !r.Open {
				assert.Contains(t, responses, "401")
				assert.Contains(t, responses, "403")
			}

			// Every {param} of the path is declared as a required path parameter.
			path := strings.SplitN(key, " ", 2)[1]
			declared := map[string]bool{}
			params, _ := op["parameters"].([]any) // absent: none
			for _, p := range params {
				param := resolveRef(t, doc, p)
				if param["in"] == "path" {
					assert.Equal(t, true, param["required"], "path parameter %v is required", param["name"])
					declared[param["name"].(string)] = true
				}
			}
			for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(path, -1) {
				assert.True(t, declared[m[1]], "path parameter {%s} is declared", m[1])
				delete(declared, m[1])
			}
			assert.Empty(t, declared, "no parameter is declared in:path that the path lacks")
		})
	}

	t.Run("every $ref resolves", func(t *testing.T) {
		walkRefs(doc, func(ref string) {
			assert.NotNil(t, lookup(doc, ref), "$ref %q resolves", ref)
		})
	})
}

// TestOpenAPIRequestBodies: every operation that takes a body documents the
// 415 of a body in another media type, and accepts each media type its
// requestBody lists; the /docs page sends the first of them as
// Content-Type, so a mismatch would break the page's own requests.
func TestOpenAPIRequestBodies(t *testing.T) {
	f := newFixture(t)
	rec := call(f.h, http.MethodGet, "/openapi.json", "")
	require.Equal(t, http.StatusOK, rec.Code)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &doc))
	withBody := 0
	for path, item := range doc["paths"].(map[string]any) {
		for _, m := range operationMethods {
			op, ok := item.(map[string]any)[m].(map[string]any)
			if !ok || op["requestBody"] == nil {
				continue
			}
			withBody++
			responses := op["responses"].(map[string]any)
			assert.Contains(t, responses, "415", "%s %s takes a body and documents 415", m, path)
			content := resolveRef(t, doc, op["requestBody"])["content"].(map[string]any)
			require.NotEmpty(t, content, "%s %s lists its body's media types", m, path)
			target := strings.NewReplacer("{id}", "orders").Replace(path)
			for mediaType := range content {
				rec := call(f.h, strings.ToUpper(m), target, "{}", contentType(mediaType))
				assert.NotEqual(t, http.StatusUnsupportedMediaType, rec.Code, "%s %s accepts its documented %s: %s", m, path, mediaType, rec.Body)
			}
		}
	}
	assert.Equal(t, 3, withBody, "POST /config/validate, POST and PUT /registry/endpoints take bodies")
}

func resolveRef(t *testing.T, doc map[string]any, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	require.True(t, ok, "object expected, got %T", v)
	if ref, ok := m["$ref"].(string); ok {
		target, ok := lookup(doc, ref).(map[string]any)
		require.True(t, ok, "$ref %q resolves to an object", ref)
		return target
	}
	return m
}

// lookup resolves a local JSON pointer such as "#/components/schemas/X".
func lookup(doc map[string]any, ref string) any {
	if !strings.HasPrefix(ref, "#/") {
		return nil
	}
	var cur any = doc
	for _, part := range strings.Split(ref[2:], "/") {
		part = strings.NewReplacer("~1", "/", "~0", "~").Replace(part)
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

func walkRefs(v any, fn func(string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if s, ok := child.(string); ok && k == "$ref" {
				fn(s)
				continue
			}
			walkRefs(child, fn)
		}
	case []any:
		for _, child := range v {
			walkRefs(child, fn)
		}
	}
}
