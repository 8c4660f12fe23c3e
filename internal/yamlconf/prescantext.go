// prescan's reading of text: plain text, quoted scalars with their
// escapes, block scalars, tags and skipped lines, as goccy/go-yaml's
// scanner reads them.

package yamlconf

import (
	"bytes"
	"unicode/utf8"
)

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
