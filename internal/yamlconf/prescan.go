package yamlconf

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// bom is the UTF-8 byte-order mark some editors start files with. Decode
// skips it: positions are then counted as an editor shows them.
var bom = []byte("\xef\xbb\xbf")

// normalize prepares a file as Decode reads it: without a byte-order mark,
// with CRLF line ends read as LF, as YAML 1.2 (5.4) asks of a parser, and,
// in a JSON document, with tabs read as spaces. Lines and columns stay
// where they were. A CRLF file, or JSON indented with tabs (as
// json.MarshalIndent with "\t" writes it), is then read by the fast parser
// and its checks as any other, rather than by goccy/go-yaml at many times
// its size, which Decode refuses past 64 KiB. In valid JSON every tab is
// whitespace between tokens (a string cannot hold a raw one), so the
// value is unchanged. It copies data only when there is something to
// replace.
func normalize(data []byte) []byte {
	data = bytes.TrimPrefix(data, bom)
	if bytes.Contains(data, []byte("\r\n")) {
		data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	}
	if bytes.IndexByte(data, '\t') >= 0 && isJSONCollection(data) {
		data = bytes.ReplaceAll(data, []byte("\t"), []byte(" "))
	}
	return data
}

// isJSONCollection reports whether data is a JSON object or array.
func isJSONCollection(data []byte) bool {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	return len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') && json.Valid(data)
}

// prescan refuses, before goccy/go-yaml reads src, a file that crosses a
// limit (see limits.go) or that is not exactly one document. It reads src
// once, in time linear in its size and memory of the
// nesting depth (and of the anchors' names), and returns the first limit
// it crosses, or nil.
//
// It follows goccy/go-yaml's scanner (v1.19) where it decides what is
// structure and what is text: a quote starts a quoted scalar, a '#' a
// comment, a '|' or '>' a block scalar, a '[' or '{' a flow collection,
// where its scanner does, and a block scalar ends where its does. Where it
// cannot be sure, it takes the reading that counts more structure: a
// config with nothing odd in it reads the same either way, and an odd file
// is at worst refused. goccy/go-yaml's own tokens are checked again before
// its parser runs (guardTokens).
func prescan(src []byte) *Problem {
	if p := scanTraps(src); p != nil {
		return p
	}
	l := textReader{src: src, line: 1, col: 1, first: true}
	l.run()
	if l.t.problem == nil {
		l.t.end()
	}
	return l.t.problem
}

// scanTraps refuses the runs that cost goccy/go-yaml's scanner time that
// grows with the square of their length, anywhere in src (it finds them in
// quoted scalars and comments too, so that nothing it reads as text can
// hide one): a run of '<', and a line of many tabs.
func scanTraps(src []byte) *Problem {
	if i := lessRun(src); i >= 0 {
		return problemAt(src, i, msgLessRun)
	}
	lineEnd, tabs := -1, 0
	for i := 0; ; {
		j := bytes.IndexByte(src[i:], '\t')
		if j < 0 {
			break
		}
		i += j
		if i > lineEnd {
			tabs = 0
			lineEnd = len(src)
			if k := bytes.IndexByte(src[i:], '\n'); k >= 0 {
				lineEnd = i + k
			}
		}
		if tabs++; tabs > maxLineTabs {
			return problemAt(src, i, msgLineTabs)
		}
		i++
	}
	return nil
}

// lessRun returns where the first run of more than maxLessRun '<' starts,
// or -1.
func lessRun(src []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(src[i:], '<')
		if j < 0 {
			return -1
		}
		start := i + j
		end := start
		for end < len(src) && src[end] == '<' {
			end++
		}
		if end-start > maxLessRun {
			return start
		}
		i = end
	}
}

// problemAt locates msg at offset i of src, which starts on line 1.
func problemAt(src []byte, i int, msg string) *Problem {
	lineStart := bytes.LastIndexByte(src[:i], '\n') + 1
	return &Problem{
		Line:    bytes.Count(src[:lineStart], []byte{'\n'}) + 1,
		Column:  utf8.RuneCount(src[lineStart:i]) + 1,
		Message: msg,
	}
}

