package routeindex

import (
	"fmt"
	"hash/maphash"
	"maps"
	"math/bits"
	"math/rand/v2"
	"strings"
	"testing"
)

type entry struct{ v int }

// checkEqual fails unless x holds exactly want.
func checkEqual(t *testing.T, step int, x *Index[*entry], want map[string]*entry, keys []string) {
	t.Helper()
	if x.Len() != len(want) {
		t.Fatalf("step %d: Len %d; want %d", step, x.Len(), len(want))
	}
	for _, k := range keys {
		if got := x.Get(k); got != want[k] {
			t.Fatalf("step %d: Get(%q) = %v; want %v", step, k, got, want[k])
		}
	}
	seen := map[string]*entry{}
	for k, v := range x.All() {
		seen[k] = v
	}
	if !maps.Equal(seen, want) {
		t.Fatalf("step %d: All yields %d entries, not the %d expected", step, len(seen), len(want))
	}
}

// Through any sequence of sets, replacements and deletes, in edits of one
// or many changes, an index agrees with a map, and every earlier version
// stays exactly what it was (readers of an old table are never disturbed).
func TestIndexAgreesWithAMapAndEditsNeverChangeTheOriginal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make([]string, 3000)
	for i := range keys {
		keys[i] = fmt.Sprintf("svc%d", i)
	}
	keys[1] = ""                           // no bytes in the shard at all
	keys[2] = strings.Repeat("long/", 100) // 500 bytes; the next, the same less one
	keys[3] = strings.Repeat("long/", 100)[1:]
	x := New[*entry]()
	want := map[string]*entry{}
	type version struct {
		x    Index[*entry]
		want map[string]*entry
	}
	var old []version
	for step := 0; step < 400; step++ {
		e := x.Edit()
		next := maps.Clone(want)
		for range 1 + rng.IntN(40) {
			k := keys[rng.IntN(len(keys))]
			if rng.IntN(3) == 0 {
				e.Delete(k)
				delete(next, k)
			} else {
				v := &entry{step}
				e.Set(k, v)
				next[k] = v
			}
		}
		if step%50 == 0 {
			old = append(old, version{x, want})
		}
		x, want = e.Index(), next
		if step%20 == 0 {
			checkEqual(t, step, &x, want, keys)
		}
	}
	checkEqual(t, -1, &x, want, keys)
	for i, v := range old {
		checkEqual(t, -100-i, &v.x, v.want, keys)
	}
}

// Deleting every key leaves an empty index that still answers.
func TestIndexEmptiedByDeletes(t *testing.T) {
	x := New[*entry]()
	e := x.Edit()
	for i := range 500 {
		e.Set(fmt.Sprint(i), &entry{i})
	}
	for i := range 500 {
		e.Delete(fmt.Sprint(i))
	}
	e.Delete("never there")
	x = e.Index()
	checkEqual(t, 0, &x, map[string]*entry{}, []string{"0", "499", "never there"})
}

// An edit that changes one key among 10,000 copies one shard, not the
// index: the point of the package.
func BenchmarkEditOneOf10000(b *testing.B) {
	x := New[*entry]()
	e := x.Edit()
	for i := range 10000 {
		e.Set(fmt.Sprintf("svc%d", i), &entry{i})
	}
	x = e.Index()
	v := &entry{-1}
	b.ReportAllocs()
	for b.Loop() {
		e := x.Edit()
		e.Set("svc42", v)
		_ = e.Index()
	}
}

// The point of the design (see the package comment): nearly every key is
// found by Get's fast path, the first slot of its home group with its
// tag, at any size. At 10,000 keys a few in a thousand are not.
func TestFewKeysLeaveTheFastPath(t *testing.T) {
	for _, n := range []int{10, 1000, 10000, 100000} {
		x := New[*entry]()
		e := x.Edit()
		for i := range n {
			e.Set(fmt.Sprintf("/svc%d/v1", i), &entry{i})
		}
		x = e.Index()
		slow := 0
		for i := range n {
			k := fmt.Sprintf("/svc%d/v1", i)
			h := maphash.String(x.seed, k)
			s := x.shards[h>>(64-shardBits)]
			g, i := s.find(k, h)
			home := &s.groups[s.home(h)]
			if g != home || slotOf(bits.TrailingZeros64(match(&home.ctrl, tagOf(h)))) != i {
				slow++
			}
		}
		t.Logf("%d keys: %d off the fast path", n, slow)
		if slow*200 > n {
			t.Errorf("%d keys: %d off the fast path; want at most 0.5 %%", n, slow)
		}
	}
}

// Deleting from a group that has been full leaves a marker, so that keys
// that overflowed it are still found; from a group with room, an empty
// slot; and a rebuild drops the markers.
func TestDeleteFromAFullGroupKeepsOverflowFindable(t *testing.T) {
	x := New[*entry]()
	s := (&shard[*entry]{}).rebuilt(x.seed, 2*groupSlots*fillRebuilt/20)
	if len(s.groups) != 2 {
		t.Fatalf("%d groups; the test wants 2", len(s.groups))
	}
	// Keys homed in group 0: a group's worth, then one that overflows.
	var homed []string
	for i := 0; len(homed) < groupSlots+1; i++ {
		k := fmt.Sprint("k", i)
		if s.home(maphash.String(x.seed, k)) == 0 {
			homed = append(homed, k)
		}
	}
	for i, k := range homed {
		s.insert(k, maphash.String(x.seed, k), &entry{i})
	}
	overflow := homed[groupSlots]
	if g, _ := s.find(overflow, maphash.String(x.seed, overflow)); g != &s.groups[1] {
		t.Fatal("the ninth key did not overflow into group 1")
	}
	s.remove(s.find(homed[0], maphash.String(x.seed, homed[0])))
	if s.deleted != 1 {
		t.Fatalf("deleted = %d after a delete from a full group; want a marker", s.deleted)
	}
	if g, i := s.find(overflow, maphash.String(x.seed, overflow)); g == nil || g.slots[i].val.v != groupSlots {
		t.Fatal("the overflowed key is lost after a delete in its home group")
	}
	if g, _ := s.find(homed[0], maphash.String(x.seed, homed[0])); g != nil {
		t.Fatal("the deleted key is still found")
	}
	s.remove(s.find(overflow, maphash.String(x.seed, overflow)))
	if s.deleted != 1 {
		t.Fatalf("deleted = %d after a delete from a group with room; want no new marker", s.deleted)
	}
	r := s.rebuilt(x.seed, s.used)
	if r.deleted != 0 || r.used != groupSlots-1 {
		t.Fatalf("rebuilt: used %d, deleted %d; want %d, 0", r.used, r.deleted, groupSlots-1)
	}
	for i, k := range homed[1:groupSlots] {
		if g, j := r.find(k, maphash.String(x.seed, k)); g == nil || g.slots[j].val.v != i+1 {
			t.Fatalf("rebuilt: %q not found", k)
		}
	}
}
