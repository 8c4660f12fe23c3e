package yamlconf

import (
	"bytes"
	"math"
	"unicode/utf8"
)

// This file is a small strict parser for the YAML that configuration files
// are written in: block mappings and sequences, flow collections on one
// line ([GET, POST], {enabled: false}) or, at the root, on several (JSON),
// plain and quoted scalars on one line, comments and blank lines, LF or
// CRLF line ends. It is a fast path only: on anything else (anchors, tags,
// block scalars, multi-line scalars, flow collections on several lines in
// a block one, several documents, tabs, any syntax error, any doubt) it
// gives up and the caller parses the document with goccy/go-yaml, whose
// results and error messages stay the reference. A differential fuzz test
// holds the two to the same trees.

// line is one line of the source: [start, end) without its line feed;
// content is the first byte after the indentation.
type line struct {
	start, content, end int
}

func (l line) indent() int { return l.content - l.start }

type fastParser struct {
	src   []byte
	pos   int // start of the next line not yet consumed
	t     *tree
	depth int
	// path is the length of the path of the value being parsed, as
	// prescan counts it ("$", ".key" and "[12]").
	path int
}

// parseFast parses src into a tree, or reports false when src is outside
// the subset it handles.
//
// Decode runs it first, and prescan only on what it leaves, so it holds to
// prescan's limits (see limits.go) on its own: it leaves to the reference
// path, where prescan refuses them, nesting, block mappings' keys and runs
// of '<' past the limits as prescan counts them, paths past it counted as
// at least as long (a key's bytes for its characters), and tabs, document
// markers and files with no document, all of them.
func parseFast(src []byte) (t *tree, ok bool) {
	t, _ = parseFastStop(src)
	return t, t != nil
}

// parseFastStop is parseFast that says, when it gives up (a nil tree),
// where: the offset of the first byte it does not read (a control
// character, a run of '<', invalid UTF-8) or the start of the line it was
// reading. Decode names that line when a file too large for the reference
// path is outside the subset.
func parseFastStop(src []byte) (t *tree, stop int) {
	if len(src) >= math.MaxInt32 {
		return nil, 0
	}
	crlf := false
	for i, c := range src {
		if c < 0x20 && c != '\n' || c == 0x7f {
			if c == '\r' && i+1 < len(src) && src[i+1] == '\n' {
				crlf = true
				continue // a CRLF line end
			}
			return nil, i // tabs, lone CRs, other controls
		}
	}
	if i := lessRun(src); i >= 0 {
		return nil, i
	}
	if !utf8.Valid(src) {
		return nil, firstInvalid(src)
	}
	if bytes.HasPrefix(src, []byte("\xef\xbb\xbf")) {
		return nil, 0
	}
	// goccy/go-yaml counts the lines of a CRLF file in its own way, which
	// Locate leaves to it.
	p := &fastParser{src: src, t: &tree{src: src, root: -1, located: !crlf}, path: 1}
	// A key and a value per line, and a mapping every few lines: one
	// allocation for most documents.
	lines := bytes.Count(src, []byte{'\n'})
	p.t.nodes = make([]node, 0, 2*lines+lines/2+16)
	defer func() {
		if r := recover(); r != nil {
			if _, isBail := r.(bail); !isBail {
				panic(r)
			}
			t, stop = nil, min(p.pos, len(src))
		}
	}()
	if l, found := p.peek(); found {
		if c := p.src[l.content]; c == '[' || c == '{' {
			p.t.root = p.parseRootFlow(l.content) // JSON
		} else if p.isSeqEntry(l.content, l.end) {
			p.t.root = p.parseSequence(l.indent())
		} else {
			p.t.root = p.parseMapping(l.indent(), l.content, l.end)
		}
		if _, more := p.peek(); more {
			p.fail()
		}
	}
	return p.t, 0
}

