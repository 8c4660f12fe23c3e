package yamlconf

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
)

// prepare is what Decode does before goccy/go-yaml reads data: it skips a
// byte-order mark, reads CRLF line ends as LF (normalize), and refuses
// what prescan refuses.
func prepare(data []byte) ([]byte, []Problem) {
	data = normalize(data)
	if p := prescan(data); p != nil {
		return data, []Problem{*p}
	}
	return data, nil
}

// DecodeOriginal is Decode as it was before its fast paths, kept as the
// reference Decode is held to: goccy/go-yaml parses, check finds the
// problems, then goccy/go-yaml parses again and decodes. The limits and
// the one-document rule apply before, as in Decode.
func DecodeOriginal(data []byte, v any) (*Document, []Problem) {
	data, problems := prepare(data)
	if problems != nil {
		return nil, problems
	}
	file, problems := parseGuarded(data)
	if problems != nil {
		return nil, problems
	}
	doc := &Document{src: data, file: file}
	for _, d := range file.Docs {
		if d.Body == nil {
			continue
		}
		check(d.Body, reflect.TypeOf(v).Elem(), "", &problems)
	}
	if len(problems) > 0 {
		return doc, problems
	}
	if err := yaml.UnmarshalWithOptions(data, v); err != nil {
		return doc, []Problem{fromYAMLError(err)}
	}
	return doc, nil
}

// DecodeChecked is Decode without the fast parser.
func DecodeChecked(data []byte, v any) (*Document, []Problem) {
	data, problems := prepare(data)
	if problems != nil {
		return nil, problems
	}
	return decodeChecked(data, v)
}

// Prescan is the check Decode makes before any parser reads data.
func Prescan(data []byte) []Problem {
	_, problems := prepare(data)
	return problems
}

// GuardTokens is the check of goccy/go-yaml's tokens of data, or nil when
// its scanner finds an error.
func GuardTokens(data []byte) []Problem {
	tokens := lexer.Tokenize(string(data))
	if tokens.InvalidToken() != nil {
		return nil
	}
	if p := guardTokens(tokens); p != nil {
		return []Problem{*p}
	}
	return nil
}

// FastTree returns the fast parser's tree as text, or false when the
// document is outside its subset.
func FastTree(data []byte) (string, bool) {
	t, ok := parseFast(data)
	if !ok {
		return "", false
	}
	return t.String(), true
}

// GoccyTree returns goccy/go-yaml's syntax tree of a one-document file as
// the same text, or false when it holds what a tree cannot.
func GoccyTree(data []byte) (string, bool, error) {
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		return "", false, err
	}
	switch len(file.Docs) {
	case 0:
		return "", true, nil
	case 1:
		t, ok := fromAST(data, file.Docs[0].Body)
		if !ok {
			return "", false, nil
		}
		return t.String(), true, nil
	}
	return "", false, nil
}

// DecodeFast decodes with the fast parser and typed decoder alone.
func DecodeFast(data []byte, v any) bool {
	t, ok := parseFast(data)
	return ok && decodeTree(t, v)
}

var kindNames = [...]string{"null", "bool", "int", "float", "inf", "nan", "str", "map", "seq"}

func (t *tree) String() string {
	if t.root < 0 {
		return ""
	}
	var b strings.Builder
	t.dump(&b, t.root)
	return b.String()
}

func (t *tree) dump(b *strings.Builder, n int32) {
	nd := &t.nodes[n]
	switch nd.kind {
	case kindNull:
		b.WriteString("null")
	case kindMapping, kindSequence:
		open, closer := "{", "}"
		if nd.kind == kindSequence {
			open, closer = "[", "]"
		}
		b.WriteString(open)
		count := 0
		for c := t.first(n); c >= 0; c = t.nodes[c].next {
			if count > 0 {
				if nd.kind == kindMapping && count%2 == 1 {
					b.WriteString(": ")
				} else {
					b.WriteString(", ")
				}
			}
			t.dump(b, c)
			count++
		}
		b.WriteString(closer)
		if want := nd.count(); (nd.kind == kindMapping && count != 2*want) || (nd.kind == kindSequence && count != want) {
			fmt.Fprintf(b, "(count %d)", want)
		}
	default:
		fmt.Fprintf(b, "%s%q", kindNames[nd.kind], t.text(nd))
	}
}

// LocatePaths returns paths to locate in a document the fast parser reads:
// every node's, and some that are not there (a key no mapping has, an
// index past a sequence's end, a step below a scalar), at most limit.
func LocatePaths(data []byte, limit int) ([]string, bool) {
	t, ok := parseFast(bytes.TrimPrefix(data, bom))
	if !ok || t.root < 0 {
		return nil, false
	}
	var paths []string
	var walk func(n int32, path string)
	walk = func(n int32, path string) {
		if len(paths) >= limit {
			return
		}
		if path != "" {
			paths = append(paths, path)
		}
		nd := &t.nodes[n]
		switch nd.kind {
		case kindMapping:
			for k := t.first(n); k >= 0; k = t.nodes[t.nodes[k].next].next {
				key := string(t.text(&t.nodes[k]))
				if path != "" {
					key = path + "." + key
				}
				walk(t.nodes[k].next, key)
			}
			if path != "" {
				paths = append(paths, path+".missing", path+"[0]")
			} else {
				paths = append(paths, "missing", "missing.x")
			}
		case kindSequence:
			i := 0
			for c := t.first(n); c >= 0; c = t.nodes[c].next {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
				i++
			}
			if path != "" {
				paths = append(paths, fmt.Sprintf("%s[%d]", path, i), path+".x")
			}
		default:
			if path != "" {
				paths = append(paths, path+".x", path+"[0]")
			}
		}
	}
	walk(t.root, "")
	return paths, true
}

// Located is where Locate places a path: on the fast parser's tree
// (FastOK false when it leaves the path to goccy/go-yaml) and on
// goccy/go-yaml's syntax tree.
type Located struct {
	Path                   string
	FastLine, FastColumn   int
	FastOK                 bool
	GoccyLine, GoccyColumn int
}

// LocateBoth places paths in data both ways, parsing data once each way.
// goccy/go-yaml places only the paths the tree places unless all is set.
func LocateBoth(data []byte, paths []string, all bool) []Located {
	data = bytes.TrimPrefix(data, bom)
	t, parsed := parseFast(data)
	d := &Document{src: data}
	out := make([]Located, len(paths))
	for i, path := range paths {
		l := Located{Path: path}
		if parsed {
			l.FastLine, l.FastColumn, l.FastOK = t.locate(path)
		}
		if l.FastOK || all {
			l.GoccyLine, l.GoccyColumn = d.locateSyntax(path)
		}
		out[i] = l
	}
	return out
}

// CheckTree is the check on the fast parser's tree of data, for a value
// of v's type; exact is false when the tree leaves it to goccy/go-yaml.
func CheckTree(data []byte, v any) (problems []Problem, exact bool) {
	t, ok := parseFast(bytes.TrimPrefix(data, bom))
	if !ok {
		return nil, false
	}
	return checkTree(t, reflect.TypeOf(v).Elem(), false)
}

// CheckTreeLenient is CheckTree as Decode runs it on a file too large for
// the reference path.
func CheckTreeLenient(data []byte, v any) (problems []Problem, exact bool) {
	t, ok := parseFast(normalize(data))
	if !ok {
		return nil, false
	}
	return checkTree(t, reflect.TypeOf(v).Elem(), true)
}
