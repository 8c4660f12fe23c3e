package orchestrator

import (
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/orchestrator-go/orchestrator/internal/balance"
	"github.com/orchestrator-go/orchestrator/internal/outlier"
)

// This file is an endpoint's targets as the hot path sees them: each
// target's address and observed state (upstream), and for an endpoint with
// more than one, how a request's target is chosen (targetSet). An endpoint
// with one URL has one upstream and no targetSet: its requests pay for no
// selection.

// upstream is one target of a route: where its requests go, and its
// observed state (health, breaker, in-flight count), which lives on the
// Orchestrator and carries over a config change that keeps the target.
// It is a balance.Candidate.
//
// It is kept small (96 bytes): an endpoint with one url has one, and a
// gateway may hold 10,000 of them. What only targets lists, tls sections or
// retries need is behind more.
type upstream struct {
	id string
	// The target's base URL, as the parts forwarding needs.
	host     string
	basePath string // escaped path
	// The small fields side by side, so that they pack into 16 bytes.
	weight  int32       // configured; Weight() says 0 while drained
	drained atomic.Bool // an operator's drain override
	pending atomic.Bool // added by a reload, with probes, none passed yet
	index   int16       // in the route's targets (at most maxTargets)
	https   bool

	inFlight atomic.Int64 // attempts from the round trip to the body's close

	breaker *breaker
	health  *healthState   // idleHealth when nothing probes it
	more    *upstreamExtra // nil for the url shorthand without retries
}

// upstreamExtra is the part of a target only some routes need.
type upstreamExtra struct {
	// transport is the target's own RoundTripper (a tls section), nil for
	// the gateway's shared one.
	transport http.RoundTripper
	set       *targetSet // nil for a route without one
	// stats are the target's counters (metrics_targets.go).
	stats *targetStats
}

// probeURL is the URL the HTTP prober checks on target u: its scheme and
// host with the endpoint's health_check_path; empty when u is not probed
// by URL. Built when needed (a probe, a view), not kept: an endpoint's
// bytes are counted in tens of thousands.
func (rt *route) probeURL(u *upstream) string {
	if !rt.healthActive || rt.ep.HealthCheckPath == "" {
		return ""
	}
	// url.URL escapes what the host needs (an IPv6 zone's %).
	return (&url.URL{Scheme: u.scheme(), Host: u.host}).String() + rt.ep.HealthCheckPath
}

// scheme is the target URL's scheme.
func (u *upstream) scheme() string {
	if u.https {
		return "https"
	}
	return "http"
}

// transport is the target's own RoundTripper, or nil for the shared one.
func (u *upstream) transport() http.RoundTripper {
	if u.more == nil {
		return nil
	}
	return u.more.transport
}

// set is the route's target set, or nil.
func (u *upstream) set() *targetSet {
	if u.more == nil {
		return nil
	}
	return u.more.set
}

// stats are the target's counters, or nil.
func (u *upstream) stats() *targetStats {
	if u == nil || u.more == nil {
		return nil
	}
	return u.more.stats
}

// ID is the target's id (balance.Candidate).
func (u *upstream) ID() string { return u.id }

// Weight is the configured weight, 0 while drained (balance.Candidate).
func (u *upstream) Weight() int {
	if u.drained.Load() {
		return 0
	}
	return int(u.weight)
}

// InFlight is the target's attempts in flight (balance.Candidate).
func (u *upstream) InFlight() int64 { return u.inFlight.Load() }

// Eligible reports whether the target may take a new request: not
// unhealthy by probes, not waiting for its first probe after a reload, not
// ejected and its breaker not open (balance.Candidate).
func (u *upstream) Eligible() bool {
	return !u.pending.Load() && u.usable()
}

// usable is Eligible without the pending rule.
func (u *upstream) usable() bool {
	if u.health.current() == StatusUnhealthy || u.breaker.refusing() {
		return false
	}
	if s := u.set(); s != nil && s.outlier != nil && s.outlier.EjectedNow(int(u.index)) {
		return false
	}
	return true
}

// status is the target's health as a user reads it: from probes when it
// is probed, else from its breaker.
func (u *upstream) status(probed bool) HealthStatus {
	if probed {
		return u.health.current()
	}
	switch u.breaker.state() {
	case BreakerOpen:
		return StatusUnhealthy
	case BreakerHalfOpen:
		return StatusUnknown
	}
	return StatusHealthy
}

// setURL points out at the target: its scheme, host and base path joined
// with rest, and the inbound query.
func (u *upstream) setURL(out *url.URL, rest string, in *url.URL) {
	setUpstreamURL(out, u.scheme(), u.host, u.basePath, rest, in)
}

// inFlightBody ends an attempt's count in its target's inFlight when the
// response body is closed. A request keeps one in its proxyState, so that
// counting allocates nothing: its attempts run one after another, and each
// one's body is closed before the next starts.
type inFlightBody struct {
	io.ReadCloser
	up   *upstream
	done atomic.Bool
}

// Close closes the body and ends the count, once.
func (b *inFlightBody) Close() error {
	err := b.ReadCloser.Close()
	if b.done.CompareAndSwap(false, true) {
		b.up.inFlight.Add(-1)
	}
	return err
}

