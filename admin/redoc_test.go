package admin_test

import (
	"encoding/json"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	redocOpRE     = regexp.MustCompile(`(?s)<article class="op" id="([^"]*)" data-method="([^"]*)" data-path="([^"]*)">(.*?)</article>`)
	redocSchemaRE = regexp.MustCompile(`<section class="schema" id="([^"]*)" data-schema="([^"]*)">`)
	redocIDRE     = regexp.MustCompile(`\sid="([^"]*)"`)
	redocHrefRE   = regexp.MustCompile(`\shref="#([^"]*)"`)
	redocURLRE    = regexp.MustCompile(`(?i)\b(?:https?|wss?|ftp):(?://)?[^\s"'<>]*`)
)

// redocPage renders /redoc and returns the page and its CSP.
func redocPage(t *testing.T) (string, string) {
	t.Helper()
	f := newFixture(t)
	rec := call(f.h, http.MethodGet, "/redoc", "")
	require.Equal(t, http.StatusOK, rec.Code, "GET /redoc: got %d; want 200; body %s", rec.Code, rec.Body)
	assert.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
	return rec.Body.String(), rec.Header().Get("Content-Security-Policy")
}

// openAPIDoc is the part of openapi.json the reference page shows.
type openAPIDoc struct {
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]json.RawMessage `json:"schemas"`
	} `json:"components"`
}

// openAPIOperation is one operation of openapi.json, as far as the page
// must show it.
type openAPIOperation struct {
	Summary     string                     `json:"summary"`
	Parameters  []json.RawMessage          `json:"parameters"`
	RequestBody json.RawMessage            `json:"requestBody"`
	Responses   map[string]json.RawMessage `json:"responses"`
	Security    *[]any                     `json:"security"`
}

func loadOpenAPI(t *testing.T) (openAPIDoc, map[string]any) {
	t.Helper()
	f := newFixture(t)
	rec := call(f.h, http.MethodGet, "/openapi.json", "")
	require.Equal(t, http.StatusOK, rec.Code)
	var doc openAPIDoc
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &doc), "openapi.json")
	var raw map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &raw), "openapi.json")
	require.NotEmpty(t, doc.Paths)
	require.NotEmpty(t, doc.Components.Schemas)
	return doc, raw
}

// TestRedocListsTheDocument: the reference page shows every operation of
// openapi.json with its summary, parameters, body and responses, and every
// component schema in a section of its own that each $ref links to.
func TestRedocListsTheDocument(t *testing.T) {
	page, _ := redocPage(t)
	doc, raw := loadOpenAPI(t)

	shown := map[string]string{} // "get /path" to the operation's HTML
	for _, m := range redocOpRE.FindAllStringSubmatch(page, -1) {
		key := html.UnescapeString(m[2]) + " " + html.UnescapeString(m[3])
		assert.NotContains(t, shown, key, "%s is shown once", key)
		shown[key] = m[4]
	}
	described := 0
	for path, item := range doc.Paths {
		for method, rawOp := range item {
			if !strings.Contains(" get put post delete patch head options trace ", " "+method+" ") {
				continue
			}
			described++
			key := method + " " + path
			t.Run(key, func(t *testing.T) {
				body, ok := shown[key]
				require.True(t, ok, "openapi.json describes %s; got no <article class=\"op\"> for it on /redoc", key)
				var op openAPIOperation
				require.NoError(t, json.Unmarshal(rawOp, &op))
				text := html.UnescapeString(body)
				assert.Contains(t, text, op.Summary, "the summary")
				for _, p := range op.Parameters {
					param := resolveRef(t, raw, decodeAny(t, p))
					assert.Contains(t, text, "<code>"+param["name"].(string)+"</code>", "parameter %v", param["name"])
				}
				if op.RequestBody != nil {
					assert.Contains(t, text, "Request body")
					for mediaType := range resolveRef(t, raw, decodeAny(t, op.RequestBody))["content"].(map[string]any) {
						assert.Contains(t, text, `<span class="media-type">`+mediaType+`</span>`, "request body type %s", mediaType)
					}
				}
				for status := range op.Responses {
					assert.Contains(t, text, `<tr data-status="`+status+`">`, "response %s", status)
				}
				open := op.Security != nil && len(*op.Security) == 0
				assert.Equal(t, open, strings.Contains(text, `<span class="badge">no auth</span>`), "marked open exactly when security: []")
			})
		}
	}
	assert.Len(t, shown, described, "the page shows the document's operations, no more")

	sections := map[string]string{} // schema name to section id
	for _, m := range redocSchemaRE.FindAllStringSubmatch(page, -1) {
		sections[html.UnescapeString(m[2])] = m[1]
	}
	for name := range doc.Components.Schemas {
		assert.Contains(t, sections, name, "components.schemas.%s has a section", name)
	}
	assert.Len(t, sections, len(doc.Components.Schemas), "a section for each component schema, no more")

	t.Run("every $ref to a schema is a link to its section", func(t *testing.T) {
		walkRefs(raw, func(ref string) {
			if name, ok := strings.CutPrefix(ref, "#/components/schemas/"); ok {
				assert.Contains(t, page, `href="#`+sections[name]+`"`, "a link to %s's section", name)
			}
		})
	})
	t.Run("every fragment link names an element of the page, and ids are unique", func(t *testing.T) {
		ids := map[string]int{}
		for _, m := range redocIDRE.FindAllStringSubmatch(page, -1) {
			ids[m[1]]++
		}
		for id, n := range ids {
			assert.Equal(t, 1, n, "id %q is unique", id)
		}
		for _, m := range redocHrefRE.FindAllStringSubmatch(page, -1) {
			assert.Contains(t, ids, m[1], "href=#%s names an element", m[1])
		}
	})
}

