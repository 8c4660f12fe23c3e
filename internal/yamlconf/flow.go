// The fast parser's flow collections: [a, b] and {k: v} on one line in a
// block document, and JSON (flow collections over several lines) at the
// root.

package yamlconf

import "bytes"

// parseRootFlow parses a flow collection that is the whole document, as
// in a JSON file: unlike one in a block collection it may span lines,
// between its entries.
func (p *fastParser) parseRootFlow(i int) int32 {
	v, j := p.parseFlow(i, len(p.src), 0)
	end := len(p.src)
	if k := bytes.IndexByte(p.src[j:], '\n'); k >= 0 {
		end = j + k
		if end > j && p.src[end-1] == '\r' {
			end--
		}
	}
	if !p.restIsEmpty(j, end) || (j < end && p.src[j] == '#') {
		p.fail()
	}
	p.next(end)
	return v
}

// skipBlank skips spaces, and line ends when the flow collection spans
// lines (within one line, end is the line's end).
func (p *fastParser) skipBlank(i, end int) int {
	for i < end && (p.src[i] == ' ' || p.src[i] == '\n' || p.src[i] == '\r') {
		if p.src[i] == '\n' && end-i > 3 {
			if s := string(p.src[i+1 : i+4]); s == "---" || s == "..." {
				p.fail() // document markers, even here
			}
		}
		i++
	}
	return i
}

// parseFlow parses a flow sequence or mapping at i that closes before end
// and returns the position after it. maps counts the flow mappings around
// it, inside which goccy/go-yaml reads a colon differently. Line ends may
// come where spaces may, but for between a key and its value.
func (p *fastParser) parseFlow(i, end, maps int) (int32, int) {
	p.enter()
	base := p.path
	defer func() { p.depth--; p.path = base }()
	open := p.src[i]
	closer := byte(']')
	k := kindSequence
	if open == '{' {
		closer, k = '}', kindMapping
		maps++
	}
	c := p.t.open(k)
	p.t.nodes[c.parent].start = int32(i) // a flow collection is at its bracket
	j := p.skipBlank(i+1, end)
	if j < end && p.src[j] == closer {
		return c.parent, j + 1
	}
	var keys keySet
	for {
		if j >= end {
			p.fail()
		}
		if k == kindMapping {
			key, after := p.flowKey(j, end)
			p.addKey(&keys, key)
			p.pathTo(c, base, key)
			j = p.skipSpaces(after, end)
			if j >= end || p.src[j] == ',' || p.src[j] == '}' || p.src[j] == '\n' || p.src[j] == '\r' {
				p.fail() // a key without a value, or with it on the next line
			}
			p.link(&c, key)
			value, after := p.flowValue(j, end, maps)
			p.link(&c, value)
			j = after
		} else {
			p.pathTo(c, base, -1)
			item, after := p.flowValue(j, end, maps)
			p.link(&c, item)
			j = after
		}
		p.t.counted(c)
		j = p.skipBlank(j, end)
		if j >= end {
			p.fail()
		}
		switch p.src[j] {
		case ',':
			j = p.skipBlank(j+1, end)
			if j >= end || p.src[j] == ',' || p.src[j] == closer {
				p.fail() // an empty entry, or a trailing comma
			}
		case closer:
			return c.parent, j + 1
		default:
			p.fail()
		}
	}
}

// flowKey parses a flow mapping's key and returns the position after its
// colon.
func (p *fastParser) flowKey(j, end int) (int32, int) {
	switch p.src[j] {
	case '"', '\'':
		key, after, ok := p.quoted(j, end)
		if !ok || after >= end || p.src[after] != ':' {
			p.fail()
		}
		// {"a":1} is a pair; {"a":/x} is not.
		if after+1 < end && p.src[after+1] == '/' {
			p.fail()
		}
		p.checkKey(key)
		return key, after + 1
	}
	if !flowPlainStart(p.src, j, end) {
		p.fail()
	}
	for e := j; e < end; e++ {
		switch p.src[e] {
		case ':':
			if e+1 < end && p.src[e+1] == ' ' && p.src[e-1] != ' ' {
				key := p.t.add(classify(p.src[j:e]), j, e, false)
				p.checkKey(key)
				return key, e + 1
			}
			p.fail()
		case ',', '[', ']', '{', '}', '#', '"', '\'', '\n', '\r':
			p.fail()
		}
	}
	p.fail()
	return -1, 0
}

// flowValue parses a value inside a flow collection.
func (p *fastParser) flowValue(j, end, maps int) (int32, int) {
	switch p.src[j] {
	case '[', '{':
		return p.parseFlow(j, end, maps)
	case '"', '\'':
		v, after, ok := p.quoted(j, end)
		if !ok {
			p.fail()
		}
		if k := p.skipBlank(after, end); k < end && p.src[k] == ':' {
			p.fail()
		}
		return v, after
	}
	if !flowPlainStart(p.src, j, end) {
		p.fail()
	}
	e := j
loop:
	for ; e < end; e++ {
		switch p.src[e] {
		case ',', ']', '}', '\n', '\r':
			break loop
		case '[', '{', '#':
			p.fail()
		case ':':
			// In a flow mapping a colon always ends a key (but for
			// "http://"); in a flow sequence only before a space.
			if maps > 0 || e+1 == end {
				p.fail()
			}
			switch p.src[e+1] {
			case ' ', ',', ']', '}', '\n', '\r':
				p.fail()
			}
		}
	}
	stop := e
	for stop > j && p.src[stop-1] == ' ' {
		stop--
	}
	return p.t.add(classify(p.src[j:stop]), j, stop, false), e
}

// flowPlainStart reports whether a plain scalar may start at j in a flow
// collection.
func flowPlainStart(src []byte, j, end int) bool {
	if !plainStart(src, j, end) {
		return false
	}
	if src[j] == '-' && (src[j+1] == ',' || src[j+1] == ']' || src[j+1] == '}') { // "[-]"
		return false
	}
	return true
}
