package yamlconf

import (
	"bytes"
	"unicode/utf8"
)

// bom is the UTF-8 byte-order mark some editors start files with. Decode
// skips it: positions are then counted as an editor shows them.
var bom = []byte("\xef\xbb\xbf")

// normalize prepares a file as Decode reads it: without a byte-order mark,
// and with CRLF line ends read as LF, as YAML 1.2 (5.4) asks of a parser.
// Lines stay where an editor shows them. A CRLF file is then read by the
// fast parser and its checks as an LF one is (its positions otherwise
// differ from goccy/go-yaml's), rather than by goccy/go-yaml at many times
// its size. It copies data only when there is a CRLF to replace.
func normalize(data []byte) []byte {
	data = bytes.TrimPrefix(data, bom)
	if bytes.Contains(data, []byte("\r\n")) {
		data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	}
	return data
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
// scan does.
func (l *textReader) char(c byte) {
	switch c {
	case '\n', '\r':
		if l.anchorName || l.aliasName {
			l.flush()
		}
		l.newline()
		return
	case ' ':
		if l.anchorName || l.aliasName {
			// An anchor with no name before the space is named by the
			// token after it, as goccy/go-yaml groups tokens: naming stays.
			l.flush()
			l.anchorName, l.aliasName = false, false
		}
		l.col++
		l.i++
		return
	case '\t':
		// goccy/go-yaml takes a tab for indentation, without a column, in
		// these cases; anywhere else it is text (that does not start plain
		// text), or an error.
		if (l.buf && l.lastDelim == 0) || l.lastDelim < l.col {
			l.indent++
			l.i++
			return
		}
		if !l.buf {
			l.col++
			l.i++
			return
		}
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
			return
		}
	case '}':
		if l.flowMap > 0 {
			l.closeFlow(&l.flowMap)
			return
		}
	case ']':
		if !l.buf || l.flowSeq > 0 {
			l.closeFlow(&l.flowSeq)
			return
		}
	case ',':
		if l.inFlow() {
			l.startToken()
			l.t.flowEntry()
			l.col++
			l.i++
			return
		}
	case '.':
		if l.indent == 0 && l.col == 1 && l.run3('.') {
			l.startToken()
			l.t.docEnd()
			l.col += 3
			l.i += 3
			return
		}
	case '-':
		if l.indent == 0 && l.col == 1 && l.run3('-') && (l.i+3 == len(l.src) || isBlank(l.src[l.i+3])) {
			l.startToken()
			l.t.docStart(l.at())
			l.lastDelim = 0
			l.col += 3
			l.i += 3
			return
		}
		if l.buf && l.up {
			// A '-' that starts a line of a plain scalar makes the rest of
			// the scalar a block scalar to goccy/go-yaml.
			l.block = blockScalar{active: true, threshold: l.col - 1, indentCol: l.col, plain: true}
			l.lastDelim = l.col - 1
			l.skipLine()
			return
		}
		if !l.buf {
			if nc := l.peek(1); nc == 0 || isBlank(nc) {
				l.startToken()
				l.lastDelim = l.col
				l.t.entry(l.at())
				l.col++
				l.i++
				return
			}
		}
	case ':':
		if l.colon() {
			return
		}
	case '<':
		if l.mergeKey() {
			return
		}
	case '|', '>':
		if !l.buf && l.blockHeader() {
			return
		}
	case '!':
		if !l.buf {
			l.startToken()
			l.tag()
			return
		}
	case '%':
		if !l.buf && l.indent == 0 {
			// A directive: goccy/go-yaml's parser takes all of its line for
			// the directive's values (or for an error), none for content.
			l.startToken()
			l.skipLine()
			return
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
				return
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
			return
		}
	case '#':
		if !l.buf || isBlank(l.src[l.i-1]) {
			l.flush()
			l.lastColon = false
			l.skipLine()
			return
		}
	case '\'', '"':
		if !l.buf {
			l.startToken()
			at := l.at()
			runes := l.quoted(c)
			l.pend = pending{ok: true, at: at, runes: runes, count: true, quoted: true}
			return
		}
	}
	// Text: it starts or continues plain text.
	if !l.buf {
		l.settle()
		l.startBuf()
	}
	l.text()
}

// startBuf starts plain text at i.
func (l *textReader) startBuf() {
	l.buf = true
	l.bufAt = l.at()
	l.bufStart, l.bufEnd = l.i, l.i
}

