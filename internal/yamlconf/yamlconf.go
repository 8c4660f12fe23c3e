// Package yamlconf decodes YAML configuration strictly and reports every
// problem with its line and column: unknown fields (with a suggestion when a
// known field is one typo away) and values of the wrong type are collected
// in one pass over the document, before anything is decoded, so a user fixes
// a file in one round instead of one error at a time.
package yamlconf

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Problem is one error located in the source.
type Problem struct {
	// Path is the field path without the leading "$.", such as
	// "endpoints[2].timeout".
	Path string
	// Line and Column are 1-based; 0 when unknown.
	Line, Column int
	Message      string
	// Unknown says the problem is a field the type does not have, which
	// leaves the decoded value as it would be without the field.
	Unknown bool
	// Meant is, for an unknown field one typo away from a known one, the
	// path of that known field ("endpoints[0].name" for "nmae"): a problem
	// later found with it (a required field missing) follows from the typo.
	Meant string
}

// Document is a parsed YAML file that can locate field paths.
type Document struct {
	once sync.Once
	src  []byte
	file *ast.File
	// fast is the fast parser's tree of the document, when it decoded it:
	// Locate places paths on it rather than have goccy/go-yaml parse the
	// document just for that.
	fast *tree
}

// syntax returns the goccy/go-yaml syntax tree, parsing the source on
// first use when the fast path decoded the document without it.
func (d *Document) syntax() *ast.File {
	d.once.Do(func() {
		if d.file == nil {
			if f, err := parser.ParseBytes(d.src, 0); err == nil {
				d.file = f
			}
		}
	})
	return d.file
}

// Decode parses data, checks it against v's type and, when no problem was
// found, decodes it into v (a pointer to a struct with yaml tags). The
// Document reads data again to locate paths: data must not change while
// it is in use.
//
// Most configuration files take a fast path: a strict parser for the YAML
// (and JSON) they are written in and a typed decoder that follows
// goccy/go-yaml's rules. Anything else, and every document with a problem,
// takes the reference path (goccy/go-yaml's parser, the check, and its
// decoder), so values and error messages are the same either way; but
// for unknown fields and values of the wrong type in a document the fast
// parser reads, which the check finds on its tree (see checkTree).
//
// Either way, a file must hold one YAML document (after a UTF-8
// byte-order mark, which is skipped), within limits on what it costs to
// read (nesting, aliases, mapping size, path length: see limits.go), or it
// is refused with one problem where it crosses the line, and no Document:
// whatever the input, Decode takes time and memory linear in its size.
// The fast path holds to the limits itself; the rest is checked (prescan)
// before goccy/go-yaml reads it, and a file over 64 KiB that the fast
// parser does not read is refused at the line where it stopped: the
// reference path costs more per MiB than the bound Decode keeps (see
// maxReferenceBytes).
func Decode(data []byte, v any) (*Document, []Problem) {
	data = normalize(data)
	t, stop := parseFastStop(data)
	if t != nil && t.root >= 0 {
		if decodeTree(t, v) {
			return &Document{src: data, fast: t}, nil
		}
		// The typed decoder gives up on every problem: when the check
		// finds them on the tree, they are what the reference path would
		// report, found without parsing the document again. Without one
		// (what the typed decoder does not follow, or a problem only
		// goccy/go-yaml's decoder reports), or when the tree cannot be
		// sure, the reference path decides; but for a file too large for
		// it, whose problems the check gives as near as it can.
		if problems, exact := checkTree(t, reflect.TypeOf(v).Elem(), len(data) > maxReferenceBytes); exact && len(problems) > 0 {
			return &Document{src: data, fast: t}, problems
		}
	}
	if p := prescan(data); p != nil {
		return nil, []Problem{*p}
	}
	if t == nil && len(data) > maxReferenceBytes {
		return nil, []Problem{*problemAt(data, stop, msgReference)}
	}
	return decodeChecked(data, v)
}

