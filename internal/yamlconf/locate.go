package yamlconf

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// Locating a path on the fast parser's tree gives what Locate gives with
// goccy/go-yaml's syntax tree, without parsing the document again: a large
// file that decodes but fails validation would otherwise be parsed by
// goccy/go-yaml, at several times its size in memory, only to place the
// errors. The tree answers only when it can be certain of goccy/go-yaml's
// answer (its path syntax, its key matching, the token it places a node
// at); else Locate asks goccy/go-yaml. A differential test holds the two
// to the same answers.

// segment is one step of a path: a key, or an index when key is empty.
type segment struct {
	key   string
	index int
}

// splitPath splits a path such as "endpoints[2].url" into its steps, or
// reports false for one whose reading by goccy/go-yaml's PathString is
// not plainly the same: special characters in keys (quotes, '$', '*',
// brackets), empty keys, indexes that are not a few digits.
func splitPath(path string) ([]segment, bool) {
	if path == "" || path[0] == '[' || path[0] == '.' {
		return nil, false // not a path from the root Locate may ask for
	}
	var segs []segment
	i := 0
	for i < len(path) {
		switch {
		case path[i] == '[':
			j := i + 1
			for j < len(path) && path[j] >= '0' && path[j] <= '9' {
				j++
			}
			if j == i+1 || j-i-1 > 9 || j >= len(path) || path[j] != ']' {
				return nil, false
			}
			n, err := strconv.Atoi(path[i+1 : j])
			if err != nil {
				return nil, false
			}
			segs = append(segs, segment{index: n})
			i = j + 1
		case path[i] == '.' || i == 0:
			if path[i] == '.' {
				i++
			}
			j := i
			for j < len(path) && path[j] != '.' && path[j] != '[' {
				switch path[j] {
				case ']', '$', '*', '\'':
					return nil, false
				}
				j++
			}
			if j == i {
				return nil, false
			}
			segs = append(segs, segment{key: path[i:j], index: -1})
			i = j
		default:
			return nil, false
		}
	}
	return segs, true
}

// locate is Document.Locate on the tree. ok is false when the tree cannot
// tell goccy/go-yaml's answer for sure.
func (t *tree) locate(path string) (line, column int, ok bool) {
	if !t.located || t.root < 0 {
		return 0, 0, false
	}
	segs, ok := splitPath(path)
	if !ok {
		return 0, 0, false
	}
	// Like Locate, try the path, then its ancestors but for the root.
	for k := len(segs); k >= 1; k-- {
		n, found, sure := t.resolve(segs[:k])
		if !sure {
			return 0, 0, false
		}
		if !found {
			continue
		}
		off, shift, known := t.offset(n)
		if !known {
			return 0, 0, false
		}
		line, column = t.lineColumn(off)
		return line, column + shift, true
	}
	return 1, 1, true
}

// resolve follows segs from the root as goccy/go-yaml's path filter does.
// sure is false when the keys compared include one that the filter reads
// in ways not followed here (its text starts with a quote, which it would
// try to unquote).
func (t *tree) resolve(segs []segment) (n int32, found, sure bool) {
	n = t.root
	for _, s := range segs {
		nd := &t.nodes[n]
		if s.index >= 0 {
			if nd.kind != kindSequence || s.index >= nd.count() {
				return -1, false, true
			}
			c := t.first(n)
			for i := 0; i < s.index; i++ {
				c = t.nodes[c].next
			}
			n = c
			continue
		}
		if nd.kind != kindMapping {
			return -1, false, true
		}
		next := int32(-1)
		for k := t.first(n); k >= 0; k = t.nodes[t.nodes[k].next].next {
			kt := t.text(&t.nodes[k])
			if len(kt) > 0 && (kt[0] == '"' || kt[0] == '\'') {
				return -1, false, false
			}
			if string(kt) == s.key {
				next = t.nodes[k].next
				break
			}
		}
		if next < 0 {
			return -1, false, true
		}
		n = next
	}
	return n, true, true
}

// offset returns where in the source goccy/go-yaml places node n, as
// position does: a block mapping at its first key, a block sequence at its
// first dash, a flow collection at its bracket, a quoted scalar at its
// opening quote and a plain one where it starts. shift is what
// goccy/go-yaml adds to the column: a plain scalar that spaces follow to
// the end of its line it places as many columns to the right (its scanner
// counts back from the line end by the scalar's length without them).
// known is false for a null that is not written (the value of "key:")
// at the end of the file, and a scalar the tree does not place.
func (t *tree) offset(n int32) (off, shift int, known bool) {
	nd := &t.nodes[n]
	switch {
	case !nd.kind.isScalar():
		return int(nd.start), 0, true
	case nd.extra:
		pos, ok := t.at[n]
		return int(pos), 0, ok
	case nd.start == nd.end && nd.kind == kindNull:
		// A null not written is placed right after its indicator, but
		// for one that nothing follows (see parseNested).
		return int(nd.start), 0, nd.start > 0
	case nd.kind == kindString && nd.start > 0 && (t.src[nd.start-1] == '"' || t.src[nd.start-1] == '\''):
		// No plain scalar follows a quote in what the fast parser reads,
		// so a string after one is quoted.
		return int(nd.start) - 1, 0, true
	}
	j := int(nd.end)
	for j < len(t.src) && t.src[j] == ' ' {
		j++
	}
	if j < len(t.src) && t.src[j] == '\n' {
		shift = j - int(nd.end)
	}
	return int(nd.start), shift, true
}

// lineColumn converts a source offset into goccy/go-yaml's 1-based line
// and column, which counts characters, not bytes.
func (t *tree) lineColumn(off int) (line, column int) {
	before := t.src[:off]
	lineStart := bytes.LastIndexByte(before, '\n') + 1
	return bytes.Count(before, []byte{'\n'}) + 1, utf8.RuneCount(before[lineStart:]) + 1
}