// textReader is prescan's reader: goccy/go-yaml's scanner state that decides
// what is structure, without its tokens.
type textReader struct {
	src []byte
	i   int
	// line and col are where src[i] is, as goccy/go-yaml counts: a column
	// a character (a tab it reads as indentation counts none).
	line, col int
	// first says src[i] is on a line before its first character that is
	// not a space or a tab; indent counts the spaces before it.
	first  bool
	indent int
	// lastDelim is the column of the last key, '-' or '?', at and before
	// which a line ends the plain scalar or block scalar being read.
	lastDelim int
	// up and down say the first character of the line is to the right of
	// lastDelim, or not.
	up, down bool
	// goccy/go-yaml's counts of open flow sequences and mappings: they can
	// go below zero ("]" with nothing open), and flow is only while one is
	// above.
	flowSeq, flowMap int
	// buf says plain text is being read: a plain scalar, or an anchor's or
	// an alias's name. It starts at bufStart (bufAt), and its last byte
	// that is not a space ends at bufEnd.
	buf              bool
	bufAt            pos
	bufStart, bufEnd int
	// anchorName and aliasName are goccy's isAnchor and isAlias: a space
	// ends the text, and a ':' is text.
	anchorName, aliasName bool
	// naming is '&' or '*' until the name of an anchor or alias is read:
	// the next plain text. markAt is where the '&' or '*' is.
	naming byte
	markAt pos
	// pend is a scalar read but not yet known to be a key or a value: a
	// quoted scalar, a merge key or an alias, until the next token.
	pend pending
	// lastColon says the last token was a mapping's ':' (in a flow
	// mapping, a second ':' is text).
	lastColon bool
	block     blockScalar
	t         tracker
}

// pending is a scalar whose role its next token decides.
type pending struct {
	ok    bool
	at    pos
	runes int
	// count says the scalar is a node to count (an alias was counted as
	// the nodes it adds); quoted that it is a quoted scalar, whose column
	// a ':' after it makes the last key's.
	count, quoted bool
}

// blockScalar is a literal or folded block scalar being read, or a plain
// scalar goccy/go-yaml reads as one (a line of a multi-line plain scalar
// that starts with '-').
type blockScalar struct {
	active bool
	// threshold is the column at or before which a line's first character
	// ends the scalar; indentCol the column of its content (0 until its
	// first line with content, or explicit).
	threshold, indentCol int
	// plain says the scalar is buf, a plain scalar to emit when it ends.
	plain bool
}

// at is where src[i] is.
func (l *textReader) at() pos { return pos{l.line, l.col} }

// advance moves past n bytes of one line, counting characters as
// goccy/go-yaml does (an invalid byte is one).
func (l *textReader) advance(n int) {
	l.col += utf8.RuneCount(l.src[l.i : l.i+n])
	l.i += n
}

