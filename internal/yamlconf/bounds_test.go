package yamlconf_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator/config"
	"github.com/orchestrator-go/orchestrator/internal/yamlconf"
)

// The messages of the limits Decode enforces before any parser runs.
const (
	msgDepth    = "nesting deeper than 64 levels"
	msgAliases  = "aliases expand to more than 10,000 nodes; the config format has no use for that many"
	msgKeys     = "a mapping with more than 256 keys; the config format has no use for that many"
	msgPath     = "the path to this value is longer than 256 characters; the config format has no use for keys that long or nested that deep"
	msgLess     = "more than 64 '<' in a row; the config format has no use for that many"
	msgTabs     = "more than 64 tab characters on one line; the config format has no use for that many"
	msgSecond   = "the config file must hold one YAML document; a second one starts here"
	msgNoDoc    = "the file holds no YAML document; write `endpoints: []` to serve no endpoints from the file"
	allocSlack  = 8 << 20 // see FuzzDecodeBounded
	allocPerMiB = 64      // MiB of allocation allowed per MiB of input
)

// located is a problem as "line:column message", what these tests compare.
func located(ps []yamlconf.Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = fmt.Sprintf("%d:%d %s", p.Line, p.Column, p.Message)
	}
	return out
}

// nested builds a document of n nested levels of one shape, and says where
// the level that opens the (n)th one starts (1-based line and column).
type shape struct {
	name  string
	build func(n int) string
	// at is the position of the opening of level n.
	at func(n int) (line, column int)
}

var shapes = []shape{
	{
		"flow sequences in a mapping",
		func(n int) string { return "a: " + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + "\n" },
		func(n int) (int, int) { return 1, 4 + n - 2 },
	},
	{
		"flow mappings in a mapping",
		func(n int) string { return "a: " + strings.Repeat("{a: ", n-1) + "1" + strings.Repeat("}", n-1) + "\n" },
		func(n int) (int, int) { return 1, 4 + 4*(n-2) },
	},
	{
		"JSON objects",
		func(n int) string { return strings.Repeat(`{"a": `, n) + "1" + strings.Repeat("}", n) + "\n" },
		func(n int) (int, int) { return 1, 1 + 6*(n-1) },
	},
	{
		"compact block sequences",
		func(n int) string { return strings.Repeat("- ", n) + "x\n" },
		func(n int) (int, int) { return 1, 1 + 2*(n-1) },
	},
	{
		"block sequences by indentation",
		func(n int) string {
			var b strings.Builder
			for i := 0; i < n; i++ {
				b.WriteString(strings.Repeat("  ", i) + "-\n")
			}
			return b.String()
		},
		func(n int) (int, int) { return n, 1 + 2*(n-1) },
	},
	{
		"block mappings by indentation",
		func(n int) string {
			var b strings.Builder
			for i := 0; i < n; i++ {
				b.WriteString(strings.Repeat("  ", i) + "a:\n")
			}
			return b.String()
		},
		func(n int) (int, int) { return n, 1 + 2*(n-1) },
	},
	{
		"sequences of mappings of flow sequences",
		func(n int) string {
			// Levels: the root sequence, then a mapping and a sequence per
			// line, then flow sequences to make n.
			var b strings.Builder
			depth := 1
			indent := ""
			b.WriteString("- ")
			for depth+2 <= n-1 {
				b.WriteString("a:\n" + indent + "  - ")
				indent += "  "
				depth += 2
			}
			b.WriteString(strings.Repeat("[", n-depth) + strings.Repeat("]", n-depth) + "\n")
			return b.String()
		},
		nil,
	},
}

// Nesting past 64 levels is refused where the 65th level opens, whatever
// its shape; 64 levels are fine.
func TestDecodeRefusesDeepNesting(t *testing.T) {
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			var v any
			_, problems := yamlconf.Decode([]byte(s.build(64)), &v)
			assert.Empty(t, problems, "got problems %q for 64 levels; want none", located(problems))

			_, problems = yamlconf.Decode([]byte(s.build(65)), &v)
			require.Len(t, problems, 1, "got %q for 65 levels; want one problem", located(problems))
			assert.Equal(t, msgDepth, problems[0].Message)
			if s.at != nil {
				line, column := s.at(65)
				assert.Equal(t, [2]int{line, column}, [2]int{problems[0].Line, problems[0].Column},
					"got the problem at %d:%d; want it where the 65th level opens", problems[0].Line, problems[0].Column)
			}

			var cfg config.Config
			_, problems = yamlconf.Decode([]byte(s.build(1000)), &cfg)
			require.Len(t, problems, 1, "got %d problems for 1000 levels; want one", len(problems))
			assert.Equal(t, msgDepth, problems[0].Message)
		})
	}
}

