// Package routeindex is the string-keyed hash index the route table is
// made of: lookups in constant time whatever its size, and copy-on-write
// edits that copy only what they touch.
//
// Why not a Go map: the route table is immutable and replaced whole on
// every change (readers take no lock), so a map-based table copies every
// entry for each registration. At 10,000 endpoints that was over a
// megabyte per registration, page-faulted in afresh after the server hands
// memory back to the system. A map also slows down as it grows past one
// internal table (a 10,000-entry map answered about 40 % slower than a
// 10-entry one in BenchmarkRouteLookup).
//
// An Index is 64 shards, chosen by the top bits of one maphash of the key.
// A shard is an open-addressing table of groups of eight slots, in the
// manner of Abseil's SwissTable and Go's own maps, except that a group's
// two control words hold a 16-bit tag of each slot's hash rather than 7
// bits. A lookup loads its home group's control words, finds the slot
// whose tag matches with a few word operations, and compares that one
// key. Shards are sized so that groups are 35-45 % full.
//
// The point is that a lookup takes the same steps, and the same branches,
// for nearly every key, in a table of 10 or of 10,000. Keys outside their
// home group (a few in a thousand at this fill; TestFewKeysLeaveTheFastPath)
// and keys whose group holds another with the same tag (one in twenty
// thousand) take a slower path. Two earlier designs were not flat enough:
// linear probing over single slots averaged 1.8 probes per hit in a full
// shard and one in a small one; and groups of eight with 7-bit tags,
// filled to 75 %, sent about one key in twenty down a second probe or a
// second key comparison. Such a key measured about 20 ns more per lookup,
// mispredicted branches more than the work, so a benchmark sending
// requests to ten routes measured 8-16 % slower at 10,000 routes than at
// 10 whenever one of the ten was such a key.
//
// A shard keeps its keys' bytes in one array of its own rather than
// pointing at strings wherever they were allocated, so a lookup touches
// only the shard's memory, and a slot is 16 bytes.
//
// An edit copies the array of shard pointers (512 bytes) and rebuilds each
// shard it changes: about 1/64 of the index. A rebuild drops the markers
// deletes leave and the bytes of deleted keys, and resizes the shard.
package routeindex

import (
	"hash/maphash"
	"iter"
	"math/bits"
	"unsafe"
)

const (
	shardBits  = 6
	shardCount = 1 << shardBits
	groupSlots = 8

	// A shard is rebuilt at fillRebuilt and grows when an insertion would
	// take it past fillMax, in twentieths: 35 % and 45 %. (At 40-50 %,
	// repeated measurements like BenchmarkRouteLookupFlatness's reached
	// 1.08-1.10 more often; at 35-45 % the highest of 96 was 1.08.)
	fillRebuilt = 7
	fillMax     = 9
)

// Control lanes: a full slot holds its tag (0x0000-0xfffd). A deleted
// slot must not stop a lookup (keys inserted while its group was full may
// lie beyond it); an empty one does.
const (
	ctrlEmpty   = 0xffff
	ctrlDeleted = 0xfffe

	lanesLSB = 0x0001000100010001
	lanesMSB = 0x8000800080008000
)

// Index maps strings to values of V; the zero V means "absent", so V is
// typically a pointer. An Index is immutable: change it through Edit. The
// zero Index is not usable; start from New.
type Index[V comparable] struct {
	seed   maphash.Seed
	shards [shardCount]*shard[V]
	len    int
}

type shard[V comparable] struct {
	groups  []group[V]
	keys    []byte // the keys' bytes, end to end
	used    int
	deleted int
}

// group is two control words, lane l of word w for slots[4w+l], and eight
// slots: 144 bytes for pointer values.
type group[V comparable] struct {
	ctrl  [groupSlots / 4]uint64
	slots [groupSlots]slot[V]
}

type slot[V comparable] struct {
	keyOff uint32 // the key is shard.keys[keyOff : keyOff+keyLen]
	keyLen uint32
	val    V
}

// tagOf is 16 bits of h used neither for the shard (the top 6) nor for
// the home group (the low 32), scaled into 0x0000-0xfffd without a branch.
func tagOf(h uint64) uint16 { return uint16((h >> 40 & 0xffff) * ctrlDeleted >> 16) }

