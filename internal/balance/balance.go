// Package balance holds the algorithms that choose one of an endpoint's
// targets for a request: smooth weighted round robin, least requests (power
// of two choices), weighted random, consistent hashing and priority order.
//
// The package knows nothing of the gateway. A target is whatever implements
// [Candidate]; its health, ejection, breaker and in-flight count are the
// caller's, and reach a [Selector] only as Eligible, Weight and InFlight.
// That keeps the interface small enough for an embedder to implement their
// own policy, and lets the root package expose it unchanged.
//
// Every Selector here is safe for concurrent use, and Select allocates
// nothing (BenchmarkSelect), so balancing adds no allocation per request.
package balance

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/http"
)

// Candidate is one target as a Selector sees it. The caller implements it
// over its own per-target state; every method may be called from many
// goroutines at once and should be cheap (an atomic load), as a Select calls
// them for every target.
type Candidate interface {
	// ID is the target's stable identity: the hash policy hashes it, so a
	// target keeps its keys across reloads as long as its ID is unchanged.
	ID() string
	// Weight is the target's share of traffic relative to the others.
	// Zero means drained: the target is never selected. Negative counts
	// as zero.
	Weight() int
	// InFlight is the number of requests the target is serving now (an
	// atomic counter the caller owns). Only least_requests reads it.
	InFlight() int64
	// Eligible reports whether the target may take a new request: not
	// unhealthy by probes, not ejected, breaker not open. A caller in panic
	// mode reports every target eligible.
	Eligible() bool
}

// Selector chooses the target for a request.
type Selector interface {
	// Select returns the index in targets of the target r goes to, or -1
	// when no target is eligible: none has Eligible true, a weight above
	// zero and an index outside exclude. A retry passes the indexes it
	// has already tried in exclude, to get another target where there is
	// one. Select must not modify r or targets, and is safe for concurrent
	// use.
	Select(r *http.Request, targets []Candidate, exclude Exclude) int
}

// Exclude is a set of target indexes a Select must skip, the targets a
// retry has already tried. The zero value is the empty set. Indexes below
// 64 are held in a word, so a retry loop over up to 64 targets allocates
// nothing; a larger index allocates once, in Add.
type Exclude struct {
	low  uint64
	high []uint64 // bit i-64 of high's words for indexes from 64 up
}

// Add puts index i in the set. A negative i is ignored, so a caller can
// add the result of a Select that found nothing.
func (e *Exclude) Add(i int) {
	switch {
	case i < 0:
	case i < 64:
		e.low |= 1 << uint(i)
	default:
		w := (i - 64) / 64
		if w >= len(e.high) {
			high := make([]uint64, w+1)
			copy(high, e.high)
			e.high = high
		}
		e.high[w] |= 1 << uint((i-64)%64)
	}
}

// Has reports whether index i is in the set.
func (e Exclude) Has(i int) bool {
	switch {
	case i < 0:
		return false
	case i < 64:
		return e.low&(1<<uint(i)) != 0
	default:
		w := (i - 64) / 64
		return w < len(e.high) && e.high[w]&(1<<uint((i-64)%64)) != 0
	}
}

// Len is the number of indexes in the set.
func (e Exclude) Len() int {
	n := bits.OnesCount64(e.low)
	for _, w := range e.high {
		n += bits.OnesCount64(w)
	}
	return n
}

// usable is the one definition of a target a Select may choose: eligible,
// not drained, not already tried. It returns the weight to use, 0 when the
// target may not be chosen.
func usable(c Candidate, i int, exclude Exclude) int {
	if exclude.Has(i) || !c.Eligible() {
		return 0
	}
	return max(c.Weight(), 0)
}

// The policy names New accepts, as the load_balancing.policy field spells
// them.
const (
	RoundRobin    = "round_robin"
	LeastRequests = "least_requests"
	Random        = "random"
	Hash          = "hash"
	First         = "first"
)

// Option changes how New builds a Selector.
type Option func(*options)

type options struct {
	rand rand.Source
}

// WithRand makes the random policies (least_requests, random, and hash when
// the key is missing) draw from src instead of math/rand/v2's per-goroutine
// generator, which takes no lock. Tests use it for fixed sequences. src must
// be safe for concurrent use if the Selector is used from several
// goroutines; a *rand.PCG is not.
func WithRand(src rand.Source) Option {
	return func(o *options) { o.rand = src }
}

// New returns the Selector for a load_balancing section: policy is one of
// round_robin (the default when empty), least_requests, random, hash and
// first; hashKey is the hash policy's key (see ParseHashKey) and must be
// empty for the others. Errors name the field at fault.
func New(policy, hashKey string, opts ...Option) (Selector, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	src := o.rand
	if src == nil {
		src = runtimeSource{}
	}
	if policy != Hash && hashKey != "" {
		return nil, fmt.Errorf("load_balancing.hash_key: %q is only used by policy %q, not %q", hashKey, Hash, policyOrDefault(policy))
	}
	switch policy {
	case "", RoundRobin:
		return NewRoundRobin(), nil
	case LeastRequests:
		return &LeastRequestsSelector{rand: src}, nil
	case Random:
		return &RandomSelector{rand: src}, nil
	case First:
		return FirstSelector{}, nil
	case Hash:
		if hashKey == "" {
			return nil, fmt.Errorf("load_balancing.hash_key: required by policy %q", Hash)
		}
		key, err := ParseHashKey(hashKey)
		if err != nil {
			return nil, fmt.Errorf("load_balancing.hash_key: %w", err)
		}
		return &HashSelector{Key: key, fallback: RandomSelector{rand: src}}, nil
	default:
		return nil, fmt.Errorf("load_balancing.policy: unknown policy %q; want %s, %s, %s, %s or %s",
			policy, RoundRobin, LeastRequests, Random, Hash, First)
	}
}

func policyOrDefault(p string) string {
	if p == "" {
		return RoundRobin
	}
	return p
}

// runtimeSource is math/rand/v2's top-level generator as a rand.Source:
// per-goroutine state in the runtime, no lock, no allocation.
type runtimeSource struct{}

func (runtimeSource) Uint64() uint64 { return rand.Uint64() }

// below returns a number in [0, n) from src, n > 0, by Lemire's multiply
// and shift; the bias for n far below 2^64 is negligible for balancing.
func below(src rand.Source, n uint64) uint64 {
	hi, _ := bits.Mul64(src.Uint64(), n)
	return hi
}