func decodeAny(t *testing.T, raw json.RawMessage) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(raw, &v))
	return v
}

// TestRedocRendersSchemas checks how a schema reads: nested property
// tables, required marks, constraints, and links instead of copies.
func TestRedocRendersSchemas(t *testing.T) {
	page, _ := redocPage(t)
	section := func(name string) string {
		t.Helper()
		m := regexp.MustCompile(`(?s)<section class="schema" id="schema-` + name + `" data-schema="` + name + `">(.*?)</section>`).FindStringSubmatch(page)
		require.NotNil(t, m, "no section for %s", name)
		return m[1]
	}
	endpoint := section("Endpoint")
	assert.Regexp(t, `<code>name</code> <span class="req">required</span>`, endpoint, "required properties are marked")
	assert.Contains(t, endpoint, `<span class="note">format <code>uri</code></span>`, "constraints are shown")
	assert.Contains(t, endpoint, `<a class="ref" href="#schema-CircuitBreakerConfig">CircuitBreakerConfig</a>`, "a $ref is a link")
	assert.Contains(t, endpoint, `&#34;api_key&#34;`, "enum values are listed")
	assert.Contains(t, endpoint, `additional properties <code>refused</code>`)
	assert.Less(t, strings.Index(endpoint, "<code>id</code>"), strings.Index(endpoint, "<code>url</code>"), "properties keep the document's order")

	duration := section("Duration")
	assert.Contains(t, duration, `<span class="label">one of</span>`, "oneOf lists its variants")

	list := section("EndpointList")
	assert.Regexp(t, `(?s)<span class="type">array</span>.*<span class="label">items</span>.*href="#schema-RegisteredEndpoint"`, list, "an array names its items")
}

// TestRedocIsOfflineAndStrict: the page names no other host, runs no
// script and its CSP allows nothing remote.
func TestRedocIsOfflineAndStrict(t *testing.T) {
	page, cspHeader := redocPage(t)
	assertSelfContained(t, page)
	assert.NotContains(t, page, "<script", "the reference page runs no script")
	for _, u := range redocURLRE.FindAllString(page, -1) {
		t.Errorf("the page names %q; want no URL to another host", u)
	}

	csp := cspDirectives(t, cspHeader)
	assert.Equal(t, "'none'", csp["default-src"], "nothing is allowed unless listed")
	assert.Equal(t, cspSource(inlineBlock(t, page, "style")), csp["style-src"], "the inline style, by its hash, and nothing else")
	for name, value := range csp {
		assert.NotContains(t, name, "script", "no script source: %s %s", name, value)
		assert.NotRegexp(t, `(?i)https?:|\*|data:|blob:|unsafe`, value, "%s allows %s; want nothing remote", name, value)
	}
	assert.Equal(t, "'none'", csp["frame-ancestors"])
	assert.Equal(t, "'none'", csp["base-uri"])
	assert.Equal(t, "'none'", csp["form-action"])
}