// text reads plain text from i: its first character, then up to the next
// byte that can end or change it (names end at a space: they are read a
// character at a time).
func (l *textReader) text() {
	start := l.i
	_, size := utf8.DecodeRune(l.src[l.i:])
	l.i += size
	if !l.anchorName && !l.aliasName {
		special := &plainSpecial
		if l.inFlow() {
			special = &flowSpecial
		}
		for l.i < len(l.src) && !special[l.src[l.i]] {
			l.i++
		}
	}
	l.col += utf8.RuneCount(l.src[start:l.i])
	end := l.i
	for end > start && (l.src[end-1] == ' ' || l.src[end-1] == '\t') {
		end--
	}
	if end > start {
		l.bufEnd = end
	}
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

// colon reads a ':' that is a mapping's, as goccy/go-yaml's scanMapDelim
// decides, and reports whether it was one.
func (l *textReader) colon() bool {
	if l.anchorName || l.aliasName {
		return false
	}
	nc := l.peek(1)
	if l.flowMap <= 0 && nc != ' ' && nc != '\t' && nc != '\n' && nc != '\r' && l.i+1 < len(l.src)-1 {
		return false
	}
	if l.flowMap > 0 && (nc == '/' || l.lastColon) {
		return false
	}
	var at pos
	var runes int
	switch {
	case l.buf:
		at, runes = l.bufAt, utf8.RuneCount(l.src[l.bufStart:l.bufEnd])
		l.lastDelim = at.column
		l.buf = false
	case l.pend.ok:
		at, runes = l.pend.at, l.pend.runes
		if l.pend.quoted {
			l.lastDelim = at.column
		}
		l.pend = pending{}
	default:
		at = l.at()
	}
	l.t.key(at, runes)
	l.naming = 0
	l.lastColon = true
	l.col++
	l.i++
	return true
}

// mergeKey reads a "<<" merge key, as goccy/go-yaml's isMergeKey decides:
// two '<', spaces, and a ':' a space or a line end follows.
func (l *textReader) mergeKey() bool {
	if l.peek(1) != '<' || l.peek(2) == '<' {
		return false
	}
	j := l.i + 2
	for j < len(l.src) && l.src[j] == ' ' {
		j++
	}
	if j+1 >= len(l.src) || l.src[j] != ':' || (l.src[j+1] != ' ' && l.src[j+1] != '\n' && l.src[j+1] != '\r') {
		return false
	}
	// goccy/go-yaml drops plain text before it.
	l.buf = false
	l.settle()
	l.lastDelim = l.col
	l.pend = pending{ok: true, at: l.at(), runes: 2, count: true}
	l.col += 2
	l.i += 2
	return true
}

// tag skips a tag, as goccy/go-yaml's scanTag: up to a space, a line end,
// or a ',' in a flow collection; '{' and '}' end it in an error, which is
// read as text here.
func (l *textReader) tag() {
	j := l.i + 1
	for ; j < len(l.src); j++ {
		switch l.src[j] {
		case ' ':
			l.advance(j + 1 - l.i)
			return
		case '\n', '\r':
			l.advance(j - l.i)
			return
		case ',':
			if l.inFlow() {
				l.advance(j - l.i)
				return
			}
		case '{', '}':
			l.advance(j - l.i)
			return
		}
	}
	l.advance(j - l.i)
}

// skipLine moves to the end of the line (a comment, or a line of a block
// scalar).
func (l *textReader) skipLine() {
	j := len(l.src)
	if k := bytes.IndexAny(l.src[l.i:], "\r\n"); k >= 0 {
		j = l.i + k
	}
	l.advance(j - l.i)
}

// blockHeader reads a block scalar's header ('|' or '>', indicators, and a
// comment), as goccy/go-yaml's scanMultiLineHeader, and reports whether
// it was one. A header it refuses is read as text here.
func (l *textReader) blockHeader() bool {
	end := len(l.src)
	if k := bytes.IndexAny(l.src[l.i+1:], "\r\n"); k >= 0 {
		end = l.i + 1 + k
	}
	opt := bytes.TrimRight(l.src[l.i+1:end], " ")
	if k := bytes.IndexByte(opt, '#'); k > 0 {
		opt = opt[:k]
	}
	opt = bytes.TrimRight(opt, " \t")
	indent, ok := blockIndicators(opt)
	if !ok {
		return false
	}
	l.startToken()
	if l.col == 1 {
		l.lastDelim = 1
	}
	l.t.scalar(l.at())
	l.block = blockScalar{active: true, threshold: l.lastDelim}
	if indent > 0 {
		l.block.indentCol = l.lastDelim + indent
	}
	l.advance(end - l.i)
	return true
}

// blockIndicators reads a block scalar header's indicators as goccy/go-yaml
// accepts them: a chomping '+' or '-' and an indentation digit 1-9, either
// way round, or none.
func blockIndicators(opt []byte) (indent int, ok bool) {
	s := string(opt)
	for _, sign := range []byte("-+") {
		if len(s) > 0 && s[0] == sign {
			s = s[1:]
		}
	}
	for _, sign := range []byte("-+") {
		if len(s) > 0 && s[len(s)-1] == sign {
			s = s[:len(s)-1]
		}
	}
	switch {
	case s == "":
		return 0, true
	case len(s) == 1 && s[0] >= '1' && s[0] <= '9':
		return int(s[0] - '0'), true
	}
	return 0, false
}

// blockLine reads a line of the block scalar being read, at its start, and
// reports whether it was the scalar's. A line whose first character is at
// or before the threshold, or that starts with a document marker, ends the
// scalar and is read as usual.
func (l *textReader) blockLine() bool {
	j := l.i
	col := 1
	for j < len(l.src) && (l.src[j] == ' ' || l.src[j] == '\t') {
		j++
		col++
	}
	if j == len(l.src) || l.src[j] == '\n' || l.src[j] == '\r' {
		l.i = j
		l.col = col
		if j < len(l.src) {
			l.newline()
		}
		return true
	}
	if col <= l.block.threshold || l.docMarker() {
		l.lastDelim = l.block.threshold
		plain := l.block.plain
		l.block = blockScalar{}
		if plain {
			l.flush()
		}
		return false
	}
	if l.block.indentCol == 0 {
		l.block.indentCol = col
	}
	l.block.threshold = l.block.indentCol - 1
	l.advance(j - l.i)
	l.skipLine()
	return true
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

// quoted skips the quoted scalar that starts at i with q, as goccy/go-yaml
// reads it (escapes in double quotes consume what they say, whatever it
// is), and returns the characters between its quotes. A document marker at
// the start of one of its lines ends it, in an error, as there.
func (l *textReader) quoted(q byte) int {
	runes := 0
	l.col++
	l.i++
	for l.i < len(l.src) {
		c := l.src[l.i]
		switch {
		case c == '\n' || c == '\r':
			// goccy/go-yaml reads what follows the closing quote as the
			// start of this line: first stays.
			l.newline()
			if l.docMarker() {
				return runes
			}
			continue
		case c == q && q == '\'' && l.peek(1) == '\'':
			l.col += 2
			l.i += 2
			runes++
			continue
		case c == q:
			l.col++
			l.i++
			return runes
		case c == '\\' && q == '"':
			l.escape()
			runes++
			continue
		}
		_, size := utf8.DecodeRune(l.src[l.i:])
		l.i += size
		l.col++
		runes++
	}
	return runes
}

// escape moves past an escape of a double-quoted scalar at i, as
// goccy/go-yaml's scanDoubleQuote: '\' and a character, 'x' and two more,
// 'u' and four (ten for a surrogate pair), 'U' and eight, counted in
// characters; a line end after '\' continues the line.
func (l *textReader) escape() {
	l.col++
	l.i++
	if l.i >= len(l.src) {
		return
	}
	more := 0
	switch l.src[l.i] {
	case '\n', '\r':
		l.newline()
		return
	case 'x':
		more = 2
	case 'u':
		more = 4
		if l.surrogatePair() {
			more = 10
		}
	case 'U':
		more = 8
	}
	for n := 0; n <= more && l.i < len(l.src); n++ {
		c := l.src[l.i]
		if c == '\n' || c == '\r' {
			return // an error to goccy/go-yaml; the line end is read as usual
		}
		_, size := utf8.DecodeRune(l.src[l.i:])
		l.i += size
		l.col++
	}
}

// surrogatePair says the "\u" escape at i is a high surrogate that a "\u"
// escape follows.
func (l *textReader) surrogatePair() bool {
	if l.i+10 >= len(l.src) {
		return false
	}
	h := l.src[l.i+1 : l.i+5]
	return (h[0] == 'd' || h[0] == 'D') && bytes.IndexByte([]byte("89abAB"), h[1]) >= 0 && l.src[l.i+5] == '\\' && l.src[l.i+6] == 'u'
}