// match has a bit set for each slot whose control lane is c, and may
// have one more, for a slot just above a match in the same word whose
// lane is c^1 (the usual borrow of the short zero-lane test, which costs
// a third fewer operations than the exact one); a flagged slot is never
// below the true match, and callers check keys. slotOf maps a bit to its
// slot: word w's bits are shifted down by w so that both words fit one
// mask, bit 16l+15-w being slot 4w+l.
func match(ctrl *[groupSlots / 4]uint64, c uint16) uint64 {
	p := lanesLSB * uint64(c)
	x0, x1 := ctrl[0]^p, ctrl[1]^p
	return (x0-lanesLSB)&^x0&lanesMSB | (x1-lanesLSB)&^x1&lanesMSB>>1
}

// slotOf is the slot of bit p of a match.
func slotOf(p int) int { return (15-p&15)<<2 | p>>4 }

func (g *group[V]) ctrlLane(i int) uint16 { return uint16(g.ctrl[i>>2] >> (16 * (i & 3))) }

func (g *group[V]) setCtrl(i int, c uint16) {
	w, shift := &g.ctrl[i>>2], 16*(i&3)
	*w = *w&^(0xffff<<shift) | uint64(c)<<shift
}

// home is the group a hash starts from: the low 32 bits scaled to the
// number of groups, which need not be a power of two.
func (s *shard[V]) home(h uint64) int {
	return int(uint64(uint32(h)) * uint64(len(s.groups)) >> 32)
}

// key is the key of sl, without copying: the bytes of a key are never
// written again once stored. (An empty key's keyOff is 0, so the pointer
// never passes the array's end.)
func (s *shard[V]) key(sl *slot[V]) string {
	return unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(s.keys)), sl.keyOff)), sl.keyLen)
}

// New returns an empty index.
func New[V comparable]() Index[V] {
	return Index[V]{seed: maphash.MakeSeed()}
}

// Len is the number of entries.
func (x *Index[V]) Len() int { return x.len }

// Get returns k's value, or the zero V.
func (x *Index[V]) Get(k string) V {
	h := maphash.String(x.seed, k)
	s := x.shards[h>>(64-shardBits)]
	if s == nil {
		var zero V
		return zero
	}
	// The usual case: k is the first slot of its home group with its tag.
	// (match is written out: it is too big for the compiler to inline,
	// and the call cost a tenth of a lookup.)
	g := &s.groups[s.home(h)]
	p := lanesLSB * uint64(tagOf(h))
	x0, x1 := g.ctrl[0]^p, g.ctrl[1]^p
	if m := (x0-lanesLSB)&^x0&lanesMSB | (x1-lanesLSB)&^x1&lanesMSB>>1; m != 0 {
		if sl := &g.slots[slotOf(bits.TrailingZeros64(m))]; s.key(sl) == k {
			return sl.val
		}
	}
	return s.get(k, h) // elsewhere, absent, or behind a key with its tag
}

// get is Get's full search.
func (s *shard[V]) get(k string, h uint64) V {
	if g, i := s.find(k, h); g != nil {
		return g.slots[i].val
	}
	var zero V
	return zero
}

// find returns the group and slot holding k, whose hash is h, or nil.
func (s *shard[V]) find(k string, h uint64) (*group[V], int) {
	tag := tagOf(h)
	for gi := s.home(h); ; {
		g := &s.groups[gi]
		for m := match(&g.ctrl, tag); m != 0; m &= m - 1 {
			if i := slotOf(bits.TrailingZeros64(m)); s.key(&g.slots[i]) == k {
				return g, i
			}
		}
		if match(&g.ctrl, ctrlEmpty) != 0 {
			return nil, 0
		}
		if gi++; gi == len(s.groups) {
			gi = 0
		}
	}
}

// All yields every entry, in no particular order.
func (x *Index[V]) All() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		for _, s := range x.shards {
			if s == nil {
				continue
			}
			for gi := range s.groups {
				g := &s.groups[gi]
				for i := range g.slots {
					if g.ctrlLane(i) < ctrlDeleted && !yield(s.key(&g.slots[i]), g.slots[i].val) {
						return
					}
				}
			}
		}
	}
}

// Editor changes a copy of an Index; the original stays as it was, so
// readers of it are never disturbed.
type Editor[V comparable] struct {
	x      Index[V]
	copied [shardCount]bool
}

