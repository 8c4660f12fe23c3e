package balance

import (
	"net/http"
	"strconv"
	"time"
)

// StickyOptions configures a sticky-session cookie: the cookie the gateway
// sets to pin a client to the target it was first sent to (Traefik's and
// Caddy's sticky cookies).
type StickyOptions struct {
	// Cookie is the cookie's name.
	Cookie string
	// MaxAge is the cookie's Max-Age; 0 makes it a session cookie.
	MaxAge time.Duration
	// Secure, HTTPOnly and SameSite are the cookie's attributes.
	Secure   bool
	HTTPOnly bool
	SameSite http.SameSite
	// Path is the cookie's Path.
	Path string
}

// Sticky pins clients to targets with a cookie. It is built for one list
// of targets (an endpoint's, rebuilt with it) and immutable, so it is safe
// for concurrent use, and Pick, Has and SetCookie allocate nothing.
//
// The cookie's value names a target without revealing its address: it is
// the hex of a 64-bit hash of the target's ID, so it stays valid across
// reloads and gateway replicas as long as the ID does.
type Sticky struct {
	name      string
	values    []string // per target: the cookie value
	setCookie []string // per target: the Set-Cookie header value
}

// NewSticky returns the sticky cookie of targets under opts.
func NewSticky(opts StickyOptions, targets []Candidate) *Sticky {
	s := &Sticky{name: opts.Cookie, values: make([]string, len(targets)), setCookie: make([]string, len(targets))}
	for i, t := range targets {
		v := stickyValue(t.ID())
		c := http.Cookie{Name: opts.Cookie, Value: v, Path: opts.Path, Secure: opts.Secure, HttpOnly: opts.HTTPOnly, SameSite: opts.SameSite}
		if opts.MaxAge > 0 {
			c.MaxAge = int(max(opts.MaxAge/time.Second, 1))
		}
		s.values[i], s.setCookie[i] = v, c.String()
	}
	return s
}

// stickyValue is a target's cookie value: 16 hex digits.
func stickyValue(id string) string {
	v := strconv.FormatUint(fmix64(idHash(id)), 16)
	for len(v) < 16 {
		v = "0" + v
	}
	return v
}

// Pick returns the index of the target r's cookie names when that target
// may take the request (eligible, weight above zero, not in exclude), or
// -1: no cookie, an unknown or stale value, or a target that cannot serve.
// A drained target (weight 0) gets no new sticky requests; requests already
// in flight to it are not affected.
func (s *Sticky) Pick(r *http.Request, targets []Candidate, exclude Exclude) int {
	i := s.named(r)
	if i < 0 || i >= len(targets) || usable(targets[i], i, exclude) == 0 {
		return -1
	}
	return i
}

// Has reports whether r's cookie already names target i, so that the
// response needs no Set-Cookie.
func (s *Sticky) Has(r *http.Request, i int) bool { return i >= 0 && s.named(r) == i }

// SetCookie is the Set-Cookie header value that pins a client to target i.
func (s *Sticky) SetCookie(i int) string { return s.setCookie[i] }

// named returns the index of the target r's cookie names, or -1.
func (s *Sticky) named(r *http.Request) int {
	v := cookieValue(r.Header["Cookie"], s.name)
	if v == "" {
		return -1
	}
	for i, want := range s.values {
		if v == want {
			return i
		}
	}
	return -1
}