// newline moves past the line end at i (LF, CRLF or a lone CR).
func (l *textReader) newline() {
	if l.src[l.i] == '\r' && l.i+1 < len(l.src) && l.src[l.i+1] == '\n' {
		l.i++
	}
	l.i++
	l.line++
	l.col = 1
	l.indent = 0
	l.first = true
	l.anchorName, l.aliasName = false, false
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (l *textReader) inFlow() bool { return l.flowSeq > 0 || l.flowMap > 0 }

// peek returns the byte n after i, or 0 past the end.
func (l *textReader) peek(n int) byte {
	if l.i+n < len(l.src) {
		return l.src[l.i+n]
	}
	return 0
}

// settle gives the pending scalar its role of a value: a token follows it
// that is not its ':'.
func (l *textReader) settle() {
	if l.pend.ok {
		if l.pend.count {
			l.t.scalar(l.pend.at)
		}
		l.pend = pending{}
	}
}

// flush ends the plain text being read, as goccy/go-yaml's
// addBufferedTokenIfExists: a scalar value, an anchor's name, or an
// alias's (which can still be a key: it stays pending).
func (l *textReader) flush() {
	if !l.buf {
		return
	}
	l.buf = false
	l.lastColon = false
	switch {
	case l.naming == '&':
		l.t.anchorAt(l.markAt, l.name())
	case l.naming == '*':
		l.t.alias(l.markAt, l.name())
		l.pend = pending{ok: true, at: l.markAt}
	default:
		l.t.scalar(l.bufAt)
	}
	l.naming = 0
}

// name is the text read as an anchor's or alias's name: goccy/go-yaml
// leaves out the tabs it reads as indentation.
func (l *textReader) name() string {
	name := l.src[l.bufStart:l.i]
	if bytes.IndexByte(name, '\t') >= 0 {
		name = bytes.ReplaceAll(name, []byte{'\t'}, nil)
	}
	return string(name)
}

// startToken is the start of a token other than a ':': what was pending
// was a value.
func (l *textReader) startToken() {
	l.flush()
	l.settle()
	l.lastColon = false
	l.naming = 0
}

// plainSpecial is what can end or change plain text in block context;
// flowSpecial adds what does in a flow collection.
var plainSpecial, flowSpecial [256]bool

func init() {
	for _, c := range []byte("\n\r\t:#<") {
		plainSpecial[c] = true
		flowSpecial[c] = true
	}
	for _, c := range []byte(",[]{}") {
		flowSpecial[c] = true
	}
}

func (l *textReader) run() {
	for l.i < len(l.src) && l.t.problem == nil {
		if l.block.active && l.first && l.blockLine() {
			continue
		}
		c := l.src[l.i]
		if l.first {
			switch c {
			case ' ':
				l.indent++
				l.col++
				l.i++
				continue
			case '\n', '\r':
				l.newline()
				continue
			case '\t':
			default:
				l.first = false
				l.up, l.down = false, false
				if l.lastDelim != 0 {
					l.up = l.lastDelim < l.col
					l.down = !l.up
				}
				if l.down {
					l.flush()
				}
			}
		} else {
			l.up, l.down = false, false
		}
		l.char(c)
	}
	l.flush()
	l.settle()
}

// char reads the token at i, whose first byte is c, as goccy/go-yaml's
// scan does: whitespace and line ends, flow indicators, document markers
// and entries, the other indicators, and else text.
func (l *textReader) char(c byte) {
	if l.space(c) || l.flowIndicator(c) || l.marker(c) || l.indicator(c) {
		return
	}
	// Text: it starts or continues plain text.
	if !l.buf {
		l.settle()
		l.startBuf()
	}
	l.text()
}

// space reads a line end, a space or a tab; false when a tab is text.
func (l *textReader) space(c byte) bool {
	switch c {
	case '\n', '\r':
		if l.anchorName || l.aliasName {
			l.flush()
		}
		l.newline()
		return true
	case ' ':
		if l.anchorName || l.aliasName {
			// An anchor with no name before the space is named by the
			// token after it, as goccy/go-yaml groups tokens: naming stays.
			l.flush()
			l.anchorName, l.aliasName = false, false
		}
		l.col++
		l.i++
		return true
	case '\t':
		// goccy/go-yaml takes a tab for indentation, without a column, in
		// these cases; anywhere else it is text (that does not start plain
		// text), or an error.
		if (l.buf && l.lastDelim == 0) || l.lastDelim < l.col {
			l.indent++
			l.i++
			return true
		}
		if !l.buf {
			l.col++
			l.i++
			return true
		}
	}
	return false
}

// flowIndicator reads '{', '[', '}', ']' and ',' where they are structure.
func (l *textReader) flowIndicator(c byte) bool {
	switch c {
	case '{', '[':
		if !l.buf || l.inFlow() {
			l.startToken()
			if c == '{' {
				l.flowMap++
			} else {
				l.flowSeq++
			}
			l.t.flowOpen(l.at(), c == '[')
			l.col++
			l.i++
			return true
		}
	case '}':
		if l.flowMap > 0 {
			l.closeFlow(&l.flowMap)
			return true
		}
	case ']':
		if !l.buf || l.flowSeq > 0 {
			l.closeFlow(&l.flowSeq)
			return true
		}
	case ',':
		if l.inFlow() {
			l.startToken()
			l.t.flowEntry()
			l.col++
			l.i++
			return true
		}
	}
	return false
}

// marker reads a document marker (--- or ...) and a block sequence's entry
// (and a '-' that turns the rest of a plain scalar into a block scalar).
func (l *textReader) marker(c byte) bool {
	switch c {
	case '.':
		if l.indent == 0 && l.col == 1 && l.run3('.') {
			l.startToken()
			l.t.docEnd()
			l.col += 3
			l.i += 3
			return true
		}
	case '-':
		if l.indent == 0 && l.col == 1 && l.run3('-') && (l.i+3 == len(l.src) || isBlank(l.src[l.i+3])) {
			l.startToken()
			l.t.docStart(l.at())
			l.lastDelim = 0
			l.col += 3
			l.i += 3
			return true
		}
		if l.buf && l.up {
			// A '-' that starts a line of a plain scalar makes the rest of
			// the scalar a block scalar to goccy/go-yaml.
			l.block = blockScalar{active: true, threshold: l.col - 1, indentCol: l.col, plain: true}
			l.lastDelim = l.col - 1
			l.skipLine()
			return true
		}
		if !l.buf {
			if nc := l.peek(1); nc == 0 || isBlank(nc) {
				l.startToken()
				l.lastDelim = l.col
				l.t.entry(l.at())
				l.col++
				l.i++
				return true
			}
		}
	}
	return false
}

// indicator reads ':', "<<", block scalar headers, tags, directives,
// explicit keys, anchors and aliases, comments and quoted scalars where
// they are structure.
func (l *textReader) indicator(c byte) bool {
	switch c {
	case ':':
		if l.colon() {
			return true
		}
	case '<':
		if l.mergeKey() {
			return true
		}
	case '|', '>':
		if !l.buf && l.blockHeader() {
			return true
		}
	case '!':
		if !l.buf {
			l.startToken()
			l.tag()
			return true
		}
	case '%':
		if !l.buf && l.indent == 0 {
			// A directive: goccy/go-yaml's parser takes all of its line for
			// the directive's values (or for an error), none for content.
			l.startToken()
			l.skipLine()
			return true
		}
	case '?':
		if !l.buf {
			if nc := l.peek(1); nc == ' ' || nc == '\t' {
				l.startToken()
				l.lastDelim = l.col
				// A key of a block mapping; its text follows.
				l.t.key(l.at(), 0)
				l.col++
				l.i++
				return true
			}
		}
	case '&', '*':
		if !l.buf {
			l.startToken()
			l.anchorName, l.aliasName = c == '&', c == '*'
			l.naming = c
			l.markAt = l.at()
			l.col++
			l.i++
			return true
		}
	case '#':
		if !l.buf || isBlank(l.src[l.i-1]) {
			l.flush()
			l.lastColon = false
			l.skipLine()
			return true
		}
	case '\'', '"':
		if !l.buf {
			l.startToken()
			at := l.at()
			runes := l.quoted(c)
			l.pend = pending{ok: true, at: at, runes: runes, count: true, quoted: true}
			return true
		}
	}
	return false
}

// run3 says src[i:] starts with exactly three c.
func (l *textReader) run3(c byte) bool {
	return l.peek(0) == c && l.peek(1) == c && l.peek(2) == c && l.peek(3) != c
}

func (l *textReader) closeFlow(count *int) {
	l.startToken()
	*count--
	l.t.flowClose()
	l.col++
	l.i++
}

// docMarker says a "---" or "..." that goccy/go-yaml takes for a document
// marker starts at i, at the start of a line.
func (l *textReader) docMarker() bool {
	rest := l.src[l.i:]
	if len(rest) < 3 || (string(rest[:3]) != "---" && string(rest[:3]) != "...") {
		return false
	}
	return len(rest) == 3 || isBlank(rest[3])
}
