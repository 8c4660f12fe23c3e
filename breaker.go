package orchestrator

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
)

// BreakerState is the state of an endpoint's circuit breaker.
type BreakerState string

// The breaker states.
const (
	// BreakerClosed: requests flow; failures are counted.
	BreakerClosed BreakerState = "closed"
	// BreakerOpen: requests are refused with 503 without dialling the upstream.
	BreakerOpen BreakerState = "open"
	// BreakerHalfOpen: a limited number of trial requests go through; enough
	// successes close the breaker, a failure opens it again.
	BreakerHalfOpen BreakerState = "half_open"
	// BreakerDisabled: the endpoint has no breaker (circuit_breaker.disabled).
	BreakerDisabled BreakerState = "disabled"
)

// breaker is one endpoint's failsafe-go circuit breaker plus the rule that
// says which upstream statuses are failures. It is rebuilt whenever the
// endpoint's config changes and is safe for concurrent use.
//
// The failsafe-go breaker (about 350 bytes) is built on the endpoint's
// first request, or when it is tripped: a breaker that never saw a request
// is closed with nothing counted, which is what a fresh one is, so it is
// reported as closed without building it. Among 10,000 endpoints most may
// never be called between two reloads, and a reload rebuilds every changed
// endpoint's breaker.
type breaker struct {
	disabled bool
	// held is set while an operator override (OverrideBreakerOpen) holds
	// the breaker open: every request is refused until the override is
	// removed, whatever reset_timeout says.
	held atomic.Bool
	// quiet silences the state listener while abandon re-arms half-open.
	quiet atomic.Bool
	// open mirrors the failsafe-go breaker's open state, kept by its state
	// listener, so that a target's eligibility (asked for every target on
	// every request) reads an atomic, not the breaker's lock.
	open atomic.Bool
	cb   atomic.Pointer[failsafeBreaker] // nil until first needed

	// What the failsafe-go breaker is built with. With failureRate set
	// (a percentage) the breaker is in failure-rate mode and
	// failureThreshold is the fewest requests in thresholdingPeriod before
	// the rate is judged; otherwise it counts consecutive failures.
	failureRate                        uint8
	failureThreshold, halfOpenRequests uint32
	resetTimeout                       time.Duration
	thresholdingPeriod                 time.Duration
	onChange                           func(from, to BreakerState)

	// failureStatus marks the upstream statuses that are failures. Shared:
	// endpoints with the default list (every 5xx) point at one table.
	failureStatus *statusSet
}

// statusSet is a set of HTTP status codes 100-599, one bit each.
type statusSet [8]uint64

func (s *statusSet) add(status int) {
	if status >= 100 && status <= 599 {
		i := status - 100
		s[i/64] |= 1 << (i % 64)
	}
}

func (s *statusSet) has(status int) bool {
	if status < 100 || status > 599 {
		return false
	}
	i := status - 100
	return s[i/64]&(1<<(i%64)) != 0
}

// every5xx is the default failure statuses, shared by every breaker that
// does not list its own.
var every5xx = func() *statusSet {
	s := &statusSet{}
	for status := 500; status <= 599; status++ {
		s.add(status)
	}
	return s
}()

func newBreaker(cfg CircuitBreakerConfig, onChange func(from, to BreakerState)) *breaker {
	b := &breaker{failureStatus: every5xx}
	if len(cfg.FailureStatuses) > 0 {
		b.failureStatus = &statusSet{}
		for _, s := range cfg.FailureStatuses {
			b.failureStatus.add(s)
		}
	}
	if cfg.Disabled != nil && *cfg.Disabled {
		b.disabled = true
		return b
	}
	b.failureThreshold = uint32(min(cfg.FailureThreshold, math.MaxUint32))
	if cfg.FailureRateThreshold > 0 {
		b.failureRate = uint8(min(cfg.FailureRateThreshold, 100))
		b.failureThreshold = uint32(min(cfg.FailureExecutionThreshold, math.MaxUint32))
		b.thresholdingPeriod = cfg.FailureThresholdingPeriod.Std()
	}
	b.halfOpenRequests = uint32(min(cfg.HalfOpenRequests, math.MaxUint32))
	b.resetTimeout = cfg.ResetTimeout.Std()
	b.onChange = onChange
	return b
}

// failsafeBreaker boxes the failsafe-go breaker for an atomic pointer.
type failsafeBreaker struct {
	circuitbreaker.CircuitBreaker[any]
}