// decodeChecked is the reference path: goccy/go-yaml parses, check finds
// the problems, and the document is decoded from the syntax tree. data has
// been prepared.
func decodeChecked(data []byte, v any) (*Document, []Problem) {
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
	// Decode from the tree just parsed rather than have goccy/go-yaml parse
	// the document again, unless the tree holds what only it decodes.
	if len(file.Docs) == 1 {
		if t, ok := fromAST(data, file.Docs[0].Body); ok && decodeTree(t, v) {
			return doc, nil
		}
	}
	// goccy/go-yaml's decoder reads the tree already parsed, rather than
	// parse the source again (Unmarshal): its scanner is most of its time
	// and of its peak heap, and a valid 4 MiB file with anchors took 3.6 s
	// scanned twice. NodeToValue registers the anchors before it decodes,
	// as Unmarshal does while parsing; the differential fuzz tests hold
	// the two to the same results. Where NodeToValue fails, Unmarshal
	// decides: resolving anchors ahead refuses some documents Unmarshal
	// reads ("&0 ! ", an anchored empty value with the non-specific tag),
	// and a second parse on that path alone costs nothing on valid files.
	if len(file.Docs) == 1 && file.Docs[0].Body != nil {
		dst := reflect.ValueOf(v).Elem()
		before := reflect.New(dst.Type()).Elem()
		before.Set(dst)
		if err := yaml.NodeToValue(file.Docs[0].Body, v); err == nil {
			return doc, nil
		}
		dst.Set(before) // undo what NodeToValue set before it failed
	}
	if err := yaml.UnmarshalWithOptions(data, v); err != nil {
		return doc, []Problem{fromYAMLError(err)}
	}
	return doc, nil
}

// Locate returns the position of the node at path ("endpoints[2].url"),
// or of its nearest existing ancestor (a missing required field is reported
// where its parent is). On a document the fast parser read, it finds the
// path on that parser's tree when it can be sure of goccy/go-yaml's answer
// (see locate.go), and only else parses the document with goccy/go-yaml.
func (d *Document) Locate(path string) (line, column int) {
	if d == nil {
		return 0, 0
	}
	if d.fast != nil {
		if line, column, ok := d.fast.locate(path); ok {
			return line, column
		}
	}
	return d.locateSyntax(path)
}

// NullKey reports whether the document is a mapping whose key holds null
// (written as ~, null, or nothing at all), as decoding it into a
// map[string]any would give; false when the key is missing or holds
// anything else. It reads the tree Decode parsed, so it costs no second
// parse.
func (d *Document) NullKey(key string) bool {
	if d == nil {
		return false
	}
	if t := d.fast; t != nil {
		if t.root < 0 || t.nodes[t.root].kind != kindMapping {
			return false
		}
		for k := t.first(t.root); k >= 0; k = t.nodes[t.nodes[k].next].next {
			if kn := &t.nodes[k]; kn.kind == kindString && string(t.text(kn)) == key {
				return t.nodes[kn.next].kind == kindNull
			}
		}
		return false
	}
	file := d.syntax()
	if file == nil || len(file.Docs) != 1 {
		return false
	}
	pairs, ok := mappingPairs(file.Docs[0].Body)
	if !ok {
		return false
	}
	for _, kv := range pairs {
		if _, merge := kv.Key.(*ast.MergeKeyNode); !merge && keyString(kv.Key) == key {
			_, null := withoutProperties(kv.Value).(*ast.NullNode)
			return null
		}
	}
	return false
}

// locateSyntax is Locate with goccy/go-yaml's syntax tree.
func (d *Document) locateSyntax(path string) (line, column int) {
	file := d.syntax()
	if file == nil {
		return 1, 1
	}
	for path != "" {
		if p, err := yaml.PathString("$." + path); err == nil {
			if n, err := p.FilterFile(file); err == nil && n != nil {
				if line, column := position(n); line > 0 {
					return line, column
				}
			}
		}
		i := strings.LastIndexAny(path, ".[")
		if i <= 0 {
			break
		}
		path = path[:i]
	}
	return 1, 1
}

type yamlError interface {
	GetToken() *token.Token
	GetMessage() string
}

func fromYAMLError(err error) Problem {
	var ye yamlError
	if errors.As(err, &ye) {
		p := Problem{Message: ye.GetMessage()}
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			p.Line, p.Column = tk.Position.Line, tk.Position.Column
		}
		return p
	}
	return Problem{Message: err.Error()}
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

func at(n ast.Node, path, msg string) Problem {
	p := Problem{Path: path, Message: msg}
	p.Line, p.Column = position(n)
	return p
}

// position returns where n starts. A block mapping's token is the ':' of
// its first pair, so it is located at its first key instead: the column a
// user reads as the start of the mapping.
func position(n ast.Node) (line, column int) {
	switch v := n.(type) {
	case *ast.MappingNode:
		if !v.IsFlowStyle && len(v.Values) > 0 && v.Values[0].Key != nil {
			n = v.Values[0].Key
		}
	case *ast.MappingValueNode:
		if !v.IsFlowStyle && v.Key != nil {
			n = v.Key
		}
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line, tk.Position.Column
	}
	return 0, 0
}