// What looks like nesting inside quoted scalars, comments and block scalars
// is text, not structure: a config with a thousand brackets there decodes.
func TestDecodeIgnoresBracketsInScalarsAndComments(t *testing.T) {
	deep := strings.Repeat("[{", 500)
	src := "# " + deep + "\n" +
		"endpoints:\n" +
		"- name: a # " + deep + "\n" +
		"  url: http://127.0.0.1:1/" + deep + "\n" +
		"  fallback:\n" +
		"    strategy: static_response\n" +
		"    body: \"" + deep + "\\\"" + deep + "\"\n" +
		"    headers:\n" +
		"      X-Single: '" + deep + "''" + deep + "'\n" +
		"      X-Double: \"" + deep + "\n" +
		"        " + deep + "\n" +
		"        \\\"" + deep + "\"\n" +
		"- name: b\n" +
		"  url: http://127.0.0.1:2\n" +
		"  fallback:\n" +
		"    strategy: static_response\n" +
		"    body: |\n" +
		"      " + deep + "\n" +
		"\n" +
		"        " + deep + "\n" +
		"      - " + deep + "\n" +
		"      &a *a *a *a\n" +
		"      ---\n" +
		"- name: c\n" +
		"  url: http://127.0.0.1:3\n" +
		"  fallback:\n" +
		"    strategy: static_response\n" +
		"    body: >2-\n" +
		"       " + deep + "\n" +
		"      " + deep + "\n" +
		"    headers: {X-A: \"" + deep + "\", X-B: '" + deep + "'}\n"
	var cfg config.Config
	_, problems := yamlconf.Decode([]byte(src), &cfg)
	require.Empty(t, problems, "got %q; want none", located(problems))
	require.Len(t, cfg.Endpoints, 3)
	assert.Equal(t, deep+"\""+deep, cfg.Endpoints[0].Fallback.Body)
	assert.Equal(t, deep+"'"+deep, cfg.Endpoints[0].Fallback.Headers["X-Single"])
	assert.Equal(t, "http://127.0.0.1:1/"+deep, cfg.Endpoints[0].URL)
	assert.True(t, strings.HasPrefix(cfg.Endpoints[1].Fallback.Body, deep+"\n\n  "+deep+"\n- "), "got body %q", cfg.Endpoints[1].Fallback.Body)
	assert.Equal(t, " "+deep+"\n"+deep, cfg.Endpoints[2].Fallback.Body)
}

// aliasBomb is the shape of the report: each level is a list of ten
// aliases of the level before, so the last one holds 10^levels methods.
func aliasBomb(levels int) string {
	var b strings.Builder
	b.WriteString("endpoints:\n- name: m0\n  url: http://127.0.0.1:1\n  methods: &m0 [GET, GET, GET, GET, GET, GET, GET, GET, GET, GET]\n")
	for i := 1; i <= levels; i++ {
		alias := fmt.Sprintf("*m%d", i-1)
		fmt.Fprintf(&b, "- name: m%d\n  url: http://127.0.0.1:1\n  methods: &m%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(alias+", ", 10), ", "))
	}
	return b.String()
}

// An alias repeats its anchor's nodes, and aliases of anchors holding
// aliases multiply them: past 10,000 nodes in all, the file is refused at
// the alias that crosses the line.
func TestDecodeRefusesAliasBombs(t *testing.T) {
	manyAliases := "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: [" + strings.TrimSuffix(strings.Repeat("*a, ", 1000), ", ") + "]\n"
	bigAnchor := "a: &a [" + strings.TrimSuffix(strings.Repeat("x, ", 20000), ", ") + "]\nb: *a\n"
	for name, src := range map[string]string{
		"ten-fold aliases in methods, as reported": aliasBomb(7),
		"a thousand aliases of one anchor":         manyAliases,
		"one alias of an anchor of 20,000 nodes":   bigAnchor,
		"a merge key of a large anchor":            "c: &c {" + mappingPairs(6000) + "}\nd:\n  <<: *c\n",
	} {
		t.Run(name, func(t *testing.T) {
			var cfg config.Config
			_, problems := yamlconf.Decode([]byte(src), &cfg)
			require.Len(t, problems, 1, "got %q; want one problem", located(problems))
			assert.Equal(t, msgAliases, problems[0].Message)
			assert.Equal(t, byte('*'), charAt(src, problems[0].Line, problems[0].Column), "got the problem at %d:%d; want it at an alias", problems[0].Line, problems[0].Column)
		})
	}
	t.Run("anchors as configs use them are accepted", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("defaults: &defaults\n  timeout: 30\n  circuit_breaker: {failure_threshold: 5, reset_timeout: 60}\n  methods: [GET, POST]\nendpoints:\n")
		for i := 0; i < 500; i++ {
			fmt.Fprintf(&b, "- <<: *defaults\n  name: svc%d\n  url: http://127.0.0.1:%d\n", i, 1000+i)
		}
		var v map[string]any
		_, problems := yamlconf.Decode([]byte(b.String()), &v)
		assert.Empty(t, problems, "got %q; want none", located(problems))
	})
}

