package yamlconf

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// level is a TextUnmarshaler, like orchestrator.Duration.
type level int

func (l *level) UnmarshalText(b []byte) error {
	switch string(b) {
	case "low":
		*l = 1
	case "high":
		*l = 2
	default:
		return fmt.Errorf("unknown level %q", b)
	}
	return nil
}

type inner struct {
	Enabled *bool   `yaml:"enabled,omitempty"`
	Ratio   float64 `yaml:"ratio"`
	Level   level   `yaml:"level"`
}

type Embedded struct {
	Shared string `yaml:"shared"`
}

type item struct {
	Name  string            `yaml:"name"`
	Port  int               `yaml:"port"`
	Tags  []string          `yaml:"tags"`
	Extra map[string]inner  `yaml:"extra"`
	Inner *inner            `yaml:"inner"`
	Meta  map[string]string `yaml:"meta"`
}

type doc struct {
	Embedded `yaml:",inline"`
	Title    string `yaml:"title"`
	Count    uint8  `yaml:"count"`
	Items    []item `yaml:"items"`
	Ignored  string `yaml:"-"`
	Untagged string
}

func decodeDoc(t *testing.T, src string) (doc, *Document, []Problem) {
	t.Helper()
	var d doc
	document, problems := Decode([]byte(src), &d)
	return d, document, problems
}

func problemLines(ps []Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = fmt.Sprintf("%d:%d %s: %s", p.Line, p.Column, p.Path, p.Message)
	}
	return out
}

func TestDecodeAcceptsAValidDocument(t *testing.T) {
	src := `title: demo
shared: from-embedded
untagged: yes-it-is
count: 7
items:
  - name: a
    port: 80
    tags: [x, y]
    inner: {enabled: true, ratio: 0.5, level: high}
    extra:
      first: {ratio: 2, level: low}
    meta:
      k: v
`
	d, document, problems := decodeDoc(t, src)
	require.Empty(t, problems, "got problems %q; want none", problemLines(problems))
	require.NotNil(t, document)
	assert.Equal(t, "demo", d.Title)
	assert.Equal(t, "from-embedded", d.Shared, "got the inline embedded field unset; want it decoded")
	assert.Equal(t, "yes-it-is", d.Untagged, "got the untagged field unset; want it decoded by its lower-cased name")
	assert.EqualValues(t, 7, d.Count)
	require.Len(t, d.Items, 1)
	it := d.Items[0]
	assert.Equal(t, "a", it.Name)
	assert.Equal(t, 80, it.Port)
	assert.Equal(t, []string{"x", "y"}, it.Tags)
	require.NotNil(t, it.Inner)
	require.NotNil(t, it.Inner.Enabled)
	assert.True(t, *it.Inner.Enabled)
	assert.Equal(t, 0.5, it.Inner.Ratio)
	assert.Equal(t, level(2), it.Inner.Level)
	assert.Equal(t, inner{Ratio: 2, Level: 1}, it.Extra["first"])
	assert.Equal(t, map[string]string{"k": "v"}, it.Meta)
}

func TestDecodeReportsEveryProblemAtOnce(t *testing.T) {
	src := `titel: x
count: many
ignored: nope
items:
  - name: [not, a, string]
    port: 1.5
    tags: solo
    inner:
      enabled: maybe
      ratio: fast
      level: medium
      levle: low
    extra:
      first: 3
  - nmae: b
    port: 9999999999999999999
`
	_, _, problems := decodeDoc(t, src)
	want := []string{
		`1:1 titel: unknown field "titel" (did you mean "title"?)`,
		`2:8 count: must be a whole number`,
		`3:1 ignored: unknown field "ignored"`,
		`5:11 items[0].name: must be a string`,
		`6:11 items[0].port: must be a whole number`,
		`7:11 items[0].tags: must be a list`,
		`9:16 items[0].inner.enabled: must be true or false`,
		`10:14 items[0].inner.ratio: must be a number`,
		`11:14 items[0].inner.level: unknown level "medium"`,
		`12:7 items[0].inner.levle: unknown field "levle" (did you mean "level"?)`,
		`14:14 items[0].extra.first: must be a mapping of field: value`,
		`15:5 items[1].nmae: unknown field "nmae" (did you mean "name"?)`,
		`16:11 items[1].port: is out of range`,
	}
	got := problemLines(problems)
	assert.Equal(t, want, got, "got %q; want %q", got, want)
}

func TestDecodeLeavesTheTargetAloneOnProblems(t *testing.T) {
	d := doc{Title: "before"}
	_, problems := Decode([]byte("title: after\nbogus: 1\n"), &d)
	require.Len(t, problems, 1, "got %q; want one problem", problemLines(problems))
	assert.Equal(t, "before", d.Title, "got %q; want the target untouched when the document has problems", d.Title)
}

