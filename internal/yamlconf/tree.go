package yamlconf

import (
	"fmt"
	"math"
	"strconv"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// kind is what a tree node holds. Scalars carry the type goccy/go-yaml
// gives them (its YAML 1.2 core schema: null, bool, int, float, .inf, .nan,
// else string); quoted scalars are always strings.
type kind uint8

const (
	kindNull kind = iota
	kindBool
	kindInt
	kindFloat
	kindInf
	kindNaN
	kindString
	kindMapping
	kindSequence
)

func (k kind) isScalar() bool { return k < kindMapping }

// node is one value of a tree. All nodes of a document live in one slice
// and refer to each other by index, so that a large document costs a few
// allocations instead of several per value. A collection's children follow
// it in the slice: the first right after it, each next one after the
// previous one's descendants. A mapping's children alternate key and value.
type node struct {
	kind kind
	// extra says the text is in tree.extra rather than in the source.
	extra bool
	// start and end delimit a scalar's text: its value for strings, the
	// text as written for other scalars ("0x1F", "TRUE", "~"). A
	// collection keeps its number of items or pairs in end and, in a tree
	// of the fast parser, in start the offset of the source where
	// goccy/go-yaml places it (see locate.go).
	start, end int32
	// next is the next sibling, -1 for the last.
	next int32
}

// count is a collection's number of items, or of pairs for a mapping.
func (n *node) count() int { return int(n.end) }

// first returns the first child of the collection n, or -1.
func (t *tree) first(n int32) int32 {
	if t.nodes[n].end == 0 {
		return -1
	}
	return n + 1
}

// maxDepth bounds the nesting the fast paths follow; deeper documents
// are left to goccy/go-yaml.
const maxDepth = 64

// bail is the panic value with which the fast paths give up.
type bail struct{}

// tree is a parsed document: a mapping, a sequence or a scalar at root,
// or nothing (root -1) when the document is empty.
type tree struct {
	src   []byte
	extra []byte
	nodes []node
	root  int32
	// located says the tree is the fast parser's, whose nodes say where
	// they are in src (see locate.go); a tree converted from goccy/go-yaml's
	// does not, nor does a tree of a file with CRLF line ends.
	located bool
	// at holds the source offsets of the scalars whose text is in extra
	// (quoted scalars with escapes), which their start cannot give.
	at map[int32]int32
}

func (t *tree) text(n *node) []byte {
	if n.extra {
		return t.extra[n.start:n.end]
	}
	return t.src[n.start:n.end]
}

// add appends a childless node and returns its index.
func (t *tree) add(k kind, start, end int, extra bool) int32 {
	t.nodes = append(t.nodes, node{kind: k, extra: extra, start: int32(start), end: int32(end), next: -1})
	return int32(len(t.nodes) - 1)
}

// addExtra appends a scalar whose text is not in the source.
func (t *tree) addExtra(k kind, text string) int32 {
	start := len(t.extra)
	t.extra = append(t.extra, text...)
	return t.add(k, start, len(t.extra), true)
}

// addAt is addExtra for a scalar written at offset pos of the source.
func (t *tree) addAt(k kind, text string, pos int) int32 {
	n := t.addExtra(k, text)
	if t.at == nil {
		t.at = make(map[int32]int32)
	}
	t.at[n] = int32(pos)
	return n
}

// children accumulates the child list of a collection node.
type children struct {
	parent, last int32
}

func (t *tree) open(k kind) children {
	return children{parent: t.add(k, 0, 0, false), last: -1}
}

// append links child, created after the previous child's descendants, as
// the next child. It reports false if the child is not where first and
// next expect it: a broken tree, which the callers give up on.
func (t *tree) append(c *children, child int32) bool {
	if c.last < 0 {
		if child != c.parent+1 {
			return false
		}
	} else {
		t.nodes[c.last].next = child
	}
	c.last = child
	return true
}

// counted adds an item, or a pair, to a collection's count.
func (t *tree) counted(c children) { t.nodes[c.parent].end++ }

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// intValue returns an int scalar's value as goccy/go-yaml decodes it: a
// uint64 when it is not negative, else an int64 (signed; v holds its
// bits). ok is false when the text is not an integer.
func intValue(b []byte) (v uint64, signed, ok bool) {
	if len(b) > 0 && b[0] >= '1' && b[0] <= '9' && len(b) <= 18 && allDigits(b) {
		for _, c := range b {
			v = v*10 + uint64(c-'0')
		}
		return v, false, true
	}
	if num := token.ToNumber(string(b)); num != nil {
		switch x := num.Value.(type) {
		case uint64:
			return x, false, true
		case int64:
			return uint64(x), true, true
		}
	}
	return 0, false, false
}

// intAny is intValue as goccy/go-yaml's nodeToValue returns it.
func intAny(b []byte) any {
	v, signed, ok := intValue(b)
	switch {
	case !ok:
		return nil
	case signed:
		return int64(v)
	}
	return v
}

// intChecks reports whether an int scalar fits an int64 as written, the
// rule the type check applies before decoding.
func intChecks(b []byte) bool {
	if len(b) > 0 && b[0] >= '1' && b[0] <= '9' && len(b) <= 18 && allDigits(b) {
		return true
	}
	s := string(b)
	clean := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '_' {
			clean = append(clean, s[i])
		}
	}
	_, err := strconv.ParseInt(string(clean), 0, 64)
	return err == nil
}