// mappingPairs returns n pairs of a flow mapping: "k0: v, k1: v, …".
func mappingPairs(n int) string {
	pairs := make([]string, n)
	for i := range pairs {
		pairs[i] = fmt.Sprintf("k%d: v", i)
	}
	return strings.Join(pairs, ", ")
}

// charAt returns the byte at a 1-based line and (ASCII) column of src.
func charAt(src string, line, column int) byte {
	lines := strings.Split(src, "\n")
	if line < 1 || line > len(lines) || column < 1 || column > len(lines[line-1]) {
		return 0
	}
	return lines[line-1][column-1]
}

// goccy/go-yaml parses a block mapping in time and memory that grow with
// the square of its number of keys, and keeps each value's path as a
// string: a mapping of more than 256 keys, and a path longer than 256
// characters, are refused where they cross the line.
func TestDecodeRefusesHugeMappingsAndLongPaths(t *testing.T) {
	keys := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "k%d: %d\n", i, i)
		}
		return b.String()
	}
	var m map[string]int
	_, problems := yamlconf.Decode([]byte(keys(256)), &m)
	assert.Empty(t, problems, "got %q for 256 keys; want none", located(problems))
	assert.Len(t, m, 256)

	_, problems = yamlconf.Decode([]byte(keys(257)), &m)
	assert.Equal(t, []string{"257:1 " + msgKeys}, located(problems))

	_, problems = yamlconf.Decode([]byte("server:\n  host: x\n"+indentLines(keys(300), "  ")), &m)
	assert.Equal(t, []string{"258:3 " + msgKeys}, located(problems))

	long := strings.Repeat("k", 300)
	var v any
	_, problems = yamlconf.Decode([]byte("a:\n  "+long+": [x, y]\n"), &v)
	assert.Equal(t, []string{"2:3 " + msgPath}, located(problems))

	var b strings.Builder
	for i := 0; i < 12; i++ {
		b.WriteString(strings.Repeat("  ", i) + strings.Repeat("k", 20) + ":\n")
	}
	_, problems = yamlconf.Decode([]byte(b.String()), &v)
	// "$" and each ".kkkk…" of 21 characters: the 13th would pass 256.
	assert.Empty(t, problems, "got %q; want none", located(problems))
	b.WriteString(strings.Repeat("  ", 12) + strings.Repeat("k", 20) + ": x\n")
	_, problems = yamlconf.Decode([]byte(b.String()), &v)
	assert.Equal(t, []string{"13:25 " + msgPath}, located(problems))

	_, problems = yamlconf.Decode([]byte("a: {"+long+": 1}\n"), &v)
	assert.Equal(t, []string{"1:5 " + msgPath}, located(problems))
}

func indentLines(s, indent string) string {
	return indent + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n"+indent) + "\n"
}

// goccy/go-yaml's scanner reads a run of '<' in time that grows with the
// square of its length, and scans the rest of the line again at each tab
// of a double-quoted scalar: both are capped at 64, anywhere in the file.
func TestDecodeRefusesScannerTraps(t *testing.T) {
	var v map[string]string
	_, problems := yamlconf.Decode([]byte("a: b"+strings.Repeat("<", 64)+"\n"), &v)
	assert.Empty(t, problems, "got %q; want none", located(problems))
	_, problems = yamlconf.Decode([]byte("a: b\nc: d"+strings.Repeat("<", 65)+"\n"), &v)
	assert.Equal(t, []string{"2:5 " + msgLess}, located(problems))

	_, problems = yamlconf.Decode([]byte("a: \""+strings.Repeat("x\t", 64)+"\"\n"), &v)
	assert.Empty(t, problems, "got %q; want none", located(problems))
	_, problems = yamlconf.Decode([]byte("a: b\nc: \""+strings.Repeat("x\t", 65)+"\"\n"), &v)
	assert.Equal(t, []string{"2:134 " + msgTabs}, located(problems))
}

