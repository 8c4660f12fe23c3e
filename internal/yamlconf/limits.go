package yamlconf

import "fmt"

// goccy/go-yaml has no limit of its own on what a document may cost it,
// and several shapes cost it far more than their size: its parser groups
// tokens in time and memory that grow with the square of the nesting
// depth, with the square of the number of keys of a block mapping and of
// the number of documents, and keeps the path of every value as a string
// (a long path repeated under every value below it); its decoder expands
// every alias into a copy of its anchor, and aliases of anchors that hold
// aliases multiply; its scanner has runs that cost it time that grows with
// the square of their length. Decode refuses these shapes before
// goccy/go-yaml reads the file, with a problem located where the limit is
// crossed (see prescan; the fast parser, which runs first and costs
// linear time whatever it reads, holds to the same limits), and checks
// goccy/go-yaml's own tokens again before its parser and decoder run (see
// guardTokens and guardAliases), so that a shape the lexical pre-scan
// reads differently cannot get through. The limits are far from what a
// config file holds: configs nest a handful of levels, their mappings hold
// tens of keys, and their anchors a few shared settings.
const (
	// maxAliasNodes bounds the nodes that aliases add, in all: an alias
	// adds the nodes of its anchor, including what aliases in it add.
	maxAliasNodes = 10000
	// maxMappingKeys bounds the keys of one block mapping.
	maxMappingKeys = 256
	// maxPathLength bounds the length of a value's path as goccy/go-yaml
	// writes it ("$.endpoints[12].fallback.headers.X-Api-Key").
	maxPathLength = 256
	// maxLessRun bounds a run of '<': goccy/go-yaml's scanner counts the
	// rest of the run at each '<' (looking for a "<<" merge key).
	maxLessRun = 64
	// maxLineTabs bounds the tabs of a line: goccy/go-yaml's scanner scans
	// the rest of the line at each tab of a double-quoted scalar.
	maxLineTabs = 64
	// maxReferenceBytes bounds the files read by the reference path
	// (goccy/go-yaml), which Decode takes for what the fast parser leaves:
	// anchors, aliases, tags, block scalars, multi-line scalars. Its
	// scanner and syntax tree, and its decoder with aliases, peak at 85 to
	// 165 MiB of heap per MiB of input (BenchmarkReferencePath; the top
	// with an alias on every endpoint), and take about 0.5 s per MiB on a
	// 2-core machine: over the bound Decode keeps (64 MiB per MiB and 8 MiB
	// besides) past about 80 KiB. A file over this size must be in the fast
	// parser's subset, which costs a few MiB per MiB at any size: the plain
	// YAML and the JSON that programs write, which is how large files are
	// made (64 KiB is about 500 endpoints). A file the fast parser reads
	// but whose problems only the reference path reports is read by it
	// whatever its size; the lenient check (see checkTree) leaves none such
	// in a large file that the differential fuzz tests have found.
	maxReferenceBytes = 64 << 10
)

// The problems of the limits, and of the number of documents. Each says
// what was found, and, where a user could wonder, that no config needs it.
var (
	msgDepth     = fmt.Sprintf("nesting deeper than %d levels", maxDepth)
	msgAliases   = fmt.Sprintf("aliases expand to more than %s nodes; the config format has no use for that many", thousands(maxAliasNodes))
	msgKeys      = fmt.Sprintf("a mapping with more than %d keys; the config format has no use for that many", maxMappingKeys)
	msgPath      = fmt.Sprintf("the path to this value is longer than %d characters; the config format has no use for keys that long or nested that deep", maxPathLength)
	msgLessRun   = fmt.Sprintf("more than %d '<' in a row; the config format has no use for that many", maxLessRun)
	msgLineTabs  = fmt.Sprintf("more than %d tab characters on one line; the config format has no use for that many", maxLineTabs)
	msgSecond    = "the config file must hold one YAML document; a second one starts here"
	msgReference = fmt.Sprintf("a config file over %d KiB must be plain YAML or JSON: mappings, lists, "+
		"values on one line and flow collections ([a, b], {k: v}); this line holds what only smaller files may use "+
		"(an anchor, alias, tag, block scalar, value on several lines, tab or document marker) or a syntax error", maxReferenceBytes>>10)
	msgNoDoc = "the file holds no YAML document; write `endpoints: []` to serve no endpoints from the file"
)

// thousands writes n with a comma between thousands, as the messages do.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// pos is a 1-based line and column (in characters, as goccy/go-yaml counts
// them).
type pos struct{ line, column int }

// frame is a collection the reader is inside of.
type frame struct {
	// column is a block collection's: the column of its entries ('-' or
	// keys). Flow collections have none.
	column int
	flow   bool
	seq    bool
	// implicit is a flow mapping of one pair that a key in a flow sequence
	// opens ([a: b]); the next ',' or ']' closes it.
	implicit bool
	// keys is a block mapping's number of keys so far, items a sequence's.
	keys, items int
	// path is the length of the collection's path; value that of the
	// value being read (after a key, or of the current item).
	path, value int
}