// trackInFlight hands resp's body the end of its attempt's count on up.
func (st *proxyState) trackInFlight(body io.ReadCloser, up *upstream) io.ReadCloser {
	if _, upgraded := body.(io.ReadWriteCloser); upgraded {
		// An upgraded connection's body must stay writable.
		return onClose(body, func() { up.inFlight.Add(-1) })
	}
	st.inFlight = inFlightBody{ReadCloser: body, up: up}
	return &st.inFlight
}

// pendingView and panicView are the targets as the second and third
// selection passes see them: a target waiting for its first probe is
// eligible when nothing else is, and in panic mode every target is.
type (
	pendingView struct{ *upstream }
	panicView   struct{ *upstream }
)

// Eligible lets a pending target take requests when no other can.
func (v pendingView) Eligible() bool { return v.usable() }

// Eligible makes every target eligible (panic mode).
func (v panicView) Eligible() bool { return true }

// targetSet is how a route with several targets chooses one. It is built
// with the route and immutable but for the targets' own atomics.
type targetSet struct {
	selector   balance.Selector
	candidates []balance.Candidate // the route's targets, as *upstream
	pending    []balance.Candidate // pendingView of each; nil when no target was pending
	panics     []balance.Candidate // panicView of each; nil without panic mode
	outlier    *outlier.Detector   // nil when outlier detection is off
	sticky     *balance.Sticky     // nil without sticky sessions
}

// first returns the target of a request's first attempt: the one its
// sticky cookie names when that one can take it, else pick's.
func (s *targetSet) first(r *http.Request) int {
	if s.sticky != nil {
		if i := s.sticky.Pick(r, s.candidates, balance.Exclude{}); i >= 0 {
			return i
		}
	}
	return s.pick(r, balance.Exclude{})
}

// pick returns the target r goes to, skipping exclude, or -1. A target
// waiting for its first probe is chosen only when no other is eligible,
// and in panic mode any target is chosen rather than none.
func (s *targetSet) pick(r *http.Request, exclude balance.Exclude) int {
	i := s.selector.Select(r, s.candidates, exclude)
	if i < 0 && s.pending != nil {
		i = s.selector.Select(r, s.pending, exclude)
	}
	if i < 0 && s.panics != nil {
		i = s.selector.Select(r, s.panics, exclude)
	}
	return i
}

// buildTargets gives rt its targets, carrying over the observed state of
// each target old (the route before a config change) had with the same id,
// URL and TLS: its health, its breaker when the breaker settings are the
// same, and its outlier state. A target a reload adds to an endpoint with
// probes waits for its first passing probe before it is preferred.
func (o *Orchestrator) buildTargets(rt, old *route, breakerCfg CircuitBreakerConfig) error {
	ep := rt.ep
	list := ep.TargetList()
	multi := len(ep.Targets) > 0 || ep.LoadBalancing != nil || ep.OutlierDetection != nil
	rt.targets = make([]*upstream, len(list))
	var from []int
	if multi {
		from = make([]int, len(list))
	}
	for i, t := range list {
		u, err := parseUpstreamURL(t.URL)
		if err != nil {
			return err
		}
		up := &upstream{id: t.TargetID(), https: u.Scheme == "https", host: u.Host, basePath: u.EscapedPath(), weight: 1, index: int16(i)}
		if t.Weight != nil {
			up.weight = int32(*t.Weight)
		}
		retries := ep.Retry != nil && ep.Retry.Attempts > 0
		if multi || retries || t.TLS != nil {
			up.more = &upstreamExtra{stats: &targetStats{}}
		}
		if t.TLS != nil {
			if up.more.transport, err = o.targetTransport(t.TLS); err != nil {
				return err
			}
		}
		prev, j := old.sameTarget(t, up)
		if from != nil {
			from[i] = j
		}
		o.carryTargetState(rt, old, up, prev, breakerCfg)
		if up.more != nil && prev.stats() != nil {
			up.more.stats = prev.stats()
		}
		if _, drained := o.overrides[drainOverrideKey(ep.ID, up.id)]; drained {
			up.drained.Store(true)
		}
		rt.targets[i] = up
	}
	if multi {
		return o.buildTargetSet(rt, old, from)
	}
	return nil
}

// sameTarget returns old's target that t is, unchanged (same id, URL and
// TLS), and its index; nil and -1 when there is none.
func (old *route) sameTarget(t Target, up *upstream) (*upstream, int) {
	if old == nil {
		return nil, -1
	}
	prevList := old.ep.TargetList()
	for j, p := range old.targets {
		if p.id == up.id && j < len(prevList) && prevList[j].URL == t.URL &&
			equalThrough(prevList[j].TLS, t.TLS, func(a, b *TargetTLS) bool { return *a == *b }) {
			return p, j
		}
	}
	return nil, -1
}

// targetByID returns old's target with the id, changed or not; nil when
// there is none.
func (old *route) targetByID(id string) *upstream {
	if old == nil {
		return nil
	}
	for _, p := range old.targets {
		if p.id == id {
			return p
		}
	}
	return nil
}