// A config file holds one document: a second one is refused where it
// starts, with or without markers around the first.
func TestDecodeRefusesASecondDocument(t *testing.T) {
	cases := []struct {
		src  string
		want string
	}{
		{"server:\n  port: 1\n---\nserver:\n  port: 2\n", "3:1"},
		{"---\nserver:\n  port: 1\n---\nserver:\n  port: 2\n", "4:1"},
		{"server:\n  port: 1\n...\nserver:\n  port: 2\n", "4:1"},
		{"server:\n  port: 1\n...\n---\nserver:\n  port: 2\n", "4:1"},
		{"server:\n  port: 1\n---\n", "3:1"},
		{"--- {server: {port: 1}}\n--- {}\n", "2:1"},
		{"endpoints: []\n---\n---\n", "2:1"},
		{"# one\nendpoints: [] # two\n\n---   # three\n", "4:1"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%q", c.src), func(t *testing.T) {
			var cfg config.Config
			_, problems := yamlconf.Decode([]byte(c.src), &cfg)
			assert.Equal(t, []string{c.want + " " + msgSecond}, located(problems))
			_, problems = yamlconf.DecodeChecked([]byte(c.src), &cfg)
			assert.Equal(t, []string{c.want + " " + msgSecond}, located(problems), "decodeChecked")
		})
	}
	for _, src := range []string{"---\nserver:\n  port: 1\n", "---\nserver:\n  port: 1\n...\n", "server:\n  port: 1\n...\n", "# c\n---\n# c\nserver: {port: 1}\n...\n# c\n"} {
		t.Run(fmt.Sprintf("%q is one document", src), func(t *testing.T) {
			var cfg config.Config
			_, problems := yamlconf.Decode([]byte(src), &cfg)
			assert.Empty(t, problems, "got %q; want none", located(problems))
			assert.Equal(t, 1, cfg.Server.Port)
		})
	}
}

// A file with no document at all is a mistake (an empty file, or one
// truncated by an editor), not a config that serves nothing.
func TestDecodeRefusesAFileWithNoDocument(t *testing.T) {
	for _, src := range []string{"", "\n", "   \n\n  ", "\t\n", "# nothing yet\n\n   # indented\n", "---\n", "--- # empty\n", "---\n...\n", "...\n", "\xef\xbb\xbf", "\xef\xbb\xbf# c\r\n", "\r\n\r\n"} {
		t.Run(fmt.Sprintf("%q", src), func(t *testing.T) {
			var cfg config.Config
			_, problems := yamlconf.Decode([]byte(src), &cfg)
			assert.Equal(t, []string{"1:1 " + msgNoDoc}, located(problems))
			_, problems = yamlconf.DecodeChecked([]byte(src), &cfg)
			assert.Equal(t, []string{"1:1 " + msgNoDoc}, located(problems), "decodeChecked")
		})
	}
	for _, src := range []string{"endpoints: []\n", "{}\n", "{}", "# none yet\nendpoints: []\n"} {
		t.Run(fmt.Sprintf("%q is a config", src), func(t *testing.T) {
			var cfg config.Config
			_, problems := yamlconf.Decode([]byte(src), &cfg)
			assert.Empty(t, problems, "got %q; want none", located(problems))
		})
	}
}

// A UTF-8 byte-order mark, which some editors write, is skipped on both
// paths, and positions are counted as if it were not there.
func TestDecodeSkipsAByteOrderMark(t *testing.T) {
	const bom = "\xef\xbb\xbf"
	var cfg config.Config
	_, problems := yamlconf.Decode([]byte(bom+"server:\n  port: 8080\n"), &cfg)
	require.Empty(t, problems, "got %q; want none", located(problems))
	assert.Equal(t, 8080, cfg.Server.Port)

	_, problems = yamlconf.Decode([]byte(bom+"{\"server\": {\"port\": 8081}}"), &cfg)
	require.Empty(t, problems, "got %q; want none", located(problems))
	assert.Equal(t, 8081, cfg.Server.Port)

	for _, decode := range []func([]byte, any) (*yamlconf.Document, []yamlconf.Problem){yamlconf.Decode, yamlconf.DecodeChecked} {
		_, problems = decode([]byte(bom+"servr:\n  port: 1\n"), &cfg)
		assert.Equal(t, []string{`1:1 unknown field "servr" (did you mean "server"?)`}, located(problems))
		_, problems = decode([]byte(bom+"server:\n  port: x\n"), &cfg)
		assert.Equal(t, []string{"2:9 must be a whole number"}, located(problems))
		_, problems = decode([]byte(bom+"a: [1,\n"), &cfg)
		require.Len(t, problems, 1)
		assert.Equal(t, 1, problems[0].Line, "got %q", located(problems))
	}
	doc, problems := yamlconf.Decode([]byte(bom+"server:\n  port: 8080\n"), &cfg)
	require.Empty(t, problems)
	line, column := doc.Locate("server.port")
	assert.Equal(t, [2]int{2, 9}, [2]int{line, column})
}

// hostile is an input built to cost a parser more than its size: refused
// says how Decode must refuse it ("" for: it decodes).
type hostile struct {
	name    string
	data    []byte
	refused string
}

