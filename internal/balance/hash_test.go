package balance

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// owners maps each of n keys to the ID of the target the selector gives it.
func owners(t *testing.T, s Selector, cs []Candidate, n int) []string {
	t.Helper()
	out := make([]string, n)
	for k := range out {
		i := s.Select(keyedRequest(fmt.Sprint("user-", k)), cs, Exclude{})
		require.GreaterOrEqual(t, i, 0)
		out[k] = cs[i].ID()
	}
	return out
}

// TestHashMovesOnlyTheKeysOfTheTargetThatChanged is the consistency the
// issue asks for, over 10,000 keys: removing, draining or ejecting target k
// moves only the keys that were on k; adding a target moves keys only to it.
func TestHashMovesOnlyTheKeysOfTheTargetThatChanged(t *testing.T) {
	const keys = 10000
	s := mustNew(t, Hash, "header:X-User")
	cs := targets(1, 2, 1, 3, 1)
	before := owners(t, s, cs, keys)

	check := func(t *testing.T, after []string, gone string) {
		t.Helper()
		moved := 0
		for k := range before {
			if before[k] == gone {
				assert.NotEqual(t, gone, after[k], "key %d stayed on %s", k, gone)
				moved++
				continue
			}
			assert.Equal(t, before[k], after[k], "key %d moved off %s, which did not change", k, before[k])
		}
		assert.Positive(t, moved, "no key was on %s", gone)
	}

	t.Run("removing a target moves only its keys", func(t *testing.T) {
		without := append(append([]Candidate{}, cs[:3]...), cs[4:]...) // d removed
		check(t, owners(t, s, without, keys), "d")
	})
	t.Run("draining a target (weight 0) moves only its keys", func(t *testing.T) {
		fakeOf(cs[1]).weight.Store(0)
		defer fakeOf(cs[1]).weight.Store(2)
		check(t, owners(t, s, cs, keys), "b")
	})
	t.Run("an ineligible target's keys go to their next target; the rest stay", func(t *testing.T) {
		fakeOf(cs[0]).ineligible.Store(true)
		defer fakeOf(cs[0]).ineligible.Store(false)
		check(t, owners(t, s, cs, keys), "a")
	})
	t.Run("adding a target moves keys only to it", func(t *testing.T) {
		with := append(append([]Candidate{}, cs...), targets(1, 1, 1, 1, 1, 2)[5]) // f, weight 2
		after := owners(t, s, with, keys)
		gained := 0
		for k := range before {
			if after[k] != before[k] {
				assert.Equal(t, "f", after[k], "key %d moved from %s to %s", k, before[k], after[k])
				gained++
			}
		}
		// f holds 2/10 of the weight: about 2,000 keys.
		assert.InDelta(t, 2000, gained, 300)
	})
	t.Run("the order of the targets does not matter", func(t *testing.T) {
		reversed := make([]Candidate, len(cs))
		for i, c := range cs {
			reversed[len(cs)-1-i] = c
		}
		assert.Equal(t, before, owners(t, s, reversed, keys))
	})
}

func TestHashSpreadsKeysByWeight(t *testing.T) {
	s := mustNew(t, Hash, "header:X-User")
	got := map[string]int{}
	for _, id := range owners(t, s, targets(1, 2, 3), 60000) {
		got[id]++
	}
	assert.InDelta(t, 10000, got["a"], 600, "got %v", got)
	assert.InDelta(t, 20000, got["b"], 600, "got %v", got)
	assert.InDelta(t, 30000, got["c"], 600, "got %v", got)

	t.Run("equal weights too", func(t *testing.T) {
		got := map[string]int{}
		for _, id := range owners(t, s, targets(1, 1, 1, 1), 40000) {
			got[id]++
		}
		for _, id := range []string{"a", "b", "c", "d"} {
			assert.InDelta(t, 10000, got[id], 500, "got %v", got)
		}
	})
}

func TestHashWithoutAKeyFallsBackToWeightedRandom(t *testing.T) {
	s := mustNew(t, Hash, "header:X-User")
	cs := targets(3, 1, 0)
	got := counts(s, keyedRequest(""), cs, 40000)
	assert.InDelta(t, 30000, got["a"], 800, "got %v", got)
	assert.InDelta(t, 10000, got["b"], 800, "got %v", got)
	assert.Zero(t, got["c"])
}

