// The fast parser's scalars: plain ones and how goccy/go-yaml types them
// (classify), and quoted ones with their escapes.

package yamlconf

import (
	"bytes"
	"unicode/utf8"

	"github.com/goccy/go-yaml/token"
)

// plainStart reports whether a plain scalar may start at i in block
// context: not with an indicator, nor with "- " (a sequence entry).
func plainStart(src []byte, i, end int) bool {
	switch src[i] {
	case '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`', '<':
		return false
	case '-':
		return i+1 < end && src[i+1] != ' ' && src[i+1] != '\n' && src[i+1] != '\r'
	}
	return true
}

// quotedEnd returns the position after the closing quote of the quoted
// scalar at i, which must end on its line.
func (p *fastParser) quotedEnd(i, end int) (int, bool) {
	q := p.src[i]
	for j := i + 1; j < end; j++ {
		switch c := p.src[j]; {
		case c == '\n' || c == '\r':
			return 0, false // multi-line
		case c == '\\' && q == '"':
			j++ // the escaped character; unescape checks it
		case c != q:
		case q == '\'' && j+1 < end && p.src[j+1] == '\'':
			j++ // '' is a quote
		default:
			return j + 1, true
		}
	}
	return 0, false
}

// quoted parses the quoted scalar at i and returns the position after it.
func (p *fastParser) quoted(i, end int) (int32, int, bool) {
	j, ok := p.quotedEnd(i, end)
	if !ok {
		return -1, 0, false
	}
	text := p.src[i+1 : j-1]
	switch {
	case p.src[i] == '"' && bytes.IndexByte(text, '\\') >= 0:
		s, ok := unescape(text)
		if !ok {
			return -1, 0, false
		}
		return p.t.addAt(kindString, s, i), j, true
	case p.src[i] == '\'' && bytes.IndexByte(text, '\'') >= 0:
		return p.t.addAt(kindString, string(bytes.ReplaceAll(text, []byte("''"), []byte("'"))), i), j, true
	}
	return p.t.add(kindString, i+1, j-1, false), j, true
}

// unescape decodes the text of a one-line double-quoted scalar with
// escapes, or reports false for what it leaves to goccy/go-yaml: an unknown
// escape, hex digits that are not, and surrogates and other code points
// that are not characters.
func unescape(text []byte) (string, bool) {
	out := make([]byte, 0, len(text))
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i+1 >= len(text) {
			return "", false
		}
		e := text[i+1]
		if r, ok := escapes[e]; ok {
			out = utf8.AppendRune(out, r)
			i++
			continue
		}
		var digits int
		switch e {
		case 'x':
			digits = 2
		case 'u':
			digits = 4
		case 'U':
			digits = 8
		default:
			return "", false
		}
		if i+2+digits > len(text) {
			return "", false
		}
		var r rune
		for _, h := range text[i+2 : i+2+digits] {
			var v byte
			switch {
			case h >= '0' && h <= '9':
				v = h - '0'
			case h >= 'a' && h <= 'f':
				v = h - 'a' + 10
			case h >= 'A' && h <= 'F':
				v = h - 'A' + 10
			default:
				return "", false
			}
			r = r<<4 | rune(v)
		}
		if !utf8.ValidRune(r) {
			return "", false
		}
		out = utf8.AppendRune(out, r)
		i += 1 + digits
	}
	return string(out), true
}

// classify returns the type goccy/go-yaml gives a plain (unquoted) scalar,
// the same decision as its token.New.
func classify(b []byte) kind {
	if len(b) == 0 {
		return kindString
	}
	switch c := b[0]; {
	case c >= '1' && c <= '9' && len(b) <= 18 && allDigits(b):
		return kindInt
	case c == '~' || c == 'n' || c == 'N' || c == 't' || c == 'T' || c == 'f' || c == 'F' || c == '.' || c == '-':
		switch string(b) {
		case "null", "Null", "NULL", "~":
			return kindNull
		case "true", "True", "TRUE", "false", "False", "FALSE":
			return kindBool
		case ".inf", ".Inf", ".INF", "-.inf", "-.Inf", "-.INF":
			return kindInf
		case ".nan", ".NaN", ".NAN":
			return kindNaN
		}
	}
	if !mayBeNumber(b) {
		return kindString
	}
	if num := token.ToNumber(string(b)); num != nil {
		if num.Type == token.NumberTypeFloat {
			return kindFloat
		}
		return kindInt
	}
	return kindString
}

// mayBeNumber is false for text that token.ToNumber cannot read as a
// number: one that does not start like a number (a sign, a digit or a
// dot), or that holds a byte none of strconv's integer and float syntaxes
// (with the 0x, 0o and 0b prefixes and _ separators) use.
func mayBeNumber(b []byte) bool {
	if c := b[0]; c != '+' && c != '-' && c != '.' && (c < '0' || c > '9') {
		return false
	}
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		case c == 'x', c == 'X', c == 'o', c == 'O', c == 'p', c == 'P', c == '_', c == '.', c == '+', c == '-':
		default:
			return false
		}
	}
	return true
}