// carryTargetState gives up its breaker and health state: prev's where prev
// is the same target and the settings that shape them are the same, fresh
// ones otherwise.
func (o *Orchestrator) carryTargetState(rt, old *route, up, prev *upstream, breakerCfg CircuitBreakerConfig) {
	ep := rt.ep
	if prev != nil && prev.breaker.builtFrom(breakerCfg) {
		up.breaker = prev.breaker
	} else {
		targetID := ""
		if len(ep.Targets) > 0 {
			targetID = up.id
		}
		up.breaker = newBreaker(breakerCfg, o.logBreakerChange(ep.ID, targetID, rt.metrics))
		if was := old.targetByID(up.id); was != nil && was.breaker.state() == BreakerOpen {
			// A config change rebuilds the breaker, which also ends a
			// manual trip: say so, since the target takes traffic again.
			o.breakerLog.Warn("circuit breaker rebuilt for a config change; it was open and starts closed",
				slog.String("endpoint_id", ep.ID), slog.String("from", string(BreakerOpen)), slog.String("to", string(BreakerClosed)))
		}
	}
	if _, held := o.overrides[breakerOverrideKey(ep.ID)]; held {
		// An operator's trip outlives config changes: it is desired state
		// of its own (Override).
		up.breaker.hold()
	}
	switch {
	case !rt.healthActive:
		// Nothing probes it: a status its probes left (unhealthy, say)
		// must not keep failing its requests.
		up.health = idleHealth
	case prev != nil && old.healthActive && old.ep.HealthCheckPath == ep.HealthCheckPath:
		up.health = prev.health
		up.pending.Store(prev.pending.Load())
	default:
		up.health = newHealthState()
		// Added to a serving endpoint: not preferred before a probe
		// passes. A new endpoint's targets are all unknown alike.
		up.pending.Store(old != nil && len(ep.Targets) > 1)
	}
}

// buildTargetSet builds the selection of a route with several targets.
func (o *Orchestrator) buildTargetSet(rt, old *route, from []int) error {
	ep := rt.ep
	lb := ep.LoadBalancing
	if lb == nil {
		lb = &LoadBalancingConfig{}
	}
	set := &targetSet{selector: lb.Selector}
	if set.selector == nil {
		sel, err := balance.New(lb.Policy, lb.HashKey)
		if err != nil {
			return err
		}
		set.selector = sel
	}
	if od := ep.OutlierDetection; od != nil || len(ep.Targets) > 1 {
		cfg := outlier.Config{}
		if od != nil {
			cfg = od.outlierConfig()
		}
		if cfg.Enabled() {
			d, err := outlier.New(cfg, len(rt.targets), nil)
			if err != nil {
				return err
			}
			if old != nil && old.set != nil {
				d.Inherit(old.set.outlier, from)
			}
			set.outlier = d
		}
	}
	set.candidates = make([]balance.Candidate, len(rt.targets))
	anyPending := false
	for i, up := range rt.targets {
		up.more.set = set
		set.candidates[i] = up
		anyPending = anyPending || up.pending.Load()
	}
	if anyPending {
		set.pending = make([]balance.Candidate, len(rt.targets))
		for i, up := range rt.targets {
			set.pending[i] = pendingView{up}
		}
	}
	if lb.PanicMode {
		set.panics = make([]balance.Candidate, len(rt.targets))
		for i, up := range rt.targets {
			set.panics[i] = panicView{up}
		}
	}
	if st := lb.Sticky; st != nil {
		path := st.Path
		if path == "" {
			path = o.prefix + rt.path
		}
		set.sticky = balance.NewSticky(balance.StickyOptions{Cookie: st.Cookie, MaxAge: st.MaxAge.Std(),
			Secure: st.Secure, HTTPOnly: st.HTTPOnly, SameSite: sameSite(st.SameSite), Path: path}, set.candidates)
	}
	rt.set = set
	return nil
}

// sameSite maps a sticky cookie's same_site onto net/http's.
func sameSite(s string) http.SameSite {
	switch strings.ToLower(s) {
	case "lax":
		return http.SameSiteLaxMode
	case "strict":
		return http.SameSiteStrictMode
	case "none":
		return http.SameSiteNoneMode
	}
	return 0
}

// sameUpstreams reports whether rt sends to the same targets as old, by
// URL and probe URL: the endpoint's traffic counters then carry over.
func (old *route) sameUpstreams(rt *route) bool {
	if len(old.targets) != len(rt.targets) {
		return false
	}
	oldList, newList := old.ep.TargetList(), rt.ep.TargetList()
	for i, u := range rt.targets {
		if oldList[i].URL != newList[i].URL || old.probeURL(old.targets[i]) != rt.probeURL(u) {
			return false
		}
	}
	return true
}

// freshHealth reports whether some target of rt has a health state old did
// not have: new targets, a new upstream or probe URL, checks just turned on.
func (rt *route) freshHealth(old *route) bool {
	if old == nil {
		return true
	}
	for _, u := range rt.targets {
		if !slices.ContainsFunc(old.targets, func(p *upstream) bool { return p.health == u.health }) {
			return true
		}
	}
	return false
}
