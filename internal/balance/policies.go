package balance

import (
	"math/rand/v2"
	"net/http"
	"sync"
)

// Interface guards: each policy is a Selector.
var (
	_ Selector = (*RoundRobinSelector)(nil)
	_ Selector = (*LeastRequestsSelector)(nil)
	_ Selector = (*RandomSelector)(nil)
	_ Selector = (*HashSelector)(nil)
	_ Selector = FirstSelector{}
)

// RoundRobinSelector is smooth weighted round robin, nginx's algorithm
// (ngx_http_upstream_get_peer): each pick adds every usable target's weight
// to its current weight, takes the target with the highest, and subtracts
// the total from it. Weights 5, 1, 1 give a a b a c a a: the heavy target's
// turns are spread out rather than sent in a burst of five.
//
// A target that is not usable (ineligible, drained, excluded) sits the pick
// out, as a down or tried peer does in nginx. The state is per index, sized
// on the first Select and reset when the number of targets changes; a
// change of weights needs no reset, the algorithm follows it within a round.
//
// The zero value is ready to use. It is safe for concurrent use: a mutex
// guards the current weights, held for one pass over the targets (a
// lock-free variant would need the whole vector updated at once). It must
// not be copied after first use.
type RoundRobinSelector struct {
	mu      sync.Mutex
	current []int64
}

// NewRoundRobin returns a smooth weighted round robin Selector.
func NewRoundRobin() *RoundRobinSelector { return &RoundRobinSelector{} }

// Select implements Selector.
func (s *RoundRobinSelector) Select(_ *http.Request, targets []Candidate, exclude Exclude) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.current) != len(targets) {
		s.current = make([]int64, len(targets))
	}
	best := -1
	var total int64
	for i, c := range targets {
		w := int64(usable(c, i, exclude))
		if w == 0 {
			continue
		}
		s.current[i] += w
		total += w
		if best < 0 || s.current[i] > s.current[best] {
			best = i
		}
	}
	if best >= 0 {
		s.current[best] -= total
	}
	return best
}

// LeastRequestsSelector is least requests by the power of two choices:
// draw two distinct usable targets at random and take the one with fewer
// requests in flight per unit of weight, (in_flight+1)/weight. The +1 (Envoy's
// active_request_bias of 1) lets weights matter on an idle endpoint, where
// every in-flight count is zero. Two random choices avoid the herd that
// always picking the global least sends to one target, and cost O(1) when
// most targets are usable.
//
// It is safe for concurrent use and takes no lock.
type LeastRequestsSelector struct {
	rand rand.Source
}

// samples is how many random indexes LeastRequestsSelector draws looking
// for a usable target before it counts them; with half the targets
// unusable, eight draws all miss one time in 256.
const samples = 8

// Select implements Selector.
func (s *LeastRequestsSelector) Select(_ *http.Request, targets []Candidate, exclude Exclude) int {
	src := s.rand
	if src == nil {
		src = runtimeSource{}
	}
	a, wa := sample(src, targets, exclude, -1)
	if a < 0 || len(targets) == 1 {
		return a // one target: no second to draw, so skip the draws that would miss
	}
	b, wb := sample(src, targets, exclude, a)
	if b < 0 {
		return a
	}
	// a is less loaded when (ia+1)/wa <= (ib+1)/wb; multiplied out to
	// stay in integers.
	la := (targets[a].InFlight() + 1) * int64(wb)
	lb := (targets[b].InFlight() + 1) * int64(wa)
	if la <= lb {
		return a
	}
	return b
}

// sample returns a usable target other than not, chosen uniformly, and its
// weight, or -1. Rejection sampling over random indexes is uniform over the
// usable ones; after `samples` misses it counts them instead.
func sample(src rand.Source, targets []Candidate, exclude Exclude, not int) (int, int) {
	n := uint64(len(targets))
	if n == 0 {
		return -1, 0
	}
	for range samples {
		i := int(below(src, n))
		if i == not {
			continue
		}
		if w := usable(targets[i], i, exclude); w > 0 {
			return i, w
		}
	}
	var m uint64
	for i, c := range targets {
		if i != not && usable(c, i, exclude) > 0 {
			m++
		}
	}
	if m == 0 {
		return -1, 0
	}
	k := below(src, m)
	for i, c := range targets {
		w := usable(c, i, exclude)
		if i == not || w == 0 {
			continue
		}
		if k == 0 {
			return i, w
		}
		k--
	}
	return -1, 0 // targets became unusable between the passes
}

// RandomSelector is weighted random: each usable target is chosen with
// probability weight/total. It is safe for concurrent use and takes no lock.
type RandomSelector struct {
	rand rand.Source
}

// Select implements Selector.
func (s RandomSelector) Select(_ *http.Request, targets []Candidate, exclude Exclude) int {
	src := s.rand
	if src == nil {
		src = runtimeSource{}
	}
	var total uint64
	for i, c := range targets {
		total += uint64(usable(c, i, exclude))
	}
	if total == 0 {
		return -1
	}
	k := below(src, total)
	last := -1
	for i, c := range targets {
		w := uint64(usable(c, i, exclude))
		if w == 0 {
			continue
		}
		if k < w {
			return i
		}
		k -= w
		last = i
	}
	return last // weights fell between the passes
}

// FirstSelector takes the first usable target in the order given: priority
// order, the rest being standbys. It is stateless and safe for concurrent
// use.
type FirstSelector struct{}

// Select implements Selector.
func (FirstSelector) Select(_ *http.Request, targets []Candidate, exclude Exclude) int {
	for i, c := range targets {
		if usable(c, i, exclude) > 0 {
			return i
		}
	}
	return -1
}
