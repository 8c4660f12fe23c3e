package yamlconf

import (
	"bytes"
	"encoding"
	"fmt"
	"reflect"
	"unicode/utf8"
)

// checkTree is check on the fast parser's tree: when the typed decoder
// gives up on a document the fast parser read, its problems (unknown
// fields, values of the wrong type) are found here rather than by parsing
// the document again with goccy/go-yaml, which costs many times the
// document's size in memory. The tree holds the same nodes as goccy/go-yaml's
// syntax tree, with the same types and text (a differential fuzz test holds
// them to it), so each rule of check reads the same here.
//
// exact is false when the tree cannot give check's answer for sure: a
// null key (which check names by goccy/go-yaml's rendering of the node),
// a position the tree does not know, or a tree whose positions are not
// goccy/go-yaml's (CRLF files). The caller then takes the reference path.
//
// A lenient check is always exact but for the tree's own limits: it names
// a null key "null", as goccy/go-yaml names one with no comment, and places
// a problem where the tree's node starts. Decode asks for it on a file too
// large for the reference path (see maxReferenceBytes), where an answer
// close to the reference is worth more than its cost.
func checkTree(t *tree, typ reflect.Type, lenient bool) (problems []Problem, exact bool) {
	if !t.located || t.root < 0 {
		return nil, false
	}
	c := treeChecker{t: t, exact: true, lenient: lenient}
	c.check(t.root, typ, "")
	if !c.exact {
		return nil, false
	}
	return c.problems, true
}

type treeChecker struct {
	t        *tree
	problems []Problem
	exact    bool
	lenient  bool
	// The line of the last problem: problems come in the order of the
	// source, so counting lines on from it keeps a file with a problem on
	// every line linear.
	lastOff, lastLine, lastLineStart int
}

// at records a problem at node n, as at does at a goccy/go-yaml node. It
// reports false when it could not, the tree not knowing where n is.
func (c *treeChecker) at(n int32, path, msg string) bool {
	off, shift, known := c.t.offset(n)
	if !known && !c.lenient {
		c.exact = false
		return false
	}
	p := Problem{Path: path, Message: msg}
	if off < c.lastOff || c.lastLine == 0 {
		c.lastOff, c.lastLine, c.lastLineStart = 0, 1, 0
	}
	src := c.t.src[c.lastOff:off]
	if nl := bytes.LastIndexByte(src, '\n'); nl >= 0 {
		c.lastLine += bytes.Count(src, []byte{'\n'})
		c.lastLineStart = c.lastOff + nl + 1
	}
	c.lastOff = off
	p.Line = c.lastLine
	p.Column = utf8.RuneCount(c.t.src[c.lastLineStart:off]) + 1 + shift
	c.problems = append(c.problems, p)
	return true
}

// scalar is scalar on a tree node: the text of any scalar but null.
func (c *treeChecker) scalar(n int32) (string, bool) {
	nd := &c.t.nodes[n]
	if !nd.kind.isScalar() || nd.kind == kindNull {
		return "", false
	}
	return string(c.t.text(nd)), true
}

// key is keyString on a tree key. A null key check names as goccy/go-yaml
// renders the node, which is not followed here.
func (c *treeChecker) key(k int32) (string, bool) {
	s, ok := c.scalar(k)
	if !ok && c.lenient && c.t.nodes[k].kind == kindNull {
		return "null", true
	}
	if !ok {
		c.exact = false
	}
	return s, ok
}

// check follows check in yamlconf.go rule by rule; keep the two in step.
func (c *treeChecker) check(n int32, t reflect.Type, path string) {
	if !c.exact {
		return
	}
	nd := &c.t.nodes[n]
	if nd.kind == kindNull {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		s, ok := c.scalar(n)
		if !ok {
			c.at(n, path, "must be a single value")
			return
		}
		if err := reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			c.at(n, path, err.Error())
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if nd.kind != kindMapping {
			c.at(n, path, "must be a mapping of field: value")
			return
		}
		fields := structFields(t)
		for k := c.t.first(n); k >= 0 && c.exact; k = c.t.nodes[c.t.nodes[k].next].next {
			key, ok := c.key(k)
			if !ok {
				return
			}
			f, ok := fields[key]
			if !ok {
				if c.at(k, join(path, key), "") {
					last := &c.problems[len(c.problems)-1]
					*last = unknownField(*last, path, key, fields)
				}
				continue
			}
			c.check(c.t.nodes[k].next, f, join(path, key))
		}
	case reflect.Map:
		if nd.kind != kindMapping {
			c.at(n, path, "must be a mapping")
			return
		}
		for k := c.t.first(n); k >= 0 && c.exact; k = c.t.nodes[c.t.nodes[k].next].next {
			key, ok := c.key(k)
			if !ok {
				return
			}
			c.check(c.t.nodes[k].next, t.Elem(), join(path, key))
		}
	case reflect.Slice:
		if nd.kind == kindMapping && oneOrList(t) {
			c.check(n, t.Elem(), path)
			return
		}
		if nd.kind != kindSequence {
			c.at(n, path, "must be a list")
			return
		}
		i := 0
		for item := c.t.first(n); item >= 0 && c.exact; item = c.t.nodes[item].next {
			c.check(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			i++
		}
	case reflect.String:
		if _, ok := c.scalar(n); !ok {
			c.at(n, path, "must be a string")
		}
	case reflect.Bool:
		if nd.kind != kindBool {
			c.at(n, path, "must be true or false")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if nd.kind != kindInt {
			c.at(n, path, "must be a whole number")
			return
		}
		if !intChecks(c.t.text(nd)) {
			c.at(n, path, "is out of range")
		}
	case reflect.Float32, reflect.Float64:
		if nd.kind != kindInt && nd.kind != kindFloat {
			c.at(n, path, "must be a number")
		}
	}
}
