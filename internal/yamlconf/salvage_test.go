package yamlconf

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSalvage(t *testing.T) {
	// Given a document with an unknown field, values of the wrong type
	// and a list item that is not a mapping, beside values that decode
	src := `titel: x
count: 7
items:
  - name: [not, a, string]
    port: 80
    tags: [a, b]
  - oops
  - nmae: c
    port: 9
    inner:
      level: medium
      ratio: 0.5
`
	for _, form := range []struct{ name, src string }{
		{"fast parser", src},
		// An anchor with no alias is left to goccy/go-yaml's parser by the
		// fast one, then converted: the reference path's tree salvages too.
		{"reference parser", "title: &t x\n" + src[len("titel: x\n"):] + "bogus: 1\n"},
	} {
		t.Run("what decodes of a document with problems is kept: "+form.name, func(t *testing.T) {
			var d doc
			document, problems := Decode([]byte(form.src), &d)
			require.NotEmpty(t, problems)
			require.NotNil(t, document)

			// When
			var got doc
			require.True(t, document.Salvage(problems, &got), "got no salvage of %q", problemLines(problems))

			// Then every value with a problem is left out and the rest kept,
			// the items after a broken one keeping their index.
			assert.Equal(t, uint8(7), got.Count)
			require.Len(t, got.Items, 3)
			assert.Equal(t, item{Port: 80, Tags: []string{"a", "b"}}, got.Items[0])
			assert.Equal(t, item{}, got.Items[1], "a list item that did not decode is its zero value")
			assert.Equal(t, 9, got.Items[2].Port)
			require.NotNil(t, got.Items[2].Inner)
			assert.Equal(t, inner{Ratio: 0.5}, *got.Items[2].Inner)
		})
	}
	t.Run("a problem of the whole document salvages nothing", func(t *testing.T) {
		var d doc
		document, problems := Decode([]byte("[1, 2]\n"), &d)
		require.Len(t, problems, 1)
		got := doc{Title: "untouched"}
		assert.False(t, document.Salvage(problems, &got))
		assert.Equal(t, "untouched", got.Title, "got %q; want the target left alone", got.Title)
	})
	t.Run("a document that did not parse salvages nothing", func(t *testing.T) {
		var d doc
		document, problems := Decode([]byte("items: [x\n"), &d)
		require.NotEmpty(t, problems)
		assert.False(t, document.Salvage(problems, &d))
	})
}

func TestCovers(t *testing.T) {
	var d doc
	_, problems := Decode([]byte("items:\n  - name: [x]\n    inner: {levle: low}\n  - nmae: b\n    bogus: 1\n"), &d)
	require.Len(t, problems, 4, "got %q", problemLines(problems))
	covers := Covers(problems)
	for path, want := range map[string]bool{
		"items[0].name":        true,  // did not decode
		"items[0].name[0]":     true,  // under what did not decode
		"items[1].name":        true,  // what "nmae" was meant to be
		"items[0].inner.level": true,  // what "levle" was meant to be
		"items[0].port":        false, // decoded
		"items[1].bogus":       false, // unknown, without a likely meaning
		"items[1]":             false, // a parent of a problem is no follow-on of it
		"items":                false,
	} {
		assert.Equal(t, want, covers(path), "covers(%q)", path)
	}
}