// hostileInputs returns inputs of about size bytes in each shape that
// costs goccy/go-yaml more than linear time or memory, and large inputs
// that must cost Decode no more than linear: nesting (flow, block by
// indentation and compact), alias bombs, huge mappings, long paths, many
// documents, the scanner's slow runs, and a huge flow sequence and string
// in fields that take them.
func hostileInputs(size int) []hostile {
	rep := strings.Repeat
	fill := func(head, unit, tail string) string {
		n := max(1, (size-len(head)-len(tail))/len(unit))
		return head + rep(unit, n) + tail
	}
	lines := func(line func(i int) string) string {
		var b strings.Builder
		for i := 0; b.Len() < size; i++ {
			b.WriteString(line(i))
		}
		return b.String()
	}
	list := func(n int, item string) string { return strings.TrimSuffix(rep(item+", ", n), ", ") }
	endpoint := "endpoints:\n- name: a\n  url: http://127.0.0.1:1\n"

	half := size / 2
	var bomb strings.Builder
	width := max(10, size/40)
	fmt.Fprintf(&bomb, "a0: &a0 [%s]\n", list(width, "x"))
	for i := 1; bomb.Len() < size; i++ {
		fmt.Fprintf(&bomb, "a%d: &a%d [%s]\n", i, i, list(width, fmt.Sprintf("*a%d", i-1)))
	}
	inputs := []hostile{
		{"nested flow sequences", []byte("a: " + rep("[", half) + rep("]", half) + "\n"), msgDepth},
		{"nested flow mappings", []byte(fill("a: ", "{a: ", "1") + rep("}", size/4) + "\n"), msgDepth},
		{"nested JSON", []byte(fill("", `{"a": [`, "1") + "\n"), msgDepth},
		{"compact block sequences", []byte(fill("", "- ", "x\n")), msgDepth},
		{"block sequences by indentation", []byte(lines(func(i int) string { return rep(" ", i) + "-\n" })), msgDepth},
		{"block mappings by indentation", []byte(lines(func(i int) string { return rep(" ", i) + "a:\n" })), msgDepth},
		{"an alias bomb", []byte(bomb.String()), msgAliases},
		{"the reported alias bomb", []byte(aliasBomb(7)), msgAliases},
		{"many aliases of one small anchor", []byte(fill("a: &a [x, x, x]\nb: [", "*a, ", "*a]\n")), msgAliases},
		{"many aliases of one large anchor", []byte(fill("a: &a ["+list(half/3, "x")+"]\nb: [", "*a, ", "*a]\n")), msgAliases},
		{"many small keys", []byte(lines(func(i int) string { return fmt.Sprintf("k%d: 1\n", i) })), msgKeys},
		{"a long key over a long list", []byte(rep("k", half) + ":\n" + rep("- x\n", half/4)), msgPath},
		{"many documents", []byte(fill("", "---\na: 1\n", "")), msgSecond},
		{"a run of '<'", []byte(fill("a: b", "<", "\n")), msgLess},
		{"tabs in a double-quoted scalar", []byte(fill("a: \"", "x\t", "\"\n")), msgTabs},
		{"a flow sequence of scalars where a list belongs", []byte(fill(endpoint+"  methods: [", "GET, ", "GET]\n")), ""},
		{"a long string where a string belongs", []byte(fill(endpoint+"  fallback:\n    body: \"", "x", "\"\n")), ""},
		{"a long config", endpointsYAML(size / 130), ""},
	}
	if size > 64<<10 {
		// Refused at once: see TestReferencePathHeap for them as small.
		for _, h := range referenceShapes(size) {
			h.refused = msgReference
			if h.name == "an alias on every endpoint" {
				h.refused = msgAliases // prescan's limit comes first
			}
			inputs = append(inputs, h)
		}
	}
	return inputs
}

