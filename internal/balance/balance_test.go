package balance

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fake is a Candidate whose state a test sets directly.
type fake struct {
	id         string
	weight     atomic.Int64
	inFlight   atomic.Int64
	ineligible atomic.Bool
}

func (f *fake) ID() string      { return f.id }
func (f *fake) Weight() int     { return int(f.weight.Load()) }
func (f *fake) InFlight() int64 { return f.inFlight.Load() }
func (f *fake) Eligible() bool  { return !f.ineligible.Load() }

// targets returns candidates called a, b, c… with the given weights.
func targets(weights ...int) []Candidate {
	cs := make([]Candidate, len(weights))
	for i, w := range weights {
		f := &fake{id: name(i)}
		f.weight.Store(int64(w))
		cs[i] = f
	}
	return cs
}

func name(i int) string {
	if i < 26 {
		return string(rune('a' + i))
	}
	return fmt.Sprintf("t%d", i)
}

func fakeOf(c Candidate) *fake { return c.(*fake) }

// seeded returns a fixed random source, for sequences that cannot flake.
func seeded() rand.Source { return rand.NewPCG(1, 2) }

func mustNew(t testing.TB, policy, hashKey string) Selector {
	t.Helper()
	s, err := New(policy, hashKey, WithRand(seeded()))
	require.NoError(t, err)
	return s
}

// picks returns the names of n successive selections.
func picks(s Selector, r *http.Request, cs []Candidate, n int) string {
	var b strings.Builder
	for range n {
		i := s.Select(r, cs, Exclude{})
		if i < 0 {
			b.WriteByte('-')
			continue
		}
		b.WriteString(cs[i].ID())
	}
	return b.String()
}

// counts returns how often each target was chosen in n selections.
func counts(s Selector, r *http.Request, cs []Candidate, n int) map[string]int {
	got := map[string]int{}
	for range n {
		if i := s.Select(r, cs, Exclude{}); i >= 0 {
			got[cs[i].ID()]++
		} else {
			got["-"]++
		}
	}
	return got
}

var policies = []string{RoundRobin, LeastRequests, Random, Hash, First}

func hashKeyFor(policy string) string {
	if policy == Hash {
		return "header:X-User"
	}
	return ""
}

func keyedRequest(key string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://gw.test/", nil)
	if key != "" {
		r.Header.Set("X-User", key)
	}
	return r
}

func TestRoundRobinIsNginxSmoothWeighted(t *testing.T) {
	t.Run("weights 5 1 1 give a a b a c a a, round after round", func(t *testing.T) {
		s := NewRoundRobin()
		assert.Equal(t, "aabacaa"+"aabacaa"+"aabacaa", picks(s, nil, targets(5, 1, 1), 21))
	})
	t.Run("equal weights take turns", func(t *testing.T) {
		assert.Equal(t, "abcabc", picks(NewRoundRobin(), nil, targets(1, 1, 1), 6))
	})
	t.Run("weight 0 is drained and never picked", func(t *testing.T) {
		assert.Equal(t, "acacac", picks(NewRoundRobin(), nil, targets(1, 0, 1), 6))
	})
	t.Run("an ineligible target sits out and the rest keep their shares", func(t *testing.T) {
		cs := targets(2, 1, 1)
		fakeOf(cs[0]).ineligible.Store(true)
		assert.Equal(t, "bcbc", picks(NewRoundRobin(), nil, cs, 4))
	})
	t.Run("a change in the number of targets starts afresh", func(t *testing.T) {
		s := NewRoundRobin()
		picks(s, nil, targets(5, 1, 1), 3)
		assert.Equal(t, "abab", picks(s, nil, targets(1, 1), 4))
	})
	t.Run("a weight change is followed within a round", func(t *testing.T) {
		s := NewRoundRobin()
		cs := targets(1, 1)
		picks(s, nil, cs, 3)
		fakeOf(cs[0]).weight.Store(3)
		got := counts(s, nil, cs, 400)
		assert.InDelta(t, 300, got["a"], 2, "got %v", got)
	})
}