// floatValue returns a float scalar's value (0 when it does not parse, as
// goccy/go-yaml's FloatNode).
func floatValue(b []byte) float64 {
	if num := token.ToNumber(string(b)); num != nil && num.Type == token.NumberTypeFloat {
		if f, ok := num.Value.(float64); ok {
			return f
		}
	}
	return 0
}

func infValue(b []byte) float64 {
	if len(b) > 0 && b[0] == '-' {
		return math.Inf(-1)
	}
	return math.Inf(1)
}

func boolValue(b []byte) bool {
	v, _ := strconv.ParseBool(string(b))
	return v
}

// scalarValue is goccy/go-yaml's nodeToValue for a scalar.
func (t *tree) scalarValue(n *node) any {
	b := t.text(n)
	switch n.kind {
	case kindBool:
		return boolValue(b)
	case kindInt:
		return intAny(b)
	case kindFloat:
		return floatValue(b)
	case kindInf:
		return infValue(b)
	case kindNaN:
		return math.NaN()
	case kindString:
		return string(b)
	}
	return nil
}

// scalarString is the string goccy/go-yaml stores in a string-kinded
// value for a non-null scalar: the text of a string, and the decoded value
// of others re-formatted (0x10 is "16", 1.50 is "1.5", TRUE is "true").
func (t *tree) scalarString(n *node) string {
	b := t.text(n)
	switch n.kind {
	case kindString:
		return string(b)
	case kindBool:
		return strconv.FormatBool(boolValue(b))
	case kindInt:
		v, signed, ok := intValue(b)
		switch {
		case !ok:
			return ""
		case signed:
			return strconv.FormatInt(int64(v), 10)
		}
		return strconv.FormatUint(v, 10)
	case kindFloat:
		return fmt.Sprint(floatValue(b))
	case kindInf:
		return fmt.Sprint(infValue(b))
	case kindNaN:
		return fmt.Sprint(math.NaN())
	}
	return ""
}

// fromAST converts a goccy/go-yaml document body into a tree. It reports
// false for what the typed decoder leaves to goccy/go-yaml: aliases (an
// anchor alone is read through), merge keys, tags, explicit keys and
// collections as keys.
func fromAST(src []byte, body ast.Node) (*tree, bool) {
	t := &tree{src: src, root: -1}
	if body == nil {
		return t, true
	}
	if _, ok := body.(*ast.CommentGroupNode); ok {
		return t, true
	}
	root, ok := t.convert(body, 0)
	if !ok {
		return nil, false
	}
	t.root = root
	return t, true
}

func (t *tree) convert(n ast.Node, depth int) (int32, bool) {
	if depth > maxDepth {
		return -1, false
	}
	switch v := n.(type) {
	case *ast.NullNode:
		return t.addExtra(kindNull, v.GetToken().Value), true
	case *ast.BoolNode:
		return t.addExtra(kindBool, v.GetToken().Value), true
	case *ast.IntegerNode:
		return t.addExtra(kindInt, v.GetToken().Value), true
	case *ast.FloatNode:
		return t.addExtra(kindFloat, v.GetToken().Value), true
	case *ast.InfinityNode:
		return t.addExtra(kindInf, v.GetToken().Value), true
	case *ast.NanNode:
		return t.addExtra(kindNaN, v.GetToken().Value), true
	case *ast.StringNode:
		return t.addExtra(kindString, v.Value), true
	case *ast.LiteralNode:
		return t.addExtra(kindString, v.Value.Value), true
	case *ast.AnchorNode:
		// An anchor changes nothing of its value but for a null, which
		// goccy/go-yaml's decoder no longer reads as null under an anchor
		// (a pointer field then gets a value); else only its aliases do,
		// and a tree holds none (an alias gives up below), so a document
		// with anchors and no alias is decoded from the tree too.
		if _, null := v.Value.(*ast.NullNode); null || v.Value == nil {
			return -1, false
		}
		return t.convert(v.Value, depth)
	case *ast.SequenceNode:
		c := t.open(kindSequence)
		for _, item := range v.Values {
			child, ok := t.convert(item, depth+1)
			if !ok || !t.append(&c, child) {
				return -1, false
			}
			t.counted(c)
		}
		return c.parent, true
	case *ast.MappingNode:
		c := t.open(kindMapping)
		for _, kv := range v.Values {
			if !t.convertPair(&c, kv, depth) {
				return -1, false
			}
		}
		return c.parent, true
	case *ast.MappingValueNode:
		c := t.open(kindMapping)
		if !t.convertPair(&c, v, depth) {
			return -1, false
		}
		return c.parent, true
	}
	return -1, false
}

func (t *tree) convertPair(c *children, kv *ast.MappingValueNode, depth int) bool {
	if kv.Key == nil || kv.Value == nil {
		return false
	}
	switch kv.Key.(type) {
	case *ast.NullNode, *ast.BoolNode, *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode, *ast.StringNode:
	default:
		return false
	}
	key, ok := t.convert(kv.Key, depth+1)
	if !ok || !t.append(c, key) {
		return false
	}
	value, ok := t.convert(kv.Value, depth+1)
	if !ok || !t.append(c, value) {
		return false
	}
	t.counted(*c)
	return true
}
