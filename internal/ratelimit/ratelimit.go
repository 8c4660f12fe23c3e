// Package ratelimit is the gateway's rate limiter: GCRA (the generic cell
// rate algorithm, a token bucket kept as one timestamp), for a whole
// endpoint or per key with a bounded number of keys.
//
// failsafe-go has a rate limiter, but it reports neither the tokens left
// nor when the bucket is full again, which the RateLimit response headers
// need, and it has no keyed form; a GCRA is one int64 per bucket, which is
// what makes a hundred thousand keys cheap. One algorithm serves both
// forms, so that a limit reads the same whether it is keyed or not.
package ratelimit

import (
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Limit is requests per second with a burst: Burst requests may arrive at
// once, and the bucket refills at Rate.
type Limit struct {
	interval int64 // nanoseconds per request at the rate
	burst    int64
}

// NewLimit returns the limit of rate requests per second and burst (at
// least 1).
func NewLimit(rate float64, burst int) Limit {
	interval := int64(math.Round(float64(time.Second) / rate))
	return Limit{interval: max(interval, 1), burst: int64(max(burst, 1))}
}

// Burst is the number of requests the full bucket admits at once.
func (l Limit) Burst() int { return int(l.burst) }

// Window is the time the bucket takes to refill from empty, rounded up to
// a whole second: the window of the RateLimit-Policy header.
func (l Limit) Window() time.Duration {
	w := time.Duration(l.interval * l.burst)
	return (w + time.Second - 1).Truncate(time.Second)
}

// Decision is one request's admission.
type Decision struct {
	// Allowed is false when the request is over the limit.
	Allowed bool
	// Remaining is the requests the bucket admits right after this one.
	Remaining int
	// Reset is how long until the bucket is full again.
	Reset time.Duration
	// RetryAfter is, for a refused request, how long until one is admitted.
	RetryAfter time.Duration
}

// decide runs GCRA on the theoretical arrival time tat (the time at which
// the bucket is full again) and returns the new one: a request is admitted
// when, once it is counted, the bucket is not over full by more than
// burst requests.
func (l Limit) decide(tat, now int64) (int64, Decision) {
	next := max(tat, now) + l.interval
	allowAt := next - l.burst*l.interval
	if now < allowAt {
		return tat, Decision{Reset: time.Duration(max(tat-now, 0)), RetryAfter: time.Duration(allowAt - now)}
	}
	remaining := (now + l.burst*l.interval - next) / l.interval
	return next, Decision{Allowed: true, Remaining: int(remaining), Reset: time.Duration(next - now)}
}

// Bucket is one limit for all requests: lock-free.
type Bucket struct {
	limit Limit
	tat   atomic.Int64
}

// NewBucket returns a full bucket.
func NewBucket(l Limit) *Bucket { return &Bucket{limit: l} }

// Limit returns the bucket's limit.
func (b *Bucket) Limit() Limit { return b.limit }

// Peek says whether a request at now would be admitted, taking nothing.
func (b *Bucket) Peek(now time.Time) Decision {
	_, d := b.limit.decide(b.tat.Load(), now.UnixNano())
	return d
}

// Allow admits a request at now or not.
func (b *Bucket) Allow(now time.Time) Decision {
	n := now.UnixNano()
	for {
		old := b.tat.Load()
		tat, d := b.limit.decide(old, n)
		if !d.Allowed || b.tat.CompareAndSwap(old, tat) {
			return d
		}
	}
}

// shards splits a keyed limiter's keys, so that requests of different
// keys rarely wait for one another.
const shards = 64

// Keyed is one limit per key, for at most MaxKeys keys: past that, the
// least recently seen key of a shard is forgotten (and would start again
// with a full bucket). Keys are spread over 64 shards of MaxKeys/64 keys
// each (at least one), each forgetting its own least recently seen key,
// so the bound is exact and the order of forgetting is nearly global.
type Keyed struct {
	limit    Limit
	perShard int
	seed     maphash.Seed
	shards   [shards]keyShard
}

type keyShard struct {
	mu sync.Mutex
	// m is by the key's 64-bit hash: a key is never stored, so that a
	// client sending megabyte header values costs no more than any other
	// (two keys sharing a hash would share a bucket: about one chance in
	// 10^14 among a hundred thousand keys).
	m map[uint64]*keyEntry
	// head is the most recently seen key, tail the least: a ring of
	// entries in the order they were seen.
	head, tail *keyEntry
	// spare is an entry kept from the last forgotten key, for the next.
	spare *keyEntry
}

type keyEntry struct {
	key        uint64
	tat        int64
	prev, next *keyEntry
}

// NewKeyed returns a keyed limiter of at most maxKeys keys (rounded down
// to a multiple of 64, at least 64).
func NewKeyed(l Limit, maxKeys int) *Keyed {
	k := &Keyed{limit: l, perShard: max(maxKeys/shards, 1), seed: maphash.MakeSeed()}
	for i := range k.shards {
		k.shards[i].m = make(map[uint64]*keyEntry)
	}
	return k
}

// Limit returns the limiter's limit.
func (k *Keyed) Limit() Limit { return k.limit }

// MaxKeys is the most keys the limiter remembers.
func (k *Keyed) MaxKeys() int { return k.perShard * shards }

// Keys counts the keys remembered now.
func (k *Keyed) Keys() int {
	n := 0
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// Peek says whether a request of key at now would be admitted, taking
// nothing and remembering no new key.
func (k *Keyed) Peek(key string, now time.Time) Decision {
	h := maphash.String(k.seed, key)
	s := &k.shards[h%shards]
	s.mu.Lock()
	defer s.mu.Unlock()
	var tat int64
	if e := s.m[h]; e != nil {
		tat = e.tat
	}
	_, d := k.limit.decide(tat, now.UnixNano())
	return d
}

// Allow admits a request of key at now or not.
func (k *Keyed) Allow(key string, now time.Time) Decision {
	h := maphash.String(k.seed, key)
	s := &k.shards[h%shards]
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[h]
	if e == nil {
		e = s.add(h, k.perShard)
	} else {
		s.touch(e)
	}
	tat, d := k.limit.decide(e.tat, now.UnixNano())
	e.tat = tat
	return d
}

// add remembers key as the most recently seen, forgetting the least
// recently seen key first when the shard is full.
func (s *keyShard) add(key uint64, capacity int) *keyEntry {
	if len(s.m) >= capacity {
		old := s.tail
		s.unlink(old)
		delete(s.m, old.key)
		*old = keyEntry{}
		s.spare = old
	}
	e := s.spare
	if e != nil {
		s.spare = nil
	} else {
		e = &keyEntry{}
	}
	e.key = key
	s.m[key] = e
	s.pushFront(e)
	return e
}

func (s *keyShard) touch(e *keyEntry) {
	if s.head == e {
		return
	}
	s.unlink(e)
	s.pushFront(e)
}

func (s *keyShard) pushFront(e *keyEntry) {
	e.prev, e.next = nil, s.head
	if s.head != nil {
		s.head.prev = e
	}
	s.head = e
	if s.tail == nil {
		s.tail = e
	}
}

func (s *keyShard) unlink(e *keyEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = nil, nil
}