func TestEveryPolicy(t *testing.T) {
	for _, p := range policies {
		t.Run(p+" returns -1 when no target is eligible", func(t *testing.T) {
			s := mustNew(t, p, hashKeyFor(p))
			cs := targets(1, 2, 3)
			for _, c := range cs {
				fakeOf(c).ineligible.Store(true)
			}
			assert.Equal(t, -1, s.Select(keyedRequest("u1"), cs, Exclude{}))
			assert.Equal(t, -1, s.Select(keyedRequest(""), cs, Exclude{}))
		})
		t.Run(p+" returns -1 when every target is drained or there are none", func(t *testing.T) {
			s := mustNew(t, p, hashKeyFor(p))
			assert.Equal(t, -1, s.Select(keyedRequest("u1"), targets(0, 0, -1), Exclude{}))
			assert.Equal(t, -1, s.Select(keyedRequest("u1"), nil, Exclude{}))
		})
		t.Run(p+" never picks an ineligible or drained target", func(t *testing.T) {
			s := mustNew(t, p, hashKeyFor(p))
			cs := targets(1, 0, 1, 1)
			fakeOf(cs[2]).ineligible.Store(true)
			for k := range 500 {
				i := s.Select(keyedRequest(fmt.Sprint("u", k)), cs, Exclude{})
				require.Contains(t, []int{0, 3}, i)
			}
		})
		t.Run(p+" gives each retry another target until none is left", func(t *testing.T) {
			s := mustNew(t, p, hashKeyFor(p))
			cs := targets(3, 1, 2, 1)
			for k := range 50 {
				r := keyedRequest(fmt.Sprint("u", k))
				var tried Exclude
				for range cs {
					i := s.Select(r, cs, tried)
					require.GreaterOrEqual(t, i, 0)
					require.False(t, tried.Has(i), "picked %d again after %v", i, tried)
					tried.Add(i)
				}
				assert.Equal(t, -1, s.Select(r, cs, tried))
				assert.Equal(t, len(cs), tried.Len())
			}
		})
	}
}

func TestExcludeHoldsIndexesBeyondOneWord(t *testing.T) {
	var e Exclude
	for _, i := range []int{0, 63, 64, 130, -1} {
		e.Add(i)
	}
	for _, i := range []int{0, 63, 64, 130} {
		assert.True(t, e.Has(i), "index %d", i)
	}
	for _, i := range []int{-1, 1, 62, 65, 127, 129, 131, 1000} {
		assert.False(t, e.Has(i), "index %d", i)
	}
	assert.Equal(t, 4, e.Len())

	t.Run("a retry over 100 targets visits every one once", func(t *testing.T) {
		for _, p := range policies {
			s := mustNew(t, p, hashKeyFor(p))
			cs := targets(make([]int, 100)...)
			for _, c := range cs {
				fakeOf(c).weight.Store(1)
			}
			var tried Exclude
			for range cs {
				i := s.Select(keyedRequest("u"), cs, tried)
				require.False(t, tried.Has(i), "%s picked %d twice", p, i)
				tried.Add(i)
			}
			assert.Equal(t, -1, s.Select(keyedRequest("u"), cs, tried), p)
		}
	})
}