func TestHashKeySources(t *testing.T) {
	cs := targets(1, 1, 1, 1, 1, 1, 1, 1)
	req := func(mod func(r *http.Request)) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "http://gw.test/", nil)
		mod(r)
		return r
	}
	tests := []struct {
		key string
		// same are requests that must all reach one target, as they carry
		// the same key.
		same []*http.Request
		// missing carries no key.
		missing *http.Request
	}{{
		key: "header:x-user-id",
		same: []*http.Request{
			req(func(r *http.Request) { r.Header.Set("X-User-Id", "alice") }),
			req(func(r *http.Request) { r.Header["X-User-Id"] = []string{"alice", "bob"} }),
		},
		missing: req(func(r *http.Request) { r.Header.Set("X-User-Id", "") }),
	}, {
		key: "cookie:session",
		same: []*http.Request{
			req(func(r *http.Request) { r.Header.Set("Cookie", "session=alice") }),
			req(func(r *http.Request) { r.Header.Set("Cookie", `theme=dark; session="alice"; x=1`) }),
			req(func(r *http.Request) { r.Header["Cookie"] = []string{"theme=dark", "session=alice"} }),
		},
		missing: req(func(r *http.Request) { r.Header.Set("Cookie", "sessionid=alice; xsession=alice") }),
	}, {
		key: "query:user name",
		same: []*http.Request{
			req(func(r *http.Request) { r.URL.RawQuery = "user+name=alice+smith" }),
			req(func(r *http.Request) { r.URL.RawQuery = "a=1&user%20name=alice%20smith&user+name=bob" }),
		},
		missing: req(func(r *http.Request) { r.URL.RawQuery = "username=alice+smith&user+name=" }),
	}, {
		key: "client_ip",
		same: []*http.Request{
			req(func(r *http.Request) { r.RemoteAddr = "[2001:db8::1]:40000" }),
			req(func(r *http.Request) { r.RemoteAddr = "[2001:db8::1]:40001" }),
			req(func(r *http.Request) { r.RemoteAddr = "2001:db8::1" }),
		},
		missing: req(func(r *http.Request) { r.RemoteAddr = "" }),
	}}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			k, err := ParseHashKey(tt.key)
			require.NoError(t, err)
			want, ok := k.hash(tt.same[0])
			require.True(t, ok, "the first request has a key")
			for i, r := range tt.same[1:] {
				got, ok := k.hash(r)
				assert.True(t, ok, "request %d has a key", i+1)
				assert.Equal(t, want, got, "request %d hashes as the first", i+1)
			}
			_, ok = k.hash(tt.missing)
			assert.False(t, ok, "a request without the key")

			s := &HashSelector{Key: k}
			first := s.Select(tt.same[0], cs, Exclude{})
			for _, r := range tt.same {
				assert.Equal(t, first, s.Select(r, cs, Exclude{}))
			}
		})
	}
	t.Run("different values spread over the targets", func(t *testing.T) {
		k, err := ParseHashKey("client_ip")
		require.NoError(t, err)
		seen := map[int]bool{}
		for i := range 200 {
			r := req(func(r *http.Request) { r.RemoteAddr = fmt.Sprintf("10.0.%d.%d:1234", i/250, i%250) })
			seen[(&HashSelector{Key: k}).Select(r, cs, Exclude{})] = true
		}
		assert.Len(t, seen, len(cs))
	})
}

func TestParseHashKey(t *testing.T) {
	for in, want := range map[string]HashKey{
		"header:x-user-id": {Source: FromHeader, Name: "X-User-Id"},
		"cookie:SID":       {Source: FromCookie, Name: "SID"},
		"query:user":       {Source: FromQuery, Name: "user"},
		"client_ip":        {Source: FromClientIP},
	} {
		got, err := ParseHashKey(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	assert.Equal(t, "header:X-User-Id", HashKey{Source: FromHeader, Name: "X-User-Id"}.String())

	for in, want := range map[string]string{
		"":                `"": unknown source ""; want header:NAME, cookie:NAME, query:NAME or client_ip`,
		"hedder:X":        `"hedder:X": unknown source "hedder"; want header:NAME`,
		"Header:X":        `unknown source "Header"`,
		"header":          `"header": the header name is empty`,
		"cookie:":         `"cookie:": the cookie name is empty`,
		"header:X User":   `"header:X User": header name "X User" has an invalid character ' '`,
		"cookie:a=b":      `cookie name "a=b" has an invalid character '='`,
		"query:a&b":       `query name "a&b" has an invalid character '&'`,
		"query:a\tb":      `query name "a\tb" has an invalid character '\t'`,
		"client_ip:v4":    `"client_ip:v4": client_ip takes no name`,
		"client_ip_addr:": `unknown source "client_ip_addr"`,
	} {
		_, err := ParseHashKey(in)
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), want, in)
	}
}

func TestNewNamesTheField(t *testing.T) {
	for _, tt := range []struct{ policy, key, want string }{
		{"round-robin", "", `load_balancing.policy: unknown policy "round-robin"; want round_robin, least_requests, random, hash or first`},
		{"hash", "", `load_balancing.hash_key: required by policy "hash"`},
		{"hash", "header:", `load_balancing.hash_key: "header:": the header name is empty`},
		{"random", "client_ip", `load_balancing.hash_key: "client_ip" is only used by policy "hash", not "random"`},
		{"", "client_ip", `not "round_robin"`},
	} {
		_, err := New(tt.policy, tt.key)
		require.Error(t, err, "%s %s", tt.policy, tt.key)
		assert.Contains(t, err.Error(), tt.want)
	}

	for policy, want := range map[string]Selector{
		"":            &RoundRobinSelector{},
		RoundRobin:    &RoundRobinSelector{},
		LeastRequests: &LeastRequestsSelector{},
		Random:        &RandomSelector{},
		First:         FirstSelector{},
		Hash:          &HashSelector{},
	} {
		s, err := New(policy, hashKeyFor(policy))
		require.NoError(t, err, policy)
		assert.IsType(t, want, s, policy)
	}
}