// referenceShapes are valid configs of about size bytes that only the
// reference path reads, in what configs use: an anchor on every endpoint,
// aliases of a shared setting (on some endpoints, or on every one), merge
// keys, block scalars, tags.
func referenceShapes(size int) []hostile {
	lines := func(head string, line func(i int) string) []byte {
		var b strings.Builder
		b.WriteString(head)
		for i := 0; b.Len() < size; i++ {
			b.WriteString(line(i))
		}
		return []byte(b.String())
	}
	shared := "endpoints:\n- &base\n  name: a\n  url: http://127.0.0.1:1\n  health_check: &hc {interval: 5s}\n"
	return []hostile{
		{"anchors on every endpoint", lines("endpoints:\n", func(i int) string {
			return fmt.Sprintf("- name: a%d\n  url: http://127.0.0.1:1\n  circuit_breaker: &cb%d {reset_timeout: 1m}\n", i, i)
		}), ""},
		{"aliases of a shared setting", lines(shared, func(i int) string {
			if i%256 == 0 {
				return fmt.Sprintf("- name: b%d\n  url: http://127.0.0.1:1\n  health_check: *hc\n", i)
			}
			return fmt.Sprintf("- name: b%d\n  url: http://127.0.0.1:1\n", i)
		}), ""},
		{"an alias on every endpoint", lines(shared, func(i int) string {
			return fmt.Sprintf("- name: e%d\n  url: http://127.0.0.1:1\n  health_check: *hc\n", i)
		}), ""},
		{"merge keys", lines(shared, func(i int) string {
			if i%256 == 0 {
				return fmt.Sprintf("- <<: *base\n  version: v%d\n", i)
			}
			return fmt.Sprintf("- name: m%d\n  url: http://127.0.0.1:1\n", i)
		}), ""},
		{"block scalars", lines("endpoints:\n", func(i int) string {
			return fmt.Sprintf("- name: c%d\n  url: http://127.0.0.1:1\n  health_check_path: |-\n    /health\n", i)
		}), ""},
		{"tags", lines("endpoints:\n", func(i int) string {
			return fmt.Sprintf("- name: !!str d%d\n  url: !!str http://127.0.0.1:1\n", i)
		}), ""},
	}
}

// TotalAlloc is deterministic where time is not: Decode of each hostile
// input of 64 KiB, 1 MiB and 4 MiB allocates at most 64 MiB per MiB of
// input (plus the slack FuzzDecodeBounded explains), and refuses it with
// the limit it crosses, or decodes it. BenchmarkHostileInputs times them.
func TestHostileInputsAreBounded(t *testing.T) {
	for _, size := range []int{64 << 10, 1 << 20, 4 << 20} {
		for _, h := range hostileInputs(size) {
			t.Run(fmt.Sprintf("%dKiB/%s", size>>10, h.name), func(t *testing.T) {
				var cfg config.Config
				var problems []yamlconf.Problem
				alloc := allocated(func() { _, problems = yamlconf.Decode(h.data, &cfg) })
				limit := uint64(allocPerMiB*len(h.data) + allocSlack)
				assert.LessOrEqual(t, alloc, limit, "got %.1f MiB allocated for %.2f MiB of input; want at most %d MiB per MiB",
					float64(alloc)/(1<<20), float64(len(h.data))/(1<<20), allocPerMiB)
				if h.refused == "" {
					assert.Empty(t, problems, "got %q; want the input decoded", located(problems[:min(3, len(problems))]))
					return
				}
				require.NotEmpty(t, problems, "got the input decoded; want it refused")
				assert.Equal(t, h.refused, problems[0].Message)
				assert.Positive(t, problems[0].Line)
				assert.Positive(t, problems[0].Column)
			})
		}
	}
}

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// goccyHeavy returns inputs of about size bytes that stay within every
// limit but that Decode leaves to goccy/go-yaml (each has a problem, which
// the reference path reports), whose cost is linear but, per byte of
// token-dense input, well above 64: BenchmarkHostileInputs measures them.
func goccyHeavy(size int) []hostile {
	var mappings strings.Builder
	for i := 0; mappings.Len() < size; i++ {
		fmt.Fprintf(&mappings, "- k0: %d\n", i)
		for k := 1; k < 256; k++ {
			fmt.Fprintf(&mappings, "  k%d: 1\n", k)
		}
	}
	n := max(1, (size-8)/3)
	return []hostile{
		{"goccy: a flow sequence of scalars under an unknown key", []byte("a: [" + strings.Repeat("x, ", n) + "x]\n"), `unknown field "a"`},
		{"goccy: mappings of 256 keys where a list of endpoints belongs", []byte("endpoints:\n" + indentLines(mappings.String(), "  ")), `unknown field "k0"`},
		{"goccy: a long config with a misspelt field", append(endpointsYAML(size/130), "  - nmae: x\n"...), `unknown field "nmae" (did you mean "name"?)`},
	}
}

// nestingDepth returns the deepest nesting of collections in goccy/go-yaml's
// syntax tree of data, or -1 when it does not parse (or panics).
func nestingDepth(data []byte) (depth int) {
	defer func() {
		if recover() != nil {
			depth = -1
		}
	}()
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		return -1
	}
	var walk func(n ast.Node, d int)
	walk = func(n ast.Node, d int) {
		switch v := n.(type) {
		case *ast.MappingNode:
			d++
			depth = max(depth, d)
			for _, kv := range v.Values {
				walk(kv.Key, d)
				walk(kv.Value, d)
			}
		case *ast.MappingValueNode:
			d++
			depth = max(depth, d)
			walk(v.Key, d)
			walk(v.Value, d)
		case *ast.SequenceNode:
			d++
			depth = max(depth, d)
			for _, item := range v.Values {
				walk(item, d)
			}
		case *ast.AnchorNode:
			walk(v.Value, d)
		case *ast.TagNode:
			walk(v.Value, d)
		case *ast.MappingKeyNode:
			walk(v.Value, d)
		}
	}
	for _, doc := range file.Docs {
		walk(doc.Body, 0)
	}
	return depth
}