// get returns the failsafe-go breaker, building it on first use. Not for
// a disabled breaker.
func (b *breaker) get() circuitbreaker.CircuitBreaker[any] {
	if cb := b.cb.Load(); cb != nil {
		return cb.CircuitBreaker
	}
	builder := circuitbreaker.NewBuilder[any]().
		WithSuccessThreshold(uint(b.halfOpenRequests)).
		WithDelay(b.resetTimeout)
	if b.failureRate > 0 {
		// failsafe-go takes the rate as a ratio and, once it is set, leaves
		// the consecutive-failures count out entirely.
		builder = builder.WithFailureRateThreshold(float64(b.failureRate)/100, uint(b.failureThreshold), b.thresholdingPeriod)
	} else {
		builder = builder.WithFailureThreshold(uint(b.failureThreshold))
	}
	onChange := b.onChange
	builder = builder.OnStateChanged(func(e circuitbreaker.StateChangedEvent) {
		b.open.Store(e.NewState == circuitbreaker.OpenState)
		if onChange != nil && !b.quiet.Load() {
			onChange(fromFailsafe(e.OldState), fromFailsafe(e.NewState))
		}
	})
	// Two first requests at once may both build one; the first stored is
	// the breaker, the other, never used, is dropped.
	b.cb.CompareAndSwap(nil, &failsafeBreaker{builder.Build()})
	return b.cb.Load().CircuitBreaker
}

// peek returns the failsafe-go breaker, or nil when it was never needed
// (or the breaker is disabled).
func (b *breaker) peek() circuitbreaker.CircuitBreaker[any] {
	if cb := b.cb.Load(); cb != nil {
		return cb.CircuitBreaker
	}
	return nil
}

func fromFailsafe(s circuitbreaker.State) BreakerState {
	switch s {
	case circuitbreaker.OpenState:
		return BreakerOpen
	case circuitbreaker.HalfOpenState:
		return BreakerHalfOpen
	}
	return BreakerClosed
}

// allow asks for a permit. When refused it returns how long until trial
// requests are let through.
func (b *breaker) allow() (ok bool, retryAfter time.Duration) {
	if b.disabled {
		return true, 0
	}
	if b.held.Load() {
		// Held by an operator: no trial is let through, so the wait is
		// unknown; a client retrying after reset_timeout is a fair guess.
		return false, b.resetTimeout
	}
	cb := b.get()
	if cb.TryAcquirePermit() {
		return true, 0
	}
	return false, cb.RemainingDelay()
}

// isFailure reports whether an upstream status counts as a failure.
func (b *breaker) isFailure(status int) bool {
	return b.failureStatus.has(status)
}

func (b *breaker) record(failed bool) {
	if b.disabled {
		return
	}
	if cb := b.get(); failed {
		cb.RecordFailure()
	} else {
		cb.RecordSuccess()
	}
}

// abandon gives back a permit whose request proved nothing (the client went
// away first). failsafe-go has no way to return a permit unrecorded and
// ignores a half-open to half-open transition, so in half-open the breaker
// passes through open back to half-open, silently, which restores the trial
// permits. In closed state permits are unlimited and nothing needs doing.
// Recording a success instead would let a cancelled trial close the breaker.
func (b *breaker) abandon() {
	if cb := b.peek(); cb != nil && cb.IsHalfOpen() {
		b.quiet.Store(true)
		cb.Open()
		cb.HalfOpen()
		b.quiet.Store(false)
	}
}

// refusing reports whether the breaker refuses new requests now: held by
// an operator, or open with its delay not yet passed. It reads atomics
// only, but for a breaker that is open.
func (b *breaker) refusing() bool {
	if b.disabled {
		return false
	}
	if b.held.Load() {
		return true
	}
	return b.open.Load() && b.state() == BreakerOpen
}

// state reports the breaker's state as a user would read it: an open breaker
// whose delay has passed admits the next request as a trial, so it reads
// half_open.
func (b *breaker) state() BreakerState {
	if b.disabled {
		return BreakerDisabled
	}
	if b.held.Load() {
		return BreakerOpen
	}
	cb := b.peek()
	if cb == nil {
		return BreakerClosed
	}
	s := cb.State()
	if s == circuitbreaker.OpenState && cb.RemainingDelay() <= 0 {
		return BreakerHalfOpen
	}
	return fromFailsafe(s)
}

// hold opens the breaker and keeps it open while an operator override
// says so. The failsafe-go breaker is opened too, so that the change is
// logged and counted like any other opening.
func (b *breaker) hold() {
	if b.disabled || b.held.Swap(true) {
		return
	}
	b.get().Open()
}

// release ends an operator's hold: the breaker closes, as a reset does.
func (b *breaker) release() {
	if b.held.Swap(false) {
		b.reset()
	}
}

func (b *breaker) reset() {
	// A breaker never built is closed already.
	if cb := b.peek(); cb != nil {
		cb.Close()
	}
}

