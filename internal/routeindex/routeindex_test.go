package routeindex

import (
	"fmt"
	"maps"
	"math/rand/v2"
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