// firstInvalid returns the offset of the first byte of src that is not
// part of valid UTF-8.
func firstInvalid(src []byte) int {
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRune(src[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(src)
}

func (p *fastParser) fail() { panic(bail{}) }

// link appends child to a collection's children.
func (p *fastParser) link(c *children, child int32) {
	if !p.t.append(c, child) {
		p.fail()
	}
}

// peek finds the next line with content, skipping blank and comment-only
// lines, and moves pos to its start.
func (p *fastParser) peek() (line, bool) {
	for p.pos < len(p.src) {
		start := p.pos
		end := len(p.src)
		if i := bytes.IndexByte(p.src[start:], '\n'); i >= 0 {
			end = start + i
			if end > start && p.src[end-1] == '\r' {
				end--
			}
		}
		content := start
		for content < end && p.src[content] == ' ' {
			content++
		}
		if content == end || p.src[content] == '#' {
			p.next(end)
			continue
		}
		if content == start && end-start >= 3 {
			if s := string(p.src[start : start+3]); s == "---" || s == "..." {
				p.fail() // document markers
			}
		}
		return line{start: start, content: content, end: end}, true
	}
	return line{}, false
}

// next consumes the line whose content ends at end, with its LF or CRLF.
func (p *fastParser) next(end int) {
	if end < len(p.src) && p.src[end] == '\r' {
		end++
	}
	p.pos = end + 1
}

func (p *fastParser) enter() {
	p.depth++
	if p.depth > maxDepth {
		p.fail()
	}
}

// pathTo sets the path of a value of the collection c whose path is base:
// under key, or, for -1, at the next index. Past maxPathLength it fails.
// A key counts its bytes, prescan its characters: the fast path leaves a
// path of many-byte characters to the reference path a little early.
func (p *fastParser) pathTo(c children, base int, key int32) {
	if key < 0 {
		p.path = base + 2 + digits(p.t.nodes[c.parent].count())
	} else {
		n := &p.t.nodes[key]
		p.path = base + 1 + int(n.end-n.start)
	}
	if p.path > maxPathLength {
		p.fail()
	}
}

func (p *fastParser) isSeqEntry(i, end int) bool {
	return p.src[i] == '-' && (i+1 == end || p.src[i+1] == ' ')
}

func (p *fastParser) skipSpaces(i, end int) int {
	for i < end && p.src[i] == ' ' {
		i++
	}
	return i
}

// restIsEmpty reports whether [i, end) holds nothing but spaces and a
// comment that a space separates from what came before i.
func (p *fastParser) restIsEmpty(i, end int) bool {
	j := p.skipSpaces(i, end)
	return j == end || (p.src[j] == '#' && j > i)
}

// parseSequence parses a block sequence whose entries are at indent n; pos
// is at the line of the first entry.
func (p *fastParser) parseSequence(n int) int32 {
	p.enter()
	c := p.t.open(kindSequence)
	base := p.path
	for {
		l, found := p.peek()
		if !found || l.indent() < n {
			break
		}
		if p.t.nodes[c.parent].end == 0 {
			// goccy/go-yaml places a block sequence at its first dash.
			p.t.nodes[c.parent].start = int32(l.content)
		}
		if l.indent() > n {
			p.fail()
		}
		if !p.isSeqEntry(l.content, l.end) {
			break // a key of a mapping at the same indent: the parent's
		}
		var item int32
		p.pathTo(c, base, -1)
		j := p.skipSpaces(l.content+1, l.end)
		switch {
		case j == l.end || p.src[j] == '#':
			p.next(l.end)
			item = p.parseNested(n, false, l.content)
		case p.isSeqEntry(j, l.end):
			p.fail() // "- - a"
		case p.isKey(j, l.end):
			item = p.parseMapping(j-l.start, j, l.end)
		default:
			item = p.parseValue(j, l.end)
			p.next(l.end)
			p.noDeeper(n)
		}
		p.link(&c, item)
		p.t.counted(c)
	}
	p.depth--
	p.path = base
	return c.parent
}

// parseMapping parses a block mapping whose keys are at indent n; the first
// key starts at i on the line that ends at end.
func (p *fastParser) parseMapping(n, i, end int) int32 {
	p.enter()
	c := p.t.open(kindMapping)
	// Locate places a block mapping at its first key, as position does.
	p.t.nodes[c.parent].start = int32(i)
	var keys keySet
	base := p.path
	for count := 1; ; count++ {
		if count > maxMappingKeys {
			p.fail()
		}
		key, after := p.parseKey(i, end)
		p.addKey(&keys, key)
		p.pathTo(c, base, key)
		var value int32
		j := p.skipSpaces(after, end)
		switch {
		case j == end || p.src[j] == '#':
			p.next(end)
			value = p.parseNested(n, true, after-1)
		case p.isSeqEntry(j, end):
			p.fail() // "key: - a"
		default:
			value = p.parseValue(j, end)
			p.next(end)
			p.noDeeper(n)
		}
		p.link(&c, key)
		p.link(&c, value)
		p.t.counted(c)

		l, found := p.peek()
		if !found || l.indent() < n {
			break
		}
		if l.indent() > n {
			p.fail()
		}
		if p.isSeqEntry(l.content, l.end) {
			break // not ours; the parent fails on it if it is not its own
		}
		i, end = l.content, l.end
	}
	p.depth--
	p.path = base
	return c.parent
}

// parseNested parses the value of a key or entry written on the following
// lines: a block collection indented deeper than n, a sequence at indent n
// when it is a mapping's value, or else null. indicator is the offset of
// the key's colon or the entry's dash.
func (p *fastParser) parseNested(n int, sameIndentSeq bool, indicator int) int32 {
	l, found := p.peek()
	switch {
	case found && l.indent() > n:
		if p.isSeqEntry(l.content, l.end) {
			return p.parseSequence(l.indent())
		}
		if !p.isKey(l.content, l.end) {
			p.fail() // a scalar on its own line
		}
		return p.parseMapping(l.indent(), l.content, l.end)
	case found && sameIndentSeq && l.indent() == n && p.isSeqEntry(l.content, l.end):
		return p.parseSequence(n)
	case found && !sameIndentSeq && l.indent() == n && !p.isSeqEntry(l.content, l.end):
		// An empty entry followed by a key at its dash's column: goccy/go-yaml
		// takes the key for the entry's value.
		p.fail()
	}
	if found {
		// goccy/go-yaml places the null that is not written right after
		// its indicator when more follows (at the end of the file one
		// column further, which Locate leaves to it): its text is empty,
		// and starts there.
		return p.t.add(kindNull, indicator+1, indicator+1, false)
	}
	return p.t.add(kindNull, 0, 0, false)
}

// noDeeper fails when the line after a value on one line is indented
// deeper than n: a multi-line scalar, or an error.
func (p *fastParser) noDeeper(n int) {
	if l, found := p.peek(); found && l.indent() > n {
		p.fail()
	}
}

// isKey reports whether a mapping key starts at i: a plain or quoted
// scalar followed by ": " or by ':' at the end of the line.
func (p *fastParser) isKey(i, end int) bool {
	switch p.src[i] {
	case '"', '\'':
		j, ok := p.quotedEnd(i, end)
		return ok && j < end && p.src[j] == ':'
	case '[', '{':
		return false
	}
	for j := i; j < end; j++ {
		switch p.src[j] {
		case ':':
			if j+1 == end || p.src[j+1] == ' ' {
				return true
			}
		case '#':
			if j > i && p.src[j-1] == ' ' {
				return false
			}
		}
	}
	return false
}

// parseKey parses the key at i and returns it with the position after its
// colon, which a space or the end of the line follows.
func (p *fastParser) parseKey(i, end int) (int32, int) {
	var key int32
	var colon int
	switch p.src[i] {
	case '"', '\'':
		k, j, ok := p.quoted(i, end)
		if !ok {
			p.fail()
		}
		key, colon = k, j
	default:
		if !plainStart(p.src, i, end) {
			p.fail()
		}
		colon = -1
		for j := i; j < end; j++ {
			if p.src[j] == ':' && (j+1 == end || p.src[j+1] == ' ') {
				colon = j
				break
			}
			if p.src[j] == '#' && p.src[j-1] == ' ' {
				p.fail()
			}
		}
		if colon < 0 || p.src[colon-1] == ' ' {
			p.fail()
		}
		key = p.t.add(classify(p.src[i:colon]), i, colon, false)
	}
	if colon >= end || p.src[colon] != ':' || (colon+1 < end && p.src[colon+1] != ' ') {
		p.fail()
	}
	p.checkKey(key)
	return key, colon + 1
}

// checkKey fails on keys that goccy/go-yaml reads in ways the fast path
// does not follow: a quote makes its key paths ambiguous, and so its
// duplicate-key check; "<<" followed by a colon is a merge key to its
// scanner even inside a longer key.
func (p *fastParser) checkKey(key int32) {
	kt := p.t.text(&p.t.nodes[key])
	if bytes.IndexByte(kt, '\'') >= 0 || bytes.Contains(kt, []byte("<<")) {
		p.fail()
	}
}

// keySet finds a key given twice in one mapping, which goccy/go-yaml
// refuses (comparing keys as text: 1 and "1" are the same key).
type keySet struct {
	few  [16]int32 // the keys so far, while there are few
	n    int
	seen map[string]struct{}
}

func (p *fastParser) addKey(ks *keySet, key int32) {
	kt := p.t.text(&p.t.nodes[key])
	if ks.seen != nil {
		if _, dup := ks.seen[string(kt)]; dup {
			p.fail()
		}
		ks.seen[string(kt)] = struct{}{}
		return
	}
	for _, k := range ks.few[:ks.n] {
		if bytes.Equal(p.t.text(&p.t.nodes[k]), kt) {
			p.fail()
		}
	}
	if ks.n < len(ks.few) {
		ks.few[ks.n] = key
		ks.n++
		return
	}
	ks.seen = make(map[string]struct{}, 2*len(ks.few))
	for _, k := range ks.few {
		ks.seen[string(p.t.text(&p.t.nodes[k]))] = struct{}{}
	}
	ks.seen[string(kt)] = struct{}{}
}

// parseValue parses the value that starts at i and fills the rest of its
// line (but for a comment).
func (p *fastParser) parseValue(i, end int) int32 {
	switch p.src[i] {
	case '"', '\'':
		v, j, ok := p.quoted(i, end)
		if !ok || !p.restIsEmpty(j, end) || (j < end && p.src[j] == '#') {
			p.fail()
		}
		return v
	case '[', '{':
		v, j := p.parseFlow(i, end, 0)
		if !p.restIsEmpty(j, end) || (j < end && p.src[j] == '#') {
			p.fail()
		}
		return v
	}
	if !plainStart(p.src, i, end) {
		p.fail()
	}
	j := i
	stop := end
	for ; j < end; j++ {
		c := p.src[j]
		if c == ':' && (j+1 == end || p.src[j+1] == ' ') {
			p.fail() // "key: a: b"
		}
		if c == '#' && p.src[j-1] == ' ' {
			stop = j
			break
		}
	}
	for stop > i && p.src[stop-1] == ' ' {
		stop--
	}
	return p.t.add(classify(p.src[i:stop]), i, stop, false)
}

// escapes are the one-character escapes of a double-quoted scalar, as
// goccy/go-yaml's scanner reads them.
var escapes = map[byte]rune{
	'0': 0x00, 'a': 0x07, 'b': 0x08, 't': 0x09, 'n': 0x0A, 'v': 0x0B, 'f': 0x0C, 'r': 0x0D, 'e': 0x1B,
	' ': 0x20, '"': 0x22, '/': 0x2F, '\\': 0x5C, 'N': 0x85, '_': 0xA0, 'L': 0x2028, 'P': 0x2029,
}