// retryAfterSeconds rounds a delay up to whole seconds, at least 1, for a
// Retry-After header.
func retryAfterSeconds(d time.Duration) int {
	if d <= 0 {
		return 1
	}
	s := math.Ceil(d.Seconds())
	if s > 86400 {
		return 86400
	}
	return int(s)
}

// logBreakerChange is a breaker's state listener: it logs the change and
// counts openings. target names the target of an endpoint with a targets
// list; empty for the url shorthand, whose log lines stay as they were.
func (o *Orchestrator) logBreakerChange(id, target string, m *endpointMetrics) func(from, to BreakerState) {
	return func(from, to BreakerState) {
		level := slog.LevelInfo
		if to == BreakerOpen {
			level = slog.LevelWarn
			if m != nil {
				m.breakerOpens.Inc()
			}
		}
		attrs := []slog.Attr{slog.String("endpoint_id", id)}
		if target != "" {
			attrs = append(attrs, slog.String("target", target))
		}
		attrs = append(attrs, slog.String("from", string(from)), slog.String("to", string(to)))
		o.breakerLog.LogAttrs(o.ctx, level, "circuit breaker state changed", attrs...)
	}
}

// builtFrom reports whether b was built from cfg's settings, so that a
// config change that keeps them keeps b and its state.
func (b *breaker) builtFrom(cfg CircuitBreakerConfig) bool {
	n := newBreaker(cfg, nil)
	return b.disabled == n.disabled && b.failureThreshold == n.failureThreshold &&
		b.failureRate == n.failureRate && b.thresholdingPeriod == n.thresholdingPeriod &&
		b.halfOpenRequests == n.halfOpenRequests && b.resetTimeout == n.resetTimeout &&
		*b.failureStatus == *n.failureStatus
}

// TripBreaker holds the endpoint's circuit breaker open: requests get 503
// "circuit-open" until ResetBreaker, whatever reset_timeout says. The trip
// is an operator override (OverrideBreakerOpen) stored in the registry, so
// it is desired state: every gateway sharing the registry holds the breaker
// open, a config reload that rebuilds the endpoint keeps it, and it is
// allowed on config-owned endpoints (the emergency lever). Errors:
// ErrNotFound, ErrConflict when the endpoint's breaker is disabled, the
// registry's error, ErrClosed after Close.
func (o *Orchestrator) TripBreaker(id string) error {
	if err := o.errIfClosed(); err != nil {
		return err
	}
	rt := o.table.Load().route(id)
	if rt == nil {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if rt.targets[0].breaker.disabled {
		return fmt.Errorf("%w: endpoint %q has its circuit breaker disabled", ErrConflict, id)
	}
	return o.commitOverride(PutOverrideOp(Override{Kind: OverrideBreakerOpen, EndpointID: id}, IfAny))
}

// ResetBreaker closes the endpoint's circuit breaker and removes a trip's
// override, on every gateway sharing the registry. Errors: ErrNotFound,
// the registry's error, ErrClosed after Close.
func (o *Orchestrator) ResetBreaker(id string) error {
	if err := o.errIfClosed(); err != nil {
		return err
	}
	rt := o.table.Load().route(id)
	if rt == nil {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	err := o.commitOverride(DeleteOverrideOp(breakerOverrideKey(id), IfAny))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err // not tripped is not an error: the breaker is reset below
	}
	for _, u := range rt.targets {
		u.breaker.reset()
	}
	rt.traffic.consecutiveFailures.Store(0)
	return nil
}

// commitOverride writes one override op to the registry and applies the
// result, unless the follower applied it already. Like every write it
// holds writeMu, never mu, while the registry works.
func (o *Orchestrator) commitOverride(op Op) error {
	o.writeMu.Lock()
	defer o.writeMu.Unlock()
	ev, err := o.registry.Commit(o.ctx, []Op{op})
	if err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.applyOwnLocked(ev, nil) {
		o.publishLocked()
	}
	return nil
}

// breakerOverrideKey is the key of the override that holds id's breaker
// open.
func breakerOverrideKey(id string) string {
	return Override{Kind: OverrideBreakerOpen, EndpointID: id}.Key()
}

// applyHoldLocked makes id's breaker follow the overrides: held open while
// a breaker_open override names it, released when none does.
func (o *Orchestrator) applyHoldLocked(id string) {
	rt := o.entries[id]
	if rt == nil {
		return // the override waits for its endpoint (buildRoute applies it)
	}
	_, held := o.overrides[breakerOverrideKey(id)]
	for _, u := range rt.targets {
		if held {
			u.breaker.hold()
		} else {
			u.breaker.release()
		}
	}
}
