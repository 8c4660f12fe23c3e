package ratelimit

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Unix(1_800_000_000, 0)

func TestBucketAdmitsTheBurstThenTheRate(t *testing.T) {
	b := NewBucket(NewLimit(10, 3)) // 10/s: one request every 100ms, 3 at once
	for i := 2; i >= 0; i-- {
		d := b.Allow(t0)
		require.True(t, d.Allowed)
		assert.Equal(t, i, d.Remaining)
	}
	d := b.Allow(t0)
	assert.False(t, d.Allowed, "the fourth at once")
	assert.Equal(t, 100*time.Millisecond, d.RetryAfter)
	assert.Equal(t, 300*time.Millisecond, d.Reset, "full again after three intervals")

	d = b.Allow(t0.Add(99 * time.Millisecond))
	assert.False(t, d.Allowed, "not yet")
	assert.Equal(t, time.Millisecond, d.RetryAfter)
	d = b.Allow(t0.Add(100 * time.Millisecond))
	assert.True(t, d.Allowed, "one interval later, one more")
	assert.Equal(t, 0, d.Remaining)

	d = b.Allow(t0.Add(10 * time.Second))
	assert.True(t, d.Allowed)
	assert.Equal(t, 2, d.Remaining, "long idle: full again, not more than full")
}

func TestBucketIsExactUnderConcurrency(t *testing.T) {
	b := NewBucket(NewLimit(1, 50))
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if b.Allow(t0).Allowed {
					mu.Lock()
					admitted++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 50, admitted, "exactly the burst at one instant")
}

func TestLimitWindow(t *testing.T) {
	assert.Equal(t, time.Second, NewLimit(100, 100).Window())
	assert.Equal(t, 2*time.Second, NewLimit(10, 20).Window())
	assert.Equal(t, 2*time.Second, NewLimit(0.5, 1).Window())
	assert.Equal(t, time.Second, NewLimit(1000, 1).Window(), "at least a second")
	assert.Equal(t, 1, NewLimit(5, 0).Burst(), "a burst of at least one")
}

func TestKeyedLimitsEachKeyAlone(t *testing.T) {
	k := NewKeyed(NewLimit(1, 2), 6400)
	for range 2 {
		assert.True(t, k.Allow("a", t0).Allowed)
	}
	assert.False(t, k.Allow("a", t0).Allowed, "a's third")
	assert.True(t, k.Allow("b", t0).Allowed, "b has its own bucket")
}

func TestKeyedMemoryIsBounded(t *testing.T) {
	const maxKeys = 6400
	k := NewKeyed(NewLimit(1, 1), maxKeys)
	assert.Equal(t, maxKeys, k.MaxKeys())
	for i := range 10 * maxKeys {
		k.Allow("client-"+strconv.Itoa(i), t0)
	}
	assert.Equal(t, maxKeys, k.Keys(), "10x more keys than max_keys: the bound holds")

	t.Run("the least recently seen key is forgotten, a recent one kept", func(t *testing.T) {
		k := NewKeyed(NewLimit(1, 1), 64) // one key per shard
		require.True(t, k.Allow("kept", t0).Allowed)
		// Keys that land in kept's shard push it out only if it is the
		// least recently seen there; touching it first keeps it.
		require.False(t, k.Allow("kept", t0).Allowed, "kept's bucket is empty")
		forgotten := 0
		for i := 0; forgotten == 0 && i < 10_000; i++ {
			key := "other-" + strconv.Itoa(i)
			k.Allow(key, t0)
			if k.Allow("kept", t0).Allowed {
				forgotten = i
			}
		}
		assert.NotZero(t, forgotten, "a key of kept's shard forgot it: its bucket was full again")
	})
}

func TestKeyedAllocatesNothingOnceFull(t *testing.T) {
	k := NewKeyed(NewLimit(1, 1), 64)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
		k.Allow(keys[i], t0)
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		k.Allow(keys[i%len(keys)], t0)
		i++
	})
	assert.Zero(t, allocs, "a forgotten key's entry is reused")
}

func BenchmarkBucket(b *testing.B) {
	bk := NewBucket(NewLimit(1e9, 1e9))
	now := time.Now()
	for b.Loop() {
		bk.Allow(now)
	}
}

func BenchmarkKeyed(b *testing.B) {
	k := NewKeyed(NewLimit(1e9, 1e9), 100_000)
	now := time.Now()
	for b.Loop() {
		k.Allow("203.0.113.7", now)
	}
}

func TestPeekTakesNothing(t *testing.T) {
	b := NewBucket(NewLimit(1, 1))
	for range 3 {
		assert.True(t, b.Peek(t0).Allowed)
	}
	assert.True(t, b.Allow(t0).Allowed)
	assert.False(t, b.Peek(t0).Allowed)

	k := NewKeyed(NewLimit(1, 1), 64)
	assert.True(t, k.Peek("a", t0).Allowed)
	assert.Zero(t, k.Keys(), "peeking remembers no key")
	k.Allow("a", t0)
	assert.False(t, k.Peek("a", t0).Allowed)
}
