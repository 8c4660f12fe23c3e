package yamlconf_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/config"
	"github.com/orchestrator-go/orchestrator/internal/yamlconf"
)

// Decode must give exactly what the original path gives: the same value,
// or the same problems. These types exercise what the fast parser and the
// typed decoder follow and what they leave to goccy/go-yaml.

type named string

type grade int

func (g *grade) UnmarshalText(b []byte) error {
	switch string(b) {
	case "low", "1":
		*g = 1
	case "high", "16":
		*g = 2
	default:
		return fmt.Errorf("unknown grade %q", b)
	}
	return nil
}

type Base struct {
	Shared string  `yaml:"shared"`
	Note   *string `yaml:"note"`
}

type entry struct {
	Name  string                `yaml:"name"`
	Port  int                   `yaml:"port"`
	On    *bool                 `yaml:"on"`
	Wait  orchestrator.Duration `yaml:"wait"`
	Tags  []string              `yaml:"tags"`
	Inner *entry                `yaml:"inner"`
}

type kitchen struct {
	Base     `yaml:",inline"`
	S        string                    `yaml:"s"`
	N        named                     `yaml:"n"`
	I        int                       `yaml:"i"`
	I8       int8                      `yaml:"i8"`
	I64      int64                     `yaml:"i64"`
	U        uint                      `yaml:"u"`
	U8       uint8                     `yaml:"u8"`
	F        float64                   `yaml:"f"`
	F32      float32                   `yaml:"f32"`
	B        bool                      `yaml:"b"`
	PB       *bool                     `yaml:"pb"`
	PI       *int                      `yaml:"pi"`
	PS       *string                   `yaml:"ps"`
	D        orchestrator.Duration     `yaml:"d"`
	PD       *orchestrator.Duration    `yaml:"pd"`
	G        grade                     `yaml:"g"`
	Strs     []string                  `yaml:"strs"`
	Ints     []int                     `yaml:"ints"`
	Ptrs     []*string                 `yaml:"ptrs"`
	Grades   []grade                   `yaml:"grades"`
	M        map[string]string         `yaml:"m"`
	MN       map[named]int             `yaml:"mn"`
	ME       map[string]entry          `yaml:"me"`
	MP       map[string]*entry         `yaml:"mp"`
	Any      any                       `yaml:"any"`
	AnyMap   map[string]any            `yaml:"anymap"`
	AnyList  []any                     `yaml:"anylist"`
	Items    []entry                   `yaml:"items"`
	Item     *entry                    `yaml:"item"`
	Nested   map[string]map[string]int `yaml:"nested"`
	JSONOnly string                    `json:"jsononly"`
	Untagged string
	Arr      [2]int        `yaml:"arr"`
	TD       time.Duration `yaml:"td"`
	Skip     string        `yaml:"-"`
}

// decodeOrPanic runs decode and turns a panic (goccy/go-yaml has a few on
// odd input) into a problem, so that both paths are held to the same.
func decodeOrPanic(decode func([]byte, any) (*yamlconf.Document, []yamlconf.Problem), data []byte, v any) (problems []yamlconf.Problem) {
	defer func() {
		if r := recover(); r != nil {
			problems = []yamlconf.Problem{{Message: fmt.Sprint("panic: ", r)}}
		}
	}()
	_, problems = decode(data, v)
	return problems
}

func compareDecode[T any](t *testing.T, data []byte) {
	t.Helper()
	var want T
	wantProblems := decodeOrPanic(yamlconf.DecodeOriginal, data, &want)
	// The check on the fast parser's tree, whenever it is sure of its
	// problems, finds those of the original path (even where Decode would
	// not need it: the typed decoder gives up only on some documents).
	if problems, exact := yamlconf.CheckTree(data, new(T)); exact && len(problems) > 0 {
		require.Equal(t, wantProblems, problems, "CheckTree of %T: problems differ for %q", want, data)
	}
	for _, c := range []struct {
		name   string
		decode func([]byte, any) (*yamlconf.Document, []yamlconf.Problem)
	}{{"Decode", yamlconf.Decode}, {"decodeChecked", yamlconf.DecodeChecked}} {
		var got T
		gotProblems := decodeOrPanic(c.decode, data, &got)
		require.Equal(t, wantProblems, gotProblems, "%s of %T: problems differ for %q", c.name, got, data)
		if len(wantProblems) == 0 && !deepEqual(reflect.ValueOf(want), reflect.ValueOf(got)) {
			t.Fatalf("%s of %T: values differ for %q\nwant %#v\ngot  %#v", c.name, got, data, want, got)
		}
	}
}

