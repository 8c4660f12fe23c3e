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
// An Index is 64 shards, chosen by the top bits of one maphash of the key;
// a shard is an open-addressing array at most three quarters full, probed
// linearly from the key's low bits, with backward-shift deletion so that no
// tombstones build up. An edit copies the array of shard pointers (512
// bytes) and each shard it changes: about 1/64 of the index.
package routeindex

import (
	"hash/maphash"
	"iter"
	"unsafe"
)

const (
	shardBits  = 6
	shardCount = 1 << shardBits
	minSlots   = 8
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
	slots []slot[V]
	used  int
}

// slot keeps a key beside its value and 32 bits of its hash, in the 24
// bytes a string header and a pointer take: a probe reads one cache line,
// and a probe that passes another key compares hashes, not that key's
// bytes, which live elsewhere in memory. (Route paths are often the same
// length, "/svc1234/v1", so comparing the strings would read them.)
type slot[V comparable] struct {
	keyData *byte // the key's bytes; keeps them alive
	keyLen  uint32
	hash32  uint32
	val     V // the zero V marks a free slot
}

func (sl *slot[V]) key() string { return unsafe.String(sl.keyData, sl.keyLen) }

func (sl *slot[V]) is(k string, h uint64) bool {
	return sl.hash32 == uint32(h>>32) && int(sl.keyLen) == len(k) && sl.key() == k
}

func newSlot[V comparable](k string, h uint64, v V) slot[V] {
	return slot[V]{keyData: unsafe.StringData(k), keyLen: uint32(len(k)), hash32: uint32(h >> 32), val: v}
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
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		var zero V
		if sl := &s.slots[i]; sl.val == zero || sl.is(k, h) {
			return sl.val
		}
	}
}

// All yields every entry, in no particular order.
func (x *Index[V]) All() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		var zero V
		for _, s := range x.shards {
			if s == nil {
				continue
			}
			for _, sl := range s.slots {
				if sl.val != zero && !yield(sl.key(), sl.val) {
					return
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
	s := e.writable(h, 1)
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		sl := &s.slots[i]
		if sl.val == zero {
			*sl = newSlot(k, h, v)
			s.used++
			e.x.len++
			return
		}
		if sl.is(k, h) {
			sl.val = v
			return
		}
	}
}

// Delete removes k, if present.
func (e *Editor[V]) Delete(k string) {
	var zero V
	h := maphash.String(e.x.seed, k)
	if e.x.shards[h>>(64-shardBits)] == nil {
		return
	}
	s := e.writable(h, 0)
	mask := uint64(len(s.slots) - 1)
	i := h & mask
	for ; s.slots[i].val == zero || !s.slots[i].is(k, h); i = (i + 1) & mask {
		if s.slots[i].val == zero {
			return
		}
	}
	s.slots[i] = slot[V]{}
	s.used--
	e.x.len--
	// Move later entries of the probe run into the hole when the hole lies
	// on their path from their home slot, so lookups never stop early.
	for j := (i + 1) & mask; s.slots[j].val != zero; j = (j + 1) & mask {
		home := maphash.String(e.x.seed, s.slots[j].key()) & mask
		if (j-home)&mask >= (j-i)&mask {
			s.slots[i], s.slots[j] = s.slots[j], slot[V]{}
			i = j
		}
	}
}

// writable returns the shard of hash h, copied if this edit has not copied
// it yet, with room for adding more entries.
func (e *Editor[V]) writable(h uint64, adding int) *shard[V] {
	n := h >> (64 - shardBits)
	s := e.x.shards[n]
	switch {
	case s == nil:
		s = newShard[V](minSlots)
	case 4*(s.used+adding) > 3*len(s.slots):
		s = s.rehash(e.x.seed, 2*len(s.slots))
	case !e.copied[n]:
		s = &shard[V]{slots: append([]slot[V](nil), s.slots...), used: s.used}
	default:
		return s
	}
	e.x.shards[n] = s
	e.copied[n] = true
	return s
}

func newShard[V comparable](slots int) *shard[V] {
	return &shard[V]{slots: make([]slot[V], slots)}
}

// rehash returns a new shard of the given size holding s's entries.
func (s *shard[V]) rehash(seed maphash.Seed, slots int) *shard[V] {
	var zero V
	out := newShard[V](slots)
	mask := uint64(slots - 1)
	for _, sl := range s.slots {
		if sl.val == zero {
			continue
		}
		i := maphash.String(seed, sl.key()) & mask
		for out.slots[i].val != zero {
			i = (i + 1) & mask
		}
		out.slots[i] = sl
		out.used++
	}
	return out
}
