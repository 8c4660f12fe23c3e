package balance

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func stickyRequest(cookie string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if cookie != "" {
		r.Header.Set("Cookie", "other=1; "+cookie)
	}
	return r
}

func TestStickyPinsAClientToItsTarget(t *testing.T) {
	cs := targets(1, 1, 1)
	s := NewSticky(StickyOptions{Cookie: "lb", MaxAge: time.Hour, Secure: true, HTTPOnly: true, SameSite: http.SameSiteLaxMode, Path: "/orchestrator/svc"}, cs)
	rr := NewRoundRobin()

	// A first request has no cookie: balanced, and told its target.
	first := stickyRequest("")
	require.Equal(t, -1, s.Pick(first, cs, Exclude{}))
	i := rr.Select(first, cs, Exclude{})
	set := s.SetCookie(i)
	for _, attr := range []string{"lb=", "Max-Age=3600", "Secure", "HttpOnly", "SameSite=Lax", "Path=/orchestrator/svc"} {
		assert.Contains(t, set, attr)
	}
	cookie, _, _ := strings.Cut(set, ";")
	assert.Regexp(t, `^lb=[0-9a-f]{16}$`, cookie, "the value is an opaque hash, not the target's id or address")

	// Later requests with the cookie all go to it, whatever round robin says.
	for range 20 {
		r := stickyRequest(cookie)
		assert.Equal(t, i, s.Pick(r, cs, Exclude{}))
		assert.True(t, s.Has(r, i), "no new cookie is needed")
		rr.Select(r, cs, Exclude{})
	}

	// Its target ejected, drained or already tried: balanced as usual.
	fakeOf(cs[i]).ineligible.Store(true)
	assert.Equal(t, -1, s.Pick(stickyRequest(cookie), cs, Exclude{}))
	fakeOf(cs[i]).ineligible.Store(false)
	fakeOf(cs[i]).weight.Store(0)
	assert.Equal(t, -1, s.Pick(stickyRequest(cookie), cs, Exclude{}))
	fakeOf(cs[i]).weight.Store(1)
	var tried Exclude
	tried.Add(i)
	assert.Equal(t, -1, s.Pick(stickyRequest(cookie), cs, tried))

	// Unknown and malformed values name nothing.
	for _, c := range []string{"lb=0000000000000000", "lb=", "lb=zz", "lbx=" + cookie[3:]} {
		assert.Equal(t, -1, s.Pick(stickyRequest(c), cs, Exclude{}), c)
	}
	assert.NotEqual(t, s.SetCookie(0), s.SetCookie(1))
}

func TestStickyAllocatesNothing(t *testing.T) {
	cs := targets(1, 1, 1)
	s := NewSticky(StickyOptions{Cookie: "lb"}, cs)
	cookie, _, _ := strings.Cut(s.SetCookie(2), ";")
	r := stickyRequest(cookie)
	allocs := testing.AllocsPerRun(100, func() {
		if s.Pick(r, cs, Exclude{}) != 2 || !s.Has(r, 2) || s.SetCookie(2) == "" {
			t.Fatal("wrong target")
		}
	})
	assert.Zero(t, allocs)
}

func TestStickyIsSafeForConcurrentUse(t *testing.T) {
	cs := targets(1, 2, 3)
	s := NewSticky(StickyOptions{Cookie: "lb"}, cs)
	cookie, _, _ := strings.Cut(s.SetCookie(1), ";")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if s.Pick(stickyRequest(cookie), cs, Exclude{}) != 1 {
					t.Error("wrong target")
					return
				}
			}
		}()
	}
	wg.Wait()
}