// FuzzDecodeBounded holds Decode, on any input, to returning having
// allocated at most 64 bytes per byte of input plus 8 MiB, and to refusing
// nesting deeper than 64 levels (as goccy/go-yaml reads it).
//
// The 8 MiB of slack covers what does not grow with the input: Decode's
// fixed costs (the reflection plans of a type, built on first use, and
// goccy/go-yaml's set-up) are under 1 MiB, and goccy/go-yaml, which reads
// every document with a problem, allocates up to about 500 bytes per byte
// of the densest inputs (BenchmarkHostileInputs measures 434 for a flow
// sequence of one-letter scalars, 507 for mappings of 256 keys): the
// slack lets it read such inputs up to about 18 KB, more than the fuzzer's
// inputs grow to, while a cost that grows faster than the input (depth,
// aliases, mapping size, path length, documents, which each cost
// goccy/go-yaml quadratic or exponential memory) passes 8 MiB within a few
// KB.
func FuzzDecodeBounded(f *testing.F) {
	for _, h := range hostileInputs(2 << 10) {
		f.Add(h.data)
	}
	for _, s := range shapes {
		f.Add([]byte(s.build(66)))
	}
	f.Add([]byte(aliasBomb(4)))
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		limit := uint64(allocPerMiB*len(data) + allocSlack)
		var cfg config.Config
		var problems []yamlconf.Problem
		if alloc := allocated(func() { problems = decodeOrPanic(yamlconf.Decode, data, &cfg) }); alloc > limit {
			t.Fatalf("Decode into a Config allocated %d bytes for %d of input; want at most %d", alloc, len(data), limit)
		}
		var v any
		if alloc := allocated(func() { decodeOrPanic(yamlconf.Decode, data, &v) }); alloc > limit {
			t.Fatalf("Decode into an interface allocated %d bytes for %d of input; want at most %d", alloc, len(data), limit)
		}
		// goccy/go-yaml's own cost on deep input is what the limit is for:
		// ask it for the depth only of inputs small enough to afford.
		if len(data) <= 4<<10 {
			if depth := nestingDepth(data); depth > 64 && len(problems) == 0 {
				t.Fatalf("got a document nested %d levels deep decoded; want it refused", depth)
			}
		}
	})
}

// The limits are far from what configs, and the YAML and JSON files of
// this repository, hold: none of them crosses one.
func TestLimitsLeaveRealFilesAlone(t *testing.T) {
	files := []string{"../../testdata/seed.yaml", "../../internal/server/default.yaml", "../../examples/grafana/dashboard.json", "../../admin/assets/openapi.json"}
	for _, pattern := range []string{"../../examples/*.y*ml", "../../examples/*/*.y*ml", "../../testdata/fuzz/*/*", "../../config/testdata/fuzz/*/*", "testdata/fuzz/*/*"} {
		matches, err := filepath.Glob(pattern)
		require.NoError(t, err)
		files = append(files, matches...)
	}
	docs := map[string][]byte{"big config": endpointsYAML(10000), "big JSON config": endpointsJSON(t, 2000)}
	for _, p := range files {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		if lines := strings.SplitN(string(b), "\n", 3); len(lines) > 1 && lines[0] == "go test fuzz v1" && strings.HasPrefix(lines[1], "[]byte(") {
			s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
			require.NoError(t, err, "%s", p)
			b = []byte(s)
		}
		docs[p] = b
	}
	for i, s := range kitchenSeeds {
		docs[fmt.Sprintf("kitchen seed %d", i)] = []byte(s)
	}
	require.Greater(t, len(docs), 40)
	limits := []string{msgDepth, msgAliases, msgKeys, msgPath, msgLess, msgTabs}
	for name, data := range docs {
		t.Run(name, func(t *testing.T) {
			var v any
			_, problems := yamlconf.Decode(data, &v)
			for _, p := range problems {
				assert.NotContains(t, limits, p.Message, "got %d:%d %s", p.Line, p.Column, p.Message)
			}
		})
	}
}