// withoutProperties returns the node that n's anchors and tags are on.
func withoutProperties(n ast.Node) ast.Node {
	for {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		default:
			return n
		}
	}
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// check walks n alongside t and records unknown fields and type mismatches.
func check(n ast.Node, t reflect.Type, path string, problems *[]Problem) {
	n = withoutProperties(n)
	switch n.(type) {
	case *ast.AliasNode:
		return // checked where the anchor is
	case *ast.CommentGroupNode:
		return
	}
	if n == nil {
		return
	}
	if _, ok := n.(*ast.NullNode); ok {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		s, ok := scalar(n)
		if !ok {
			*problems = append(*problems, at(n, path, "must be a single value"))
			return
		}
		if err := reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			*problems = append(*problems, at(n, path, err.Error()))
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		pairs, ok := mappingPairs(n)
		if !ok {
			*problems = append(*problems, at(n, path, "must be a mapping of field: value"))
			return
		}
		fields := structFields(t)
		for _, kv := range pairs {
			if _, merge := kv.Key.(*ast.MergeKeyNode); merge {
				continue
			}
			key := keyString(kv.Key)
			f, ok := fields[key]
			if !ok {
				*problems = append(*problems, unknownField(at(kv.Key, join(path, key), ""), path, key, fields))
				continue
			}
			check(kv.Value, f, join(path, key), problems)
		}
	case reflect.Map:
		pairs, ok := mappingPairs(n)
		if !ok {
			*problems = append(*problems, at(n, path, "must be a mapping"))
			return
		}
		for _, kv := range pairs {
			check(kv.Value, t.Elem(), join(path, keyString(kv.Key)), problems)
		}
	case reflect.Slice:
		seq, ok := n.(*ast.SequenceNode)
		if !ok && oneOrList(t) {
			if _, mapping := n.(*ast.MappingNode); mapping {
				check(n, t.Elem(), path, problems)
				return
			}
		}
		if !ok {
			*problems = append(*problems, at(n, path, "must be a list"))
			return
		}
		for i, item := range seq.Values {
			check(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), problems)
		}
	case reflect.String:
		if _, ok := scalar(n); !ok {
			*problems = append(*problems, at(n, path, "must be a string"))
		}
	case reflect.Bool:
		if _, ok := n.(*ast.BoolNode); !ok {
			*problems = append(*problems, at(n, path, "must be true or false"))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		s, ok := n.(*ast.IntegerNode)
		if !ok {
			*problems = append(*problems, at(n, path, "must be a whole number"))
			return
		}
		if _, err := strconv.ParseInt(strings.ReplaceAll(s.GetToken().Value, "_", ""), 0, 64); err != nil {
			*problems = append(*problems, at(n, path, "is out of range"))
		}
	case reflect.Float32, reflect.Float64:
		switch n.(type) {
		case *ast.IntegerNode, *ast.FloatNode:
		default:
			*problems = append(*problems, at(n, path, "must be a number"))
		}
	}
}

// keyString returns a mapping key as written, without the quotes of a
// quoted key ("endpoints" in JSON).
func keyString(k ast.MapKeyNode) string {
	if s, ok := scalar(k); ok {
		return s
	}
	return k.String()
}

// scalar returns a scalar node's text.
func scalar(n ast.Node) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		return v.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return v.GetToken().Value, true
	}
	return "", false
}

func mappingPairs(n ast.Node) ([]*ast.MappingValueNode, bool) {
	switch v := n.(type) {
	case *ast.MappingNode:
		return v.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{v}, true
	}
	return nil, false
}

// structFields maps yaml names to field types, following embedded structs.
func structFields(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && (name == "" || strings.Contains(opts, "inline")) {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range structFields(ft) {
					out[k] = v
				}
				continue
			}
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// unknownField completes p, the problem of the unknown field key of the
// struct at path, with its message and the field it was likely meant to be.
func unknownField(p Problem, path, key string, fields map[string]reflect.Type) Problem {
	p.Message, p.Unknown = fmt.Sprintf("unknown field %q", key), true
	if s := suggest(key, fields); s != "" {
		p.Message += fmt.Sprintf(" (did you mean %q?)", s)
		p.Meant = join(path, s)
	}
	return p
}

// suggest returns the known field closest to key when it is a likely typo.
func suggest(key string, fields map[string]reflect.Type) string {
	best, bestDist := "", 3
	for name := range fields {
		if d := distance(strings.ToLower(key), name); d < bestDist || (d == bestDist && best != "" && name < best) {
			best, bestDist = name, d
		}
	}
	if bestDist > 2 {
		return ""
	}
	return best
}

// distance is the Levenshtein distance.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
