package balance

import (
	"math"
	"math/bits"
	"net/http"
)

// HashSelector is consistent hashing by weighted rendezvous (highest random
// weight) hashing: every usable target scores -weight/ln(u), u being a hash
// of the request's key and the target's ID mapped into (0, 1), and the
// highest score wins. A target's score depends only on the key and that
// target, so removing, draining or ejecting a target moves only the keys
// it held (each to its next best), and adding one moves keys only to it
// (TestHashMovesOnlyTheKeysOfTheTargetThatChanged). A target that is not
// usable for one request is passed over for the next in the same order,
// so a retry of a key also lands in a predictable place.
//
// When the request has no key (the header, cookie or query parameter is
// missing or empty), the target is chosen by weighted random, as Envoy's
// ring hash and Caddy's header policy do: a missing key has no affinity to
// keep, and random needs no shared state.
//
// Scoring costs a hash per target and, when the usable targets' weights
// differ, a logarithm; with equal weights the raw hashes are compared,
// which orders targets the same way. It is safe for concurrent use and
// takes no lock.
type HashSelector struct {
	// Key says where a request's key is read from.
	Key HashKey

	fallback RandomSelector
}

// Select implements Selector.
func (s *HashSelector) Select(r *http.Request, targets []Candidate, exclude Exclude) int {
	h, ok := s.Key.hash(r)
	if !ok {
		return s.fallback.Select(r, targets, exclude)
	}
	return rendezvous(h, targets, exclude)
}

// rendezvous returns the usable target with the highest score for the key
// hash h. While every usable target seen has the same weight it compares
// the hashes themselves (the score is increasing in the hash for a fixed
// weight); at the first different weight it switches to scores for the
// rest, which keeps the best so far. Equal scores fall back to the hash,
// so both ways break ties alike.
func rendezvous(h uint64, targets []Candidate, exclude Exclude) int {
	best, bestW := -1, 0
	var bestX uint64
	var bestScore float64
	scored := false
	for i, c := range targets {
		w := usable(c, i, exclude)
		if w == 0 {
			continue
		}
		x := mix(h, idHash(c.ID()))
		if best < 0 {
			best, bestW, bestX = i, w, x
			continue
		}
		if !scored && w != bestW {
			scored = true
			bestScore = score(bestX, bestW)
		}
		if !scored {
			if x > bestX {
				best, bestX = i, x
			}
			continue
		}
		if sc := score(x, w); sc > bestScore || (sc == bestScore && x > bestX) {
			best, bestW, bestX, bestScore = i, w, x, sc
		}
	}
	return best
}

// score is the weighted rendezvous score -w/ln(u) of the hash x, u being
// x's top 53 bits as a fraction strictly inside (0, 1).
func score(x uint64, w int) float64 {
	u := (float64(x>>11) + 0.5) / (1 << 53)
	return -float64(w) / math.Log(u)
}

// FNV-1a, 64 bits.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// stringHash is FNV-1a of s, without the allocation hash/fnv's interface
// would cost.
func stringHash(s string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// idHash hashes a target's ID eight bytes at a time: it runs once per
// target on every request, where FNV's byte loop cost about 20 ns for a
// host:port. It must stay deterministic (not hash/maphash, seeded per
// process) so that every gateway replica sends a key to the same target.
// mix spreads its bits.
func idHash(s string) uint64 {
	const k = 0x9e3779b97f4a7c15
	h := uint64(len(s)) * k
	for ; len(s) >= 8; s = s[8:] {
		w := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		h = bits.RotateLeft64((h^w)*k, 31)
	}
	var w uint64
	for i := len(s) - 1; i >= 0; i-- {
		w = w<<8 | uint64(s[i])
	}
	return (h ^ w) * k
}

// mix combines a key's hash and a target's into one well-spread hash.
// FNV alone spreads short, similar strings poorly in the high bits that
// score reads, hence the finaliser on both sides.
func mix(key, target uint64) uint64 {
	return fmix64(key ^ fmix64(target+0x9e3779b97f4a7c15))
}

// fmix64 is MurmurHash3's 64-bit finaliser: every input bit affects every
// output bit.
func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}