// The fast parser and prescan count the limits alike: at each limit and
// one past it, in each form, Decode (whose fast path declines what prescan
// would refuse) gives what the reference path gives.
func TestFastPathAndPrescanAgreeAtTheLimits(t *testing.T) {
	var docs []string
	for _, s := range shapes {
		docs = append(docs, s.build(63), s.build(64), s.build(65))
	}
	keys := func(n int, indent string) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "%sk%d: %d\n", indent, i, i)
		}
		return b.String()
	}
	docs = append(docs, keys(256, ""), keys(257, ""), "s:\n"+keys(256, "  "), "s:\n"+keys(257, "  "), "- "+strings.TrimPrefix(keys(257, "  "), "  "))
	// Paths of 255 to 257 characters: "$." and a key, with the key written
	// in each way, and under sequences with one- and two-digit indices.
	for length := 255; length <= 257; length++ {
		n := length - 2
		plain := strings.Repeat("k", n)
		accented := strings.Repeat("é", n)
		escaped := strings.Repeat(`\x41`, n)
		quotes := strings.Repeat("''", n)
		docs = append(docs,
			plain+": 1\n", accented+": 1\n", `"`+escaped+`": 1`+"\n", "'"+quotes+"': 1\n",
			"{"+plain+": 1}\n", `{"`+plain+`": 1}`, "{\"a\": {\"b\": ["+strings.Repeat("[", 10)+"{\""+plain[37:]+"\": 1}"+strings.Repeat("]", 11)+"}}",
			"- "+plain[3:]+": 1\n", strings.Repeat("- x\n", 10)+"- "+plain[4:]+": 1\n",
			"a:\n  b: ["+strings.Repeat("x, ", 10)+"{"+plain[8:]+": 1}]\n",
		)
	}
	docs = append(docs, "a: b"+strings.Repeat("<", 64)+"\n", "a: b"+strings.Repeat("<", 65)+"\n", "a: '"+strings.Repeat("<", 65)+"'\n")
	for _, doc := range docs {
		compareDecode[any](t, []byte(doc))
		compareDecode[map[string]any](t, []byte(doc))
		compareDecode[config.Config](t, []byte(doc))
	}
	var v any
	for length, refused := range map[int]bool{256: false, 257: true} {
		_, problems := yamlconf.Decode([]byte(strings.Repeat("é", length-2)+": 1\n"), &v)
		assert.Equal(t, refused, len(problems) > 0, "a path of %d characters: got %q", length, located(problems))
	}
}

// prescan reads text as goccy/go-yaml's scanner does where that decides
// what is structure: nesting that goccy/go-yaml parses cannot hide from it
// behind what looks like a quote, a comment or a block scalar but is not
// one to goccy/go-yaml (and the reverse only refuses a file that is odd).
func TestPrescanSeesWhatGoccySees(t *testing.T) {
	deep := strings.Repeat("[", 70) + strings.Repeat("]", 70)
	for _, src := range []string{
		"a: b\n  \"c\nd: " + deep + "\n\"\n",      // a quote inside a multi-line plain scalar
		"a: b#c\nd: " + deep + "\n",               // a '#' that is text
		"a: |\n  x\n b: " + deep + "\n",           // a line less indented ends a block scalar
		"a:\n  - b\n   c\nd: " + deep + "\n",      // a multi-line plain scalar, then a key
		"a: \"x\ny\" " + deep + "\n",              // after a multi-line quoted scalar
		"a:\t" + deep + "\n",                      // a tab as a separator
		"? " + deep + "\n: x\n",                   // an explicit key
		"a: >\n x\n" + deep + "\n",                // the end of a folded scalar
		"--- |\n  x\n" + deep + "\n",              // a root block scalar's end
		"a: |2\n  x\n " + deep + "\n",             // an explicit indentation
		"a: b # \"\nc: " + deep + "\n",            // a quote in a comment
		"a: 'b''\nc: " + deep + "'\n",             // '' in a single-quoted scalar
		"&a\"x: " + deep + "\n",                   // a quote in an anchor's name
		"[a\"b, " + deep + "]\n",                  // a quote inside a flow scalar
		"a: & b\n" + deep + "\n",                  // an anchor without a name
		"a: [b\n" + deep + "]\n",                  // a flow sequence over lines
		"a:b: " + deep + "\n",                     // a colon that is text
		"a: 'x' " + deep + "\n",                   // after a quoted scalar
		"&\x80\x80\x80 a: |\n     " + deep + "\n", // invalid UTF-8 counts as characters
	} {
		t.Run(fmt.Sprintf("%.40q", src), func(t *testing.T) {
			depth := nestingDepth([]byte(src))
			guard := yamlconf.GuardTokens([]byte(src))
			if depth <= 64 && len(guard) == 0 {
				return
			}
			assert.NotEmpty(t, yamlconf.Prescan([]byte(src)), "got the file past prescan; goccy/go-yaml nests it %d deep (its tokens: %q)", depth, located(guard))
		})
	}
}