func TestLeastRequests(t *testing.T) {
	t.Run("of two targets the one with fewer in flight wins", func(t *testing.T) {
		s := mustNew(t, LeastRequests, "")
		cs := targets(1, 1)
		fakeOf(cs[0]).inFlight.Store(10)
		assert.Equal(t, "bbbbbbbbbb", picks(s, nil, cs, 10))
	})
	t.Run("in flight counts are weighed: 2 of weight 4 is less than 0 of weight 1", func(t *testing.T) {
		s := mustNew(t, LeastRequests, "")
		cs := targets(4, 1)
		fakeOf(cs[0]).inFlight.Store(2) // (2+1)/4 < (0+1)/1
		assert.Equal(t, "aaaaaaaaaa", picks(s, nil, cs, 10))
	})
	t.Run("the most loaded of three is never chosen", func(t *testing.T) {
		s := mustNew(t, LeastRequests, "")
		cs := targets(1, 1, 1)
		fakeOf(cs[0]).inFlight.Store(1)
		fakeOf(cs[1]).inFlight.Store(5)
		got := counts(s, nil, cs, 3000)
		assert.Zero(t, got["b"])
		// a wins against b and loses to c: 1/3 of the pairs; c wins 2/3.
		assert.InDelta(t, 1000, got["a"], 100, "got %v", got)
		assert.InDelta(t, 2000, got["c"], 100, "got %v", got)
	})
	t.Run("idle targets share the load evenly", func(t *testing.T) {
		s := mustNew(t, LeastRequests, "")
		got := counts(s, nil, targets(1, 1, 1), 30000)
		for _, id := range []string{"a", "b", "c"} {
			assert.InDelta(t, 10000, got[id], 500, "got %v", got)
		}
	})
	t.Run("with most targets unusable it still finds the usable ones", func(t *testing.T) {
		s := mustNew(t, LeastRequests, "")
		w := make([]int, 64)
		w[17], w[50] = 1, 1
		got := counts(s, nil, targets(w...), 1000)
		assert.Equal(t, 1000, got["r"]+got["t50"], "got %v", got)
		assert.InDelta(t, 500, got["r"], 100, "got %v", got)
	})
}

func TestRandomIsWeighted(t *testing.T) {
	s := mustNew(t, Random, "")
	got := counts(s, nil, targets(3, 1, 0, 4), 80000)
	assert.InDelta(t, 30000, got["a"], 800, "got %v", got)
	assert.InDelta(t, 10000, got["b"], 800, "got %v", got)
	assert.Zero(t, got["c"])
	assert.InDelta(t, 40000, got["d"], 800, "got %v", got)
}

func TestFirstIsPriorityOrder(t *testing.T) {
	s := mustNew(t, First, "")
	cs := targets(0, 1, 1)
	assert.Equal(t, "bbb", picks(s, nil, cs, 3), "a is drained")
	fakeOf(cs[1]).ineligible.Store(true)
	assert.Equal(t, "ccc", picks(s, nil, cs, 3), "b is ineligible")
	fakeOf(cs[1]).ineligible.Store(false)
	assert.Equal(t, "bbb", picks(s, nil, cs, 3), "b is back")
}

// TestRoundRobinSharesAreExactUnderConcurrency: 8 goroutines pick 7,000
// times in all; smooth WRR under its mutex hands out whole rounds, so the
// shares of weights 5 1 1 are exact.
func TestRoundRobinSharesAreExactUnderConcurrency(t *testing.T) {
	s := NewRoundRobin()
	cs := targets(5, 1, 1)
	var got [3]atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 875 {
				got[s.Select(nil, cs, Exclude{})].Add(1)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, [3]int64{5000, 1000, 1000}, [3]int64{got[0].Load(), got[1].Load(), got[2].Load()})
}

// TestEveryPolicyIsSafeForConcurrentUse runs each default-built policy from
// several goroutines while in-flight counts and eligibility change, for
// -race to check; every answer must be a usable index.
func TestEveryPolicyIsSafeForConcurrentUse(t *testing.T) {
	for _, p := range policies {
		t.Run(p, func(t *testing.T) {
			s, err := New(p, hashKeyFor(p)) // the runtime's random source
			require.NoError(t, err)
			cs := targets(1, 2, 3, 4)
			var bad, chosen atomic.Int64
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					for k := range 500 {
						if g == 0 && k%50 == 0 {
							f := fakeOf(cs[k/50%len(cs)])
							f.ineligible.Store(!f.ineligible.Load())
						}
						i := s.Select(keyedRequest(fmt.Sprint("u", k%7)), cs, Exclude{})
						if i < -1 || i >= len(cs) {
							bad.Add(1)
							continue
						}
						if i >= 0 {
							chosen.Add(1)
							fakeOf(cs[i]).inFlight.Add(1)
							fakeOf(cs[i]).inFlight.Add(-1)
						}
					}
				})
			}
			wg.Wait()
			assert.Positive(t, chosen.Load())
			assert.Zero(t, bad.Load(), "selections outside the targets")
		})
	}
}