// anchor is an anchor whose node is being read.
type anchor struct {
	name string
	// depth is the number of frames open when the anchor was read: its
	// node is the next scalar at that depth, or the collection opened at
	// depth+1, which ends when the frames are back to depth.
	depth int
	// start is the number of nodes read before the node.
	start int
	// collection says the node is a collection that opened.
	collection bool
}

// tracker follows the structure of a document, read as events (a key, an
// entry, a scalar, a collection opening or closing, an anchor, an alias, a
// document marker) in source order, and stops at the first limit crossed.
// Its memory is the frames open (at most maxDepth+1), the anchors open
// (one per frame at most) and the sizes of the anchors read.
type tracker struct {
	stack []frame
	// flows counts the flow frames of stack.
	flows int
	// nodes counts the nodes read so far, an alias counting as the nodes
	// it adds; expanded counts what aliases add.
	nodes, expanded int
	open            []anchor
	sizes           map[string]int
	// docs counts documents started; inDoc says one is open; content says
	// a node was read.
	docs           int
	inDoc, content bool
	problem        *Problem
}

func (t *tracker) fail(at pos, msg string) {
	if t.problem == nil {
		t.problem = &Problem{Line: at.line, Column: at.column, Message: msg}
	}
}

// node marks the start of content, and of a document if none is open: a
// second one is refused where it starts.
func (t *tracker) node(at pos) {
	t.content = true
	if t.inDoc {
		return
	}
	t.inDoc = true
	t.docs++
	if t.docs > 1 {
		t.fail(at, msgSecond)
	}
}

// docStart is a "---": it starts a document, the second one if any was
// started before.
func (t *tracker) docStart(at pos) {
	if t.docs > 0 {
		t.fail(at, msgSecond)
	}
	t.docs++
	t.inDoc = true
	t.reset()
}

// docEnd is a "...": what follows is another document.
func (t *tracker) docEnd() {
	t.inDoc = false
	t.reset()
}

func (t *tracker) reset() {
	t.popTo(0)
	t.closeAnchors(0)
}

// end is the end of the input.
func (t *tracker) end() {
	t.reset()
	if !t.content {
		t.fail(pos{1, 1}, msgNoDoc)
	}
}

// valuePath is the length of the path of a collection that opens now.
func (t *tracker) valuePath() int {
	if len(t.stack) == 0 {
		return 1 // "$"
	}
	return t.stack[len(t.stack)-1].value
}

func (t *tracker) push(at pos, f frame) {
	f.path = t.valuePath()
	f.value = f.path
	if f.seq {
		f.value = f.path + 3 // "[0]"
	}
	t.stack = append(t.stack, f)
	if f.flow {
		t.flows++
	}
	t.nodes++
	if len(t.stack) > maxDepth {
		t.fail(at, msgDepth)
	}
	// An anchor waiting for its node gets this collection.
	if n := len(t.open); n > 0 && !t.open[n-1].collection && t.open[n-1].depth == len(t.stack)-1 {
		t.open[n-1].collection = true
	}
}

// popTo closes frames until depth remain, and the anchors of what closed.
func (t *tracker) popTo(depth int) {
	if len(t.stack) > depth {
		for _, f := range t.stack[depth:] {
			if f.flow {
				t.flows--
			}
		}
		t.stack = t.stack[:depth]
		t.closeAnchors(depth)
	}
}

// closeAnchors ends the anchors whose node has ended now that depth frames
// remain: collections opened deeper, and anchors deeper still waiting.
func (t *tracker) closeAnchors(depth int) {
	for n := len(t.open); n > 0; n = len(t.open) {
		a := t.open[n-1]
		if a.depth < depth || (a.depth == depth && !a.collection) {
			return
		}
		t.closeAnchor()
	}
}

func (t *tracker) closeAnchor() {
	a := t.open[len(t.open)-1]
	t.open = t.open[:len(t.open)-1]
	if t.sizes == nil {
		t.sizes = make(map[string]int)
	}
	t.sizes[a.name] = t.nodes - a.start
}

// settleAnchors ends the anchors at the current depth still waiting for a
// node: the next event is no node of theirs (a key or an entry of the
// collection they are in), so theirs was empty.
func (t *tracker) settleAnchors() {
	for n := len(t.open); n > 0 && !t.open[n-1].collection && t.open[n-1].depth >= len(t.stack); n = len(t.open) {
		t.closeAnchor()
	}
}

// blockColumn closes the block collections that a key or an entry at
// column ends: those of deeper columns.
func (t *tracker) blockColumn(column int) {
	d := len(t.stack)
	for d > 0 && !t.stack[d-1].flow && t.stack[d-1].column > column {
		d--
	}
	t.popTo(d)
}

func (t *tracker) top() *frame {
	if len(t.stack) == 0 {
		return nil
	}
	return &t.stack[len(t.stack)-1]
}

// inFlow says a flow collection is open.
func (t *tracker) inFlow() bool { return t.flows > 0 }

