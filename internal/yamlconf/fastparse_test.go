package yamlconf_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator/config"
	"github.com/orchestrator-go/orchestrator/internal/yamlconf"
)

// Configuration files as people write them take the fast path; the
// differential fuzz tests hold it to the reference path.
func TestFastPathTakesConfigFiles(t *testing.T) {
	read := func(path string) string {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		return string(b)
	}
	var big strings.Builder
	big.WriteString("endpoints:\n")
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&big, "  - name: svc%d\n    version: v1\n    url: http://127.0.0.1:%d/api\n    timeout: 30\n    circuit_breaker:\n      reset_timeout: \"1m\"\n", i, 10000+i)
	}
	seed, err := config.Parse([]byte(read("../../testdata/seed.yaml")), "seed.yaml")
	require.NoError(t, err)
	compact, err := json.Marshal(seed)
	require.NoError(t, err)
	pretty, err := json.MarshalIndent(seed, "", "  ")
	require.NoError(t, err)
	docs := map[string]string{
		"the seed config":        read("../../testdata/seed.yaml"),
		"the documented example": read("../../examples/config.yaml"),
		"many endpoints":         big.String(),
		"compact JSON":           string(compact),
		"pretty JSON":            string(pretty),
		"pretty JSON, CRLF":      strings.ReplaceAll(string(pretty), "\n", "\r\n"),
		"flow mappings and sequences, a list at its key's indent, comments": "# reload me\n" +
			"server: {host: 127.0.0.1, port: 8080}\n" +
			"health_check: {enabled: false}\n" +
			"endpoints:\n" +
			"- name: a # first\n" +
			"  url: 'http://127.0.0.1:1'\n" +
			"  methods: [GET, \"POST\"]\n" +
			"  fallback:\n" +
			"    strategy: static_response\n" +
			"    headers:\n" +
			"      Content-Type: application/json\n" +
			"\n" +
			"- name: b\n" +
			"  url: http://127.0.0.1:2\n" +
			"  circuit_breaker: {failure_statuses: [502, 503]}\n",
		"CRLF line ends": "server:\r\n  host: 127.0.0.1 # here\r\n\r\n  port: 1\r\n",
		"escapes": "endpoints:\n- name: a\n  url: \"http://127.0.0.1:1\"\n  fallback:\n" +
			"    body: \"{\\\"error\\\": \\\"down\\\"}\\n\\u00e9\\x41\\U0001F600\"\n",
		"an empty file":   "",
		"comments only":   "# nothing yet\n\n   # indented\n",
		"a key with null": "server:\nlogging: ~\n",
	}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			_, ok := yamlconf.FastTree([]byte(doc))
			require.True(t, ok, "got the document left to goccy/go-yaml; want the fast parser to read it")
			var cfg config.Config
			assert.True(t, yamlconf.DecodeFast([]byte(doc), &cfg), "got the document left to goccy/go-yaml; want it decoded on the fast path")
		})
	}
}

// What the fast parser does not handle it leaves to goccy/go-yaml.
func TestFastPathLeavesTheRestToGoccy(t *testing.T) {
	docs := map[string]string{
		"an anchor and an alias":             "a: &x 1\nb: *x\n",
		"a merge key":                        "a: {b: 1}\nc:\n  <<: {b: 2}\n",
		"a tag":                              "a: !!str 1\n",
		"a literal block":                    "a: |\n  text\n",
		"a folded block":                     "a: >\n  text\n",
		"a multi-line plain scalar":          "a: one\n  two\n",
		"a multi-line flow sequence":         "a: [1,\n  2]\n",
		"a multi-line flow mapping":          "a: {b: 1,\n  c: 2}\n",
		"JSON with a value on the next line": "{\"a\":\n  1}\n",
		"JSON with a comment":                "{\"a\": 1 # one\n}\n",
		"a document marker in JSON":          "[\n---\n]\n",
		"a document marker":                  "---\na: 1\n",
		"two documents":                      "a: 1\n---\na: 2\n",
		"a tab":                              "a:\n\tb: 1\n",
		"a lone CR":                          "a: 1\rb: 2\n",
		"an unknown escape":                  "a: \"x\\qy\"\n",
		"an escaped surrogate":               "a: \"\\ud800\"\n",
		"an escaped line end":                "a: \"x\\\n  y\"\n",
		"a duplicate key":                    "a: 1\na: 2\n",
		"a key and its quoted twin":          "a: 1\n\"a\": 2\n",
		"a syntax error":                     "a: [1, 2\n",
		"a value after a value":              "a: b: c\n",
		"a scalar document":                  "just a string\n",
		"a trailing comma":                   "a: [1, 2, ]\n",
		"an empty flow entry":                "a: [1, , 2]\n",
		"invalid UTF-8":                      "a: \xff\n",
	}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			_, ok := yamlconf.FastTree([]byte(doc))
			assert.False(t, ok, "got the fast parser reading it; want it left to goccy/go-yaml")
		})
	}
}

// The fast parser holds to the limits on its own (Decode runs it before
// prescan): it leaves nesting past 64 levels, and block mappings of more
// than 256 keys, to the reference path, which refuses them.
func TestFastParserKeepsToTheLimits(t *testing.T) {
	for _, s := range shapes {
		if s.name == "compact block sequences" {
			continue // "- - x" is outside its subset
		}
		t.Run(s.name, func(t *testing.T) {
			_, ok := yamlconf.FastTree([]byte(s.build(64)))
			assert.True(t, ok, "got 64 levels left to goccy/go-yaml; want the fast parser to read them")
			_, ok = yamlconf.FastTree([]byte(s.build(65)))
			assert.False(t, ok, "got 65 levels read; want them left to the reference path")
			_, ok = yamlconf.FastTree([]byte(s.build(1000)))
			assert.False(t, ok, "got 1,000 levels read; want them left to the reference path")
		})
	}
	keys := func(n int) []byte {
		var b strings.Builder
		b.WriteString("m:\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "  k%d: 1\n", i)
		}
		return []byte(b.String())
	}
	_, ok := yamlconf.FastTree(keys(256))
	assert.True(t, ok, "got 256 keys left to goccy/go-yaml; want the fast parser to read them")
	_, ok = yamlconf.FastTree(keys(257))
	assert.False(t, ok, "got 257 keys read; want them left to the reference path")
}