func TestDecodeSyntaxErrors(t *testing.T) {
	t.Run("a syntax error is one located problem with no document", func(t *testing.T) {
		var d doc
		document, problems := Decode([]byte("items:\n  - name: a\n    tags: [x\n"), &d)
		assert.Nil(t, document, "got a document; want nil when the YAML does not parse")
		require.Len(t, problems, 1, "got %q; want one problem", problemLines(problems))
		assert.Equal(t, 3, problems[0].Line, "got line %d; want 3", problems[0].Line)
		assert.Positive(t, problems[0].Column, "got column %d; want > 0", problems[0].Column)
		assert.NotEmpty(t, problems[0].Message)
	})
	t.Run("a file with no document is one problem at its top, with no document", func(t *testing.T) {
		d, document, problems := decodeDoc(t, "")
		assert.Nil(t, document)
		assert.Equal(t, []string{"1:1 : the file holds no YAML document; write `endpoints: []` to serve no endpoints from the file"}, problemLines(problems))
		assert.Equal(t, doc{}, d)
	})
	t.Run("a null value is accepted anywhere", func(t *testing.T) {
		d, _, problems := decodeDoc(t, "title: ~\nitems:\n  - inner: null\n")
		assert.Empty(t, problems, "got %q; want none", problemLines(problems))
		require.Len(t, d.Items, 1)
		assert.Nil(t, d.Items[0].Inner)
	})
	t.Run("a value too large for its field is a located problem", func(t *testing.T) {
		_, _, problems := decodeDoc(t, "title: t\ncount: 300\n")
		require.Len(t, problems, 1, "got %q; want one problem", problemLines(problems))
		assert.Equal(t, [2]int{2, 8}, [2]int{problems[0].Line, problems[0].Column}, "got %d:%d; want 2:8", problems[0].Line, problems[0].Column)
		assert.Contains(t, problems[0].Message, "overflow")
	})
	t.Run("a block mapping where a list belongs is located at its first key", func(t *testing.T) {
		_, _, problems := decodeDoc(t, "items:\n  - tags:\n      a: b\n      c: d\n")
		got := problemLines(problems)
		assert.Equal(t, []string{"3:7 items[0].tags: must be a list"}, got)
	})
	t.Run("a scalar where a document mapping belongs is a problem", func(t *testing.T) {
		_, _, problems := decodeDoc(t, "just a string\n")
		got := problemLines(problems)
		assert.Equal(t, []string{"1:1 : must be a mapping of field: value"}, got)
	})
}

func TestDecodeAnchorsAndMerges(t *testing.T) {
	t.Run("aliases and merge keys decode without false unknown-field problems", func(t *testing.T) {
		src := `items:
  - &base
    name: a
    port: 80
  - <<: *base
  - *base
`
		d, _, problems := decodeDoc(t, src)
		require.Empty(t, problems, "got %q; want none", problemLines(problems))
		require.Len(t, d.Items, 3)
		assert.Equal(t, item{Name: "a", Port: 80}, d.Items[1], "got %+v; want the merged fields", d.Items[1])
		assert.Equal(t, "a", d.Items[2].Name)
	})
	t.Run("an unknown field inside an anchor is reported where it is written", func(t *testing.T) {
		src := "items:\n  - &base\n    name: a\n    prot: 80\n  - *base\n"
		_, _, problems := decodeDoc(t, src)
		got := problemLines(problems)
		assert.Equal(t, []string{`4:5 items[0].prot: unknown field "prot" (did you mean "port"?)`}, got)
	})
}

func TestLocate(t *testing.T) {
	src := `title: demo
items:
  - name: a
    port: 80
    tags:
      - x
      - y
  -   name: b
  - {name: c}
`
	_, document, problems := decodeDoc(t, src)
	require.Empty(t, problems)
	cases := []struct {
		path         string
		line, column int
	}{
		{"title", 1, 8},
		{"items[0].port", 4, 11},
		{"items[0].tags[1]", 7, 9},
		{"items[0]", 3, 5},
		{"items[1]", 8, 7},
		{"items[2]", 9, 5},
		{"items[0].meta", 3, 5},        // missing: its parent item
		{"items[1].inner.ratio", 8, 7}, // missing, two levels deep
		{"items[7].name", 3, 3},        // no such item: the list
		{"nowhere", 1, 1},              // nothing matches: the top of the file
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s is located at %d:%d", c.path, c.line, c.column), func(t *testing.T) {
			line, column := document.Locate(c.path)
			assert.Equal(t, [2]int{c.line, c.column}, [2]int{line, column}, "got %d:%d; want %d:%d", line, column, c.line, c.column)
		})
	}
	t.Run("a nil document locates nothing", func(t *testing.T) {
		var nilDoc *Document
		line, column := nilDoc.Locate("title")
		assert.Equal(t, [2]int{0, 0}, [2]int{line, column})
	})
}

func TestSuggest(t *testing.T) {
	fields := structFields(reflect.TypeFor[item]())
	cases := []struct{ key, want string }{
		{"nmae", "name"},
		{"prot", "port"},
		{"Tags", "tags"},
		{"tag", "tags"},
		{"extras", "extra"},
		{"completely_else", ""},
		{"xyz", ""},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%q suggests %q", c.key, c.want), func(t *testing.T) {
			got := suggest(c.key, fields)
			assert.Equal(t, c.want, got, "got %q; want %q", got, c.want)
		})
	}
}

func TestDistance(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "abc", 0},
		{"", "abc", 3},
		{"abc", "", 3},
		{"kitten", "sitting", 3},
		{"timeout", "timout", 1},
		{"port", "prot", 2},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%q to %q is %d", c.a, c.b, c.want), func(t *testing.T) {
			got := distance(c.a, c.b)
			assert.Equal(t, c.want, got, "got %d; want %d", got, c.want)
			assert.Equal(t, got, distance(c.b, c.a), "got an asymmetric distance")
		})
	}
}

func TestFromYAMLErrorWithoutPosition(t *testing.T) {
	p := fromYAMLError(errors.New("plain failure"))
	assert.Equal(t, Problem{Message: "plain failure"}, p)
	assert.True(t, strings.Contains(p.Message, "plain"))
}