// checkPath refuses a value whose path is too long.
func (t *tracker) checkPath(at pos, length int) {
	if length > maxPathLength {
		t.fail(at, msgPath)
	}
}

// digits is the number of decimal digits of n.
func digits(n int) int {
	d := 1
	for ; n >= 10; n /= 10 {
		d++
	}
	return d
}

// entry is a block sequence entry ("- ") at.
func (t *tracker) entry(at pos) {
	t.node(at)
	if t.inFlow() {
		// goccy/go-yaml reads "- " in a flow collection as an entry too;
		// count it as a level, the flow collection closes it.
		t.push(at, frame{column: at.column, seq: true})
		return
	}
	t.blockColumn(at.column)
	if f := t.top(); f != nil && !f.flow && f.seq && f.column == at.column {
		t.settleAnchors()
		f.items++
		f.value = f.path + 2 + digits(f.items-1)
		t.checkPath(at, f.value)
		return
	}
	t.push(at, frame{column: at.column, seq: true, items: 1})
	t.checkPath(at, t.top().value)
}

// key is a mapping key at whose text is runes characters long: at the
// colon that follows it, so that the scalar it is has been read.
func (t *tracker) key(at pos, runes int) {
	t.node(at)
	if f := t.top(); f != nil && t.inFlow() {
		if f.flow && f.seq {
			// [a: b] is a sequence of one mapping of one pair.
			t.push(at, frame{flow: true, implicit: true})
			f = t.top()
		}
		f.keys++
		f.value = f.path + 1 + runes
		t.checkPath(at, f.value)
		t.scalar(at)
		return
	}
	t.blockColumn(at.column)
	f := t.top()
	// "key:\n- a\nnext:": the sequence at the key's column is the value of
	// the mapping's previous key, and ends at the next one.
	if f != nil && f.seq && f.column == at.column && len(t.stack) > 1 && !t.stack[len(t.stack)-2].seq && t.stack[len(t.stack)-2].column == at.column {
		t.popTo(len(t.stack) - 1)
		f = t.top()
	}
	if f != nil && !f.seq && f.column == at.column {
		f.keys++
		if f.keys > maxMappingKeys {
			t.fail(at, msgKeys)
		}
		f.value = f.path + 1 + runes
		t.checkPath(at, f.value)
		t.scalar(at) // the key; an anchor before it names it
		return
	}
	// A new mapping; an anchor before its first key is read as naming the
	// mapping (it names the key): at worst, more nodes are counted.
	t.push(at, frame{column: at.column, keys: 1})
	f = t.top()
	f.value = f.path + 1 + runes
	t.checkPath(at, f.value)
	t.nodes++
}

// scalar is a scalar value at (not a key).
func (t *tracker) scalar(at pos) {
	t.node(at)
	t.nodes++
	// An anchor waiting at this depth gets this scalar.
	for n := len(t.open); n > 0 && !t.open[n-1].collection && t.open[n-1].depth == len(t.stack); n = len(t.open) {
		t.closeAnchor()
	}
}

// flowOpen is a '[' (seq) or '{'.
func (t *tracker) flowOpen(at pos, seq bool) {
	t.node(at)
	t.push(at, frame{flow: true, seq: seq})
}

// flowEntry is a ',' in a flow collection.
func (t *tracker) flowEntry() {
	t.closeImplicit()
	if f := t.top(); f != nil && f.flow && f.seq {
		f.items++
		f.value = f.path + 2 + digits(f.items)
	}
}

// flowClose is a ']' or '}': it closes the innermost flow collection and
// what is open inside it.
func (t *tracker) flowClose() {
	t.closeImplicit()
	for d := len(t.stack); d > 0; d-- {
		if t.stack[d-1].flow {
			t.popTo(d - 1)
			return
		}
	}
}

func (t *tracker) closeImplicit() {
	d := len(t.stack)
	for d > 0 && !t.stack[d-1].flow {
		d-- // entries read as block ones inside the flow collection
	}
	if d > 0 && t.stack[d-1].implicit {
		d--
	}
	t.popTo(d)
}

// anchorAt is an anchor named name at: its node follows.
func (t *tracker) anchorAt(at pos, name string) {
	t.node(at)
	// Two anchors in a row name one node: the first one's is empty.
	t.settleAnchors()
	t.open = append(t.open, anchor{name: name, depth: len(t.stack), start: t.nodes})
}

// alias is an alias of the anchor name at: it adds the anchor's nodes.
func (t *tracker) alias(at pos, name string) {
	t.node(at)
	size, ok := t.sizes[name]
	if !ok {
		size = 1 // goccy/go-yaml refuses it; count it as a node
	}
	t.expanded += size
	t.nodes += size
	if t.expanded > maxAliasNodes {
		t.fail(at, msgAliases)
	}
	for n := len(t.open); n > 0 && !t.open[n-1].collection && t.open[n-1].depth == len(t.stack); n = len(t.open) {
		t.closeAnchor()
	}
}