// Edit starts a set of changes to a copy of x.
func (x *Index[V]) Edit() *Editor[V] {
	return &Editor[V]{x: *x}
}

// Index returns the edited index. The Editor must not be used afterwards.
func (e *Editor[V]) Index() Index[V] { return e.x }

// Set maps k to v; a zero v deletes k.
func (e *Editor[V]) Set(k string, v V) {
	var zero V
	if v == zero {
		e.Delete(k)
		return
	}
	h := maphash.String(e.x.seed, k)
	if s := e.x.shards[h>>(64-shardBits)]; s != nil {
		if g, _ := s.find(k, h); g != nil {
			g, i := e.writable(h, 0).find(k, h) // a rebuild moves keys
			g.slots[i].val = v
			return
		}
	}
	e.writable(h, 1).insert(k, h, v)
	e.x.len++
}

// insert stores k, known to be absent, in the first free slot from its
// home group on; the shard has room.
func (s *shard[V]) insert(k string, h uint64, v V) {
	off := len(s.keys)
	if k == "" {
		off = 0
	}
	s.keys = append(s.keys, k...)
	for gi := s.home(h); ; {
		g := &s.groups[gi]
		if m := match(&g.ctrl, ctrlEmpty) | match(&g.ctrl, ctrlDeleted); m != 0 {
			i := slotOf(bits.TrailingZeros64(m))
			if g.ctrlLane(i) == ctrlDeleted {
				s.deleted--
			}
			g.slots[i] = slot[V]{keyOff: uint32(off), keyLen: uint32(len(k)), val: v}
			g.setCtrl(i, tagOf(h))
			s.used++
			return
		}
		if gi++; gi == len(s.groups) {
			gi = 0
		}
	}
}

// Delete removes k, if present.
func (e *Editor[V]) Delete(k string) {
	h := maphash.String(e.x.seed, k)
	if s := e.x.shards[h>>(64-shardBits)]; s == nil {
		return
	} else if g, _ := s.find(k, h); g == nil {
		return
	}
	s := e.writable(h, 0)
	s.remove(s.find(k, h))
	e.x.len--
}

// remove empties slot i of g.
func (s *shard[V]) remove(g *group[V], i int) {
	g.slots[i] = slot[V]{} // lets the value be collected
	s.used--
	// A group that still has an empty slot has never been full since the
	// shard was built, so no lookup has had to look past it: the slot can
	// be empty again. Otherwise it stays a marker lookups walk past.
	if match(&g.ctrl, ctrlEmpty) != 0 {
		g.setCtrl(i, ctrlEmpty)
	} else {
		g.setCtrl(i, ctrlDeleted)
		s.deleted++
	}
}

// writable returns the shard of hash h, rebuilt if this edit has not
// copied it yet, with room for adding more entries.
func (e *Editor[V]) writable(h uint64, adding int) *shard[V] {
	n := h >> (64 - shardBits)
	s := e.x.shards[n]
	switch {
	case s == nil:
		s = (&shard[V]{}).rebuilt(e.x.seed, adding)
	case !e.copied[n] || 20*(s.used+s.deleted+adding) > fillMax*len(s.groups)*groupSlots:
		s = s.rebuilt(e.x.seed, s.used+adding)
	default:
		return s
	}
	e.x.shards[n] = s
	e.copied[n] = true
	return s
}

// rebuilt returns a new shard holding s's entries, sized for n of them,
// with no deleted markers and no bytes of deleted keys.
func (s *shard[V]) rebuilt(seed maphash.Seed, n int) *shard[V] {
	groups := max(1, (20*n+fillRebuilt*groupSlots-1)/(fillRebuilt*groupSlots))
	out := &shard[V]{groups: make([]group[V], groups), keys: make([]byte, 0, len(s.keys))}
	for gi := range out.groups {
		for w := range out.groups[gi].ctrl {
			out.groups[gi].ctrl[w] = lanesLSB * ctrlEmpty
		}
	}
	for gi := range s.groups {
		g := &s.groups[gi]
		for i := range g.slots {
			if g.ctrlLane(i) < ctrlDeleted {
				k := s.key(&g.slots[i])
				out.insert(k, maphash.String(seed, k), g.slots[i].val)
			}
		}
	}
	return out
}