// compareTrees checks that the fast parser, when it accepts a document,
// reads the tree goccy/go-yaml reads.
func compareTrees(t *testing.T, data []byte) {
	t.Helper()
	fast, ok := yamlconf.FastTree(data)
	if !ok {
		return
	}
	goccy, ok, err := yamlconf.GoccyTree(data)
	require.NoError(t, err, "the fast parser accepts %q, goccy/go-yaml does not", data)
	require.True(t, ok, "the fast parser accepts %q, goccy/go-yaml's tree holds more", data)
	require.Equal(t, goccy, fast, "trees differ for %q", data)
}

// deepEqual is reflect.DeepEqual but for NaN, equal to itself here.
func deepEqual(a, b reflect.Value) bool {
	if a.IsValid() != b.IsValid() {
		return false
	}
	if !a.IsValid() {
		return true
	}
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Float32, reflect.Float64:
		x, y := a.Float(), b.Float()
		return x == y || (math.IsNaN(x) && math.IsNaN(y))
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return deepEqual(a.Elem(), b.Elem())
	case reflect.Slice:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		fallthrough
	case reflect.Array:
		for i := 0; i < a.Len(); i++ {
			if !deepEqual(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			if !deepEqual(a.MapIndex(k), b.MapIndex(k)) {
				return false
			}
		}
		return true
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if !deepEqual(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

var kitchenSeeds = []string{
	"s: x\nn: y\ni: 0x10\ni8: -0o17\ni64: 1_000\nu: 010\nf: 1.5e3\nf32: 7\nb: TRUE\npb: false\npi: -3\nps: ~\n",
	"u8: 300\n",
	"i: 9223372036854775807\nu: 18446744073709551615\ni8: 127\nu8: 255\n",
	"d: 1.50\npd: \"250ms\"\ng: high\n",
	"d: 017\n",
	"strs: [a, 'b c', \"d\", 1, 2.50, true, null, .inf, -.INF, .NaN, 0o7, +12, 1e3, 1_0]\n",
	"ints: [1, -2, 0b11]\nptrs: [x, null, ~]\ngrades: [low, 0x10, '1']\n",
	"m: {a: 1, 'b': x y, \"c\": ~, 1: one, 2.5: two, true: t, null: n}\n",
	"m: {1: one, 01: two}\n",
	"mn:\n  k: 1\n  0x1: 2\nme:\n  first:\n    name: a\n    tags: []\nmp:\n  x: null\n  y: {}\n",
	"any: {a: [1, {b: .nan}], true: 1.0, ~: -.inf, 0x1F: x}\n",
	"anymap:\n  k: v\n  l: [1, 2]\nanylist:\n  - 1\n  - a: b\n  -\n",
	"items:\n- name: a\n  port: 80\n  on: true\n  wait: 30\n  tags:\n  - x\n  inner:\n    name: deep\n-   name: b\n    wait: \"1m\"\n- \n- {}\nitem: {name: x, port: +5}\n",
	"item:\n  name: x\n  inner:\n    inner:\n      tags:\n        - a\n        - b\n",
	"nested: {a: {b: 1}, c: {}}\njsononly: x\nuntagged: y\nshared: s\nnote: n\n",
	"arr: [1, 2]\n",
	"td: 5\n",
	"skip: x\n",
	"# comment\n\ns: 'it''s'   # trailing\nn: a#b\ni: 0\n\n\n",
	"s: http://x:80/a?b=c#d\nn: -x\nstrs: [http://a:1/b, 'x:y']\n",
	"s: \"a\\tb\"\nn: |\n  text\n",
	"s: \"{\\\"a\\\": 1}\\n\\u00e9\\x41\\U0001F600\\/\"\r\nn: 'x'\r\nstrs: [\"\\t\", \"\\\\\"]\r\n",
	"m:\r\n  \"a\\\"b\": 1\r\n  \"\\x41\": 2\r\n",
	"s: a\n  b\n",
	"item:\n  name: a\n  inner: &x {name: b}\nitems: [*x]\n",
	// What the reference path decodes from the tree it parsed: anchors,
	// aliases of scalars, collections and typed values, merge keys before
	// and after the keys they share, tags.
	"s: &v 10\nn: *v\ni: *v\nstrs: [*v, *v]\nany: *v\n",
	"d: &t 30s\npd: *t\ng: &g high\ngrades: [*g, *g]\nitem: {wait: *t}\n",
	"anymap: &base\n  port: 1\n  name: a\nitem:\n  <<: *base\n  tags: [x]\nitems:\n  - wait: 1s\n    <<: *base\n  - *base\n",
	"anymap: &base\n  port: 1\nitem:\n  <<: *base\n  port: 2\n",
	"me:\n  a: &e {name: x, tags: [p, q]}\n  b: *e\nmp: {c: *e}\n",
	"m: {<<: {k: v}, l: w}\n",
	"items:\n  - &first\n    name: a\n    inner: &in {name: b}\n  - <<: *first\n    port: 9\n  - inner: *in\n    <<: [*first, {port: 9}]\n",
	"items:\n  - &first\n    name: a\n    inner: &in {name: b}\n  - <<: *first\n    port: 9\n  - {inner: *in}\n",
	"s: !!str 10\nf: !!float 1\nstrs: !!seq [a]\nitem: !!map {name: x}\n",
	"i: !!int \"7\"\nb: !custom true\n",
	"n: |\n  one\n  two\ns: >-\n  folded\n  text\nstrs:\n  - |+\n    kept\n\n  - x\n",
	"endpoints:\n  - &e\n    name: a\n    url: http://127.0.0.1:1\n    circuit_breaker: &cb {reset_timeout: 1m}\n  - <<: *e\n    name: b\n    circuit_breaker: *cb\n",
	"{\"s\": \"x\", \"i\": 1, \"strs\": [\"a\", \"b\"], \"item\": {\"name\": \"n\", \"port\": 2}}",
	"{\"s\":\"x\",\"i\":1,\"strs\":[\"a\",\"b\"],\"item\":{\"name\":\"n\",\"port\":2}}",
	"{\n  \"s\": \"x\",\n  \"ints\": [1, 2]\n}\n",
	"{\n  \"s\": \"x\",\n  \"item\": {\n    \"name\": \"a\\u003cb\",\n    \"tags\": [\n      \"x\",\n      \"y\"\n    ],\n    \"port\": -1.5e3\n  },\n  \"any\": [true, null, {}, []]\n}\n",
	"[\n  1,\n  [a, b],\n  {\"k\": v}\n]\n",
	"s: x\ns: y\n",
	"---\ns: x\n",
	"s: x\n---\ns: y\n",
	"  s: x\n  n: y\n",
	"- a\n- b\n",
	"just a string\n",
	"~\n",
	"",
	"# only a comment\n",
}

func addSeeds(f *testing.F) {
	for _, s := range kitchenSeeds {
		f.Add([]byte(s))
	}
	for _, p := range []string{"../../testdata/seed.yaml", "../../examples/config.yaml"} {
		b, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(b)
	}
	files, err := filepath.Glob("../../config/testdata/fuzz/FuzzParse/*")
	require.NoError(f, err)
	for _, p := range files {
		b, err := os.ReadFile(p)
		require.NoError(f, err)
		lines := strings.SplitN(string(b), "\n", 3)
		if len(lines) < 2 || !strings.HasPrefix(lines[1], "[]byte(") {
			continue
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		require.NoError(f, err, "%s", p)
		f.Add([]byte(s))
	}
}

// FuzzDecode holds the fast parser to goccy/go-yaml's trees, and Decode
// (with and without the fast parser) to the original path's values and
// problems, on arbitrary input.
func FuzzDecode(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		compareTrees(t, data)
		compareLocate(t, data)
		compareDecode[config.Config](t, data)
		compareDecode[kitchen](t, data)
	})
}

// Pools of the parts FuzzFastPathLines builds documents from: keys the
// types know and some they do not, and scalars on the edges of YAML's and
// goccy/go-yaml's rules.
var (
	fuzzIndents  = []string{"", "", "  ", "  ", "    ", " ", "   ", "      "}
	fuzzPrefixes = []string{"", "", "", "- ", "- ", "-   ", "- - ", "-"}
	fuzzKeys     = []string{
		"s", "n", "i", "u8", "f", "b", "pb", "d", "pd", "g", "strs", "ints", "ptrs", "m", "mn", "me", "mp", "any", "anymap",
		"items", "item", "name", "port", "on", "wait", "tags", "inner", "shared", "note", "untagged", "jsononly",
		"endpoints", "url", "timeout", "circuit_breaker", "reset_timeout", "health_check", "enabled", "methods", "server",
		"headers", "fallback", "failure_statuses", "version", "disabled",
		"\"s\"", "'n'", "1", "0x1", "true", "null", "~", "a b", "a:b", "a.b", "a[0]", "<<", "a<<", "é", "\"a\\\"b\"", "'it''s'", "k ",
	}
	fuzzValues = []string{
		"", "x", "a b", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "yes", "no", "on",
		"0", "00", "0x1F", "0X1F", "0o17", "017", "08", "1_000", "_1", "+5", "-5", "+-5", "-0", "9223372036854775807",
		"18446744073709551615", "99999999999999999999", ".5", "1.", "1.50", "1e3", "1.0e3", "1.0e400", "+.5", "-.5",
		".inf", "-.Inf", "+.inf", ".nan", ".NaN", "1m", "500ms", "\"250ms\"", "'1m30s'", "-1s", "30s",
		"'a''b'", "''", "\"\"", "\"x y\"", "'x: y'", "\"a # b\"", "a#b", "a #b", "a: b", "a:b", "a:", "http://x:1/y?q#f",
		"[a, b]", "[]", "{}", "{a: 1}", "{a: 1, b: [x, y]}", "[{a: 1}, {b: 2}]", "[a, [b, c]]", "[\"a\", 'b']", "{\"a\":1}",
		"[a,b]", "[a, ]", "[, a]", "{a}", "{a: }", "[a: b]", "[http://x]", "{u: http://x}", "[-1, -a]", "[-]",
		"- x", "-x", "--x", "---", "...", "a,b", "a]b", "x}", "]", "}", ",", "'", "\"", "&a x", "*a", "!t x", "!!str 1", "|", ">",
		"%x", "@x", "`x", "<<", "a<<", "?x", "? x", ":x", "é", "日本", "a\\b", "\"a\\tb\"", "\"a\\u00e9\"", "'a\\b'", "\"\\x41\\x4g\"", "\"\\\"q\\\"\"",
		"\"\\U0001F600\\U00110000\"", "\"\\ud83d\\ude00\"", "\"\\0\\a\\b\\e\\ \\/\\N\\_\\L\\P\"", "\"x\\\"", "\"a\\qb\"",
		"GET", "http://127.0.0.1:1", "https://api.example.com/v1", "/health", "static_response", "fallback_endpoint",
		"[", "{", "1,", "\"a\",", "\"k\": 1,", "\"s\": \"x\",", "\"item\": {", "\"strs\": [", "],", "},", "]", "}", "{\"i\": 1,", "[1,",
	}
	fuzzTrails = []string{"", "", "", " # c", "  ", "#c", " #", "\t", "\r", " \r", "\r\r"}
)

// FuzzDecodeLines builds documents line by line from pools of keys,
// values and indents, which byte-level mutation rarely assembles, and holds
// Decode to the original path on them.
func FuzzDecodeLines(f *testing.F) {
	f.Add([]byte{0, 0, 20, 1, 0, 3, 3, 21, 2, 0, 4, 3, 22, 3, 0})
	f.Add([]byte("endpoints with names and urls and timeouts"))
	f.Add([]byte{2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 200, 100, 50, 25})
	f.Fuzz(func(t *testing.T, choices []byte) {
		pick := func(pool []string) string {
			if len(choices) == 0 {
				return pool[0]
			}
			c := choices[0]
			choices = choices[1:]
			return pool[int(c)%len(pool)]
		}
		var b strings.Builder
		for len(choices) > 0 {
			b.WriteString(pick(fuzzIndents))
			b.WriteString(pick(fuzzPrefixes))
			switch pick([]string{"kv", "kv", "kv", "k", "k", "v", "c", ""}) {
			case "kv":
				b.WriteString(pick(fuzzKeys) + ": " + pick(fuzzValues))
			case "k":
				b.WriteString(pick(fuzzKeys) + ":")
			case "v":
				b.WriteString(pick(fuzzValues))
			case "c":
				b.WriteString("# comment")
			}
			b.WriteString(pick(fuzzTrails))
			b.WriteString("\n")
		}
		data := []byte(b.String())
		compareTrees(t, data)
		compareLocate(t, data)
		compareDecode[config.Config](t, data)
		compareDecode[kitchen](t, data)
	})
}

// Pools of FuzzDecodeFlow: keys, scalars and the blanks between tokens.
var (
	flowKeys = []string{
		"\"s\"", "\"item\"", "\"name\"", "\"strs\"", "\"i\"", "\"m\"", "\"any\"", "\"tags\"", "\"port\"", "\"items\"", "\"mp\"",
		"\"endpoints\"", "\"url\"", "\"timeout\"", "\"a b\"", "\"\\u0041\"", "k", "'n'", "\"\"",
	}
	flowScalars = []string{
		"1", "-1.5e3", "0", "true", "false", "null", "\"x\"", "\"\"", "\"a\\nb\"", "'y'", "a", "http://x", "a:b", "1m",
		"\"30s\"", ".inf", "0x10", "~", "é", "-", "-a", "a b", "\"http://127.0.0.1:1\"",
	}
	flowBlanks = []string{"", "", " ", "\n", "\n  ", "\r\n", "\n\n    ", "  ", " # c\n", "\n---\n"}
)

// FuzzDecodeFlow builds flow collections (JSON and its YAML relatives)
// laid out over lines from pools of keys, scalars and blanks, and holds
// the fast paths to the original path on them.
func FuzzDecodeFlow(f *testing.F) {
	f.Add([]byte{1, 0, 2, 3, 1, 4, 0, 2, 0, 5})
	f.Add([]byte("{\"endpoints\": [{\"name\": \"a\"}]}"))
	f.Fuzz(func(t *testing.T, choices []byte) {
		next := func(n int) int {
			if len(choices) == 0 {
				return 0
			}
			c := choices[0]
			choices = choices[1:]
			return int(c) % n
		}
		pick := func(pool []string) string { return pool[next(len(pool))] }
		var gen func(depth int) string
		gen = func(depth int) string {
			shape := next(3)
			if depth > 3 || shape == 0 {
				return pick(flowScalars)
			}
			var b strings.Builder
			open, closer := "[", "]"
			if shape == 1 {
				open, closer = "{", "}"
			}
			b.WriteString(open + pick(flowBlanks))
			for n := next(4); n > 0; n-- {
				if shape == 1 {
					b.WriteString(pick(flowKeys) + pick([]string{": ", ":", " : "}))
				}
				b.WriteString(gen(depth + 1))
				if n > 1 {
					b.WriteString(pick(flowBlanks) + "," + pick(flowBlanks))
				}
			}
			b.WriteString(pick(flowBlanks) + closer)
			return b.String()
		}
		data := []byte(pick(flowBlanks) + gen(1) + pick(flowBlanks))
		compareTrees(t, data)
		compareLocate(t, data)
		compareDecode[config.Config](t, data)
		compareDecode[kitchen](t, data)
	})
}

// compareLocate checks that Locate on the fast parser's tree, whenever it
// answers, answers what it does on goccy/go-yaml's syntax tree, for the
// paths of data and some that are not there.
func compareLocate(t *testing.T, data []byte) {
	t.Helper()
	paths, ok := yamlconf.LocatePaths(data, 300)
	if !ok {
		return
	}
	for _, l := range yamlconf.LocateBoth(data, paths, false) {
		if l.FastOK {
			require.Equal(t, [2]int{l.GoccyLine, l.GoccyColumn}, [2]int{l.FastLine, l.FastColumn}, "Locate(%q) differs for %q", l.Path, data)
		}
	}
}

// TestLocateFromTree holds Locate on the fast parser's tree to goccy/go-yaml's
// on the seeds, the corpora and configuration files such as users write,
// and checks that the tree answers for the paths of the latter.
func TestLocateFromTree(t *testing.T) {
	docs := append([]string(nil), kitchenSeeds...)
	for _, pattern := range []string{"../../testdata/seed.yaml", "../../examples/config.yaml", "testdata/fuzz/*/*", "../../testdata/fuzz/*/*", "../../config/testdata/fuzz/*/*"} {
		files, err := filepath.Glob(pattern)
		require.NoError(t, err)
		for _, p := range files {
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			s := string(b)
			if lines := strings.SplitN(s, "\n", 3); len(lines) >= 2 && strings.HasPrefix(lines[1], "[]byte(") {
				if u, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")")); err == nil {
					s = u
				}
			}
			docs = append(docs, s)
		}
	}
	configs := []string{
		"server:\n  port: 8080\nendpoints:\n  - name: a\n    url: ftp://x\n    methods: [GET, 'BAD METHOD', \"é\"]\n  -   name: \"b\\tc\"\n      url: 'it''s'\n      timeout: 3\n",
		"# c\r\nendpoints:\r\n- name: é日本\r\n  url: \"x\"\r\n  headers: {a: b, c: {d: [1, 2]}}\r\n",
		"{\n  \"endpoints\": [\n    {\"name\": \"a\", \"url\": \"ftp://b\", \"methods\": [\"GET\", \"x\\u0041\"]},\n    {}\n  ],\n  \"server\": {\"port\": 1}\n}\n",
		"endpoints: []\nserver: {}\nhealth_check:\n  enabled: ~\n  interval: null\n",
		"endpoints:\n  - name:\n    url:   # none\n  -\n  - name: b\n    methods:\n\n# c\nserver:\n  port: 1\n",
	}
	docs = append(docs, configs...)
	for _, d := range docs {
		compareLocate(t, []byte(d))
	}
	for _, d := range configs {
		if strings.Contains(d, "\r") {
			continue // CRLF files are left to goccy/go-yaml
		}
		paths, ok := yamlconf.LocatePaths([]byte(d), 1000)
		require.True(t, ok, "%q", d)
		for _, l := range yamlconf.LocateBoth([]byte(d), paths, false) {
			// Only CRLF files, the unwritten null of "key:" at the end of
			// the file and paths with special characters are left to
			// goccy/go-yaml.
			require.True(t, l.FastOK, "the tree does not locate %q in %q", l.Path, d)
		}
	}
}

// TestProblemsFromTree checks that the problems of files the fast parser
// reads come from its tree, the same as the original path's.
func TestProblemsFromTree(t *testing.T) {
	for _, d := range []string{
		"endpoints:\n  - name: a\n    url: http://x\n    timout: 3\n",
		"server:\n  port: [1]\nendpoints:\n  - name: é\n    url: x\n    methods: GET\n    bogus: 1  \njunk: [GET, GET]\n",
		"{\"endpoints\": [{\"name\": \"a\\u0041\", \"timeout\": \"x\"}], \"Server\": {}}",
		"endpoints:\n- name: a\n  timeout: 1.5  \n  disabled: 1\n",
	} {
		problems, exact := yamlconf.CheckTree([]byte(d), new(config.Config))
		require.True(t, exact, "%q", d)
		require.NotEmpty(t, problems, "%q", d)
		var cfg config.Config
		_, want := yamlconf.DecodeOriginal([]byte(d), &cfg)
		require.Equal(t, want, problems, "%q", d)
		_, got := yamlconf.Decode([]byte(d), &cfg)
		require.Equal(t, want, got, "%q", d)
	}
}
