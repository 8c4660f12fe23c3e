package yamlconf

import (
	"fmt"
	"reflect"
	"strings"
)

// This file lets a caller validate what did decode of a document with
// problems, so that a file with an unknown field and a bad url reports
// both at once rather than the url only after the field is fixed.

// Salvage decodes into v, a pointer to a zero value of the type the
// problems were found against, the document without the values they are
// at: a field that is unknown or does not decode is left out (its zero
// value), and a list item that does not decode is decoded as null, so that
// the items after it keep their index and the paths of their problems. It
// reports false, leaving v alone, when that cannot be done: a problem
// without a path (a syntax error, a limit), a document that was not parsed,
// or one the typed decoder leaves to goccy/go-yaml (aliases, merge keys,
// tags). It costs time linear in the document's size, as Decode does.
func (d *Document) Salvage(problems []Problem, v any) bool {
	if d == nil {
		return false
	}
	t := d.fast
	if t == nil {
		file := d.syntax()
		if file == nil || len(file.Docs) != 1 {
			return false
		}
		var ok bool
		if t, ok = fromAST(d.src, file.Docs[0].Body); !ok {
			return false
		}
	}
	cut := make(map[string]bool, len(problems))
	under := make(map[string]bool)
	for _, p := range problems {
		if p.Path == "" {
			return false // the whole document is at fault
		}
		cut[p.Path] = true
		for i := len(p.Path) - 1; i > 0; i-- {
			if c := p.Path[i]; c == '.' || c == '[' {
				under[p.Path[:i]] = true
			}
		}
	}
	if t.root < 0 || cut[""] {
		return false
	}
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || rv.Kind() != reflect.Pointer || rv.IsNil() {
		return false
	}
	p := pruner{from: t, to: &tree{src: t.src, extra: t.extra[:len(t.extra):len(t.extra)], nodes: make([]node, 0, len(t.nodes)), root: -1}, cut: cut, under: under}
	root, ok := p.copy(t.root, "", true, 0)
	if !ok {
		return false
	}
	p.to.root = root
	fresh := reflect.New(rv.Elem().Type())
	if !decodeTree(p.to, fresh.Interface()) {
		return false
	}
	rv.Elem().Set(fresh.Elem())
	return true
}

// pruner copies a tree but for the values at the paths in cut.
type pruner struct {
	from, to *tree
	cut      map[string]bool
	// under holds every path that has a cut path below it: the copy builds
	// the paths of a subtree only where one of them leads.
	under map[string]bool
}

// copy appends to p.to a copy of node n of p.from, at path when search
// says a cut path may lie below it.
func (p *pruner) copy(n int32, path string, search bool, depth int) (int32, bool) {
	if depth > maxDepth {
		return -1, false
	}
	nd := p.from.nodes[n]
	search = search && (path == "" || p.under[path])
	switch nd.kind {
	case kindMapping:
		c := p.to.open(kindMapping)
		for k := p.from.first(n); k >= 0; k = p.from.nodes[p.from.nodes[k].next].next {
			var child string
			if search {
				kn := &p.from.nodes[k]
				if !kn.kind.isScalar() {
					return -1, false
				}
				child = join(path, keyText(p.from, kn))
				if p.cut[child] {
					continue
				}
			}
			key, ok := p.copy(k, "", false, depth+1)
			if !ok || !p.to.append(&c, key) {
				return -1, false
			}
			value, ok := p.copy(p.from.nodes[k].next, child, search, depth+1)
			if !ok || !p.to.append(&c, value) {
				return -1, false
			}
			p.to.counted(c)
		}
		return c.parent, true
	case kindSequence:
		c := p.to.open(kindSequence)
		i := 0
		for item := p.from.first(n); item >= 0; item = p.from.nodes[item].next {
			var child string
			if search {
				child = fmt.Sprintf("%s[%d]", path, i)
			}
			i++
			var copied int32
			ok := true
			if search && p.cut[child] {
				copied = p.to.add(kindNull, 0, 0, false)
			} else {
				copied, ok = p.copy(item, child, search, depth+1)
			}
			if !ok || !p.to.append(&c, copied) {
				return -1, false
			}
			p.to.counted(c)
		}
		return c.parent, true
	}
	nd.next = -1
	p.to.nodes = append(p.to.nodes, nd)
	return int32(len(p.to.nodes) - 1), true
}

// keyText is a mapping key as the checks name it in a path.
func keyText(t *tree, k *node) string {
	if k.kind == kindNull {
		return "null"
	}
	return string(t.text(k))
}

// Covers returns whether a problem found in the value Salvage decoded, at
// the field path given, follows from one of the problems Salvage was given
// rather than being a problem of its own: it is at or under a value that
// did not decode ("endpoints[0].name" is required when the name was a
// list), or at or under the known field an unknown one was likely meant to
// be ("endpoints[0].name" when "nmae" was written). Such a problem would
// only repeat, in other words, what the decoding problem already says.
func Covers(problems []Problem) func(path string) bool {
	roots := make(map[string]bool, len(problems))
	for _, p := range problems {
		switch {
		case p.Unknown && p.Meant != "":
			roots[p.Meant] = true
		case !p.Unknown:
			roots[p.Path] = true
		}
	}
	return func(path string) bool {
		for {
			if roots[path] {
				return true
			}
			i := strings.LastIndexAny(path, ".[")
			if i <= 0 {
				return false
			}
			path = path[:i]
		}
	}
}
