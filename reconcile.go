package orchestrator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
)

// Refresh re-reads the whole registry and applies it. It is what POST
// /router/refresh does; the registry watch makes it unnecessary in normal
// operation. After Close it returns ErrClosed.
func (o *Orchestrator) Refresh(ctx context.Context) error {
	if err := o.errIfClosed(); err != nil {
		return err
	}
	snap, err := o.registry.List(ctx)
	if err != nil {
		return fmt.Errorf("orchestrator: listing the registry: %w", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.errIfClosed(); err != nil {
		return err
	}
	o.applySnapshotLocked(snap)
	o.publishLocked()
	return nil
}

// Overrides returns the operator overrides the gateway follows from its
// registry, sorted by key.
func (o *Orchestrator) Overrides() []Override {
	o.mu.Lock()
	out := make([]Override, 0, len(o.overrides))
	for _, ov := range o.overrides {
		out = append(out, ov)
	}
	o.mu.Unlock()
	slices.SortFunc(out, func(a, b Override) int { return cmp.Compare(a.Key(), b.Key()) })
	return out
}

// storeRetries is how many times a write whose precondition the store
// refused (this gateway's view was behind: another gateway wrote first) is
// checked again against fresh state and retried. A caller's own
// revision condition is never retried past: it fails with
// ErrRevisionMismatch.
const storeRetries = 3

// Register adds an endpoint owned by the API (source "api"). It is routable
// when Register returns. The registry refuses an id it already holds, even
// one this gateway has not seen yet. Errors: *ValidationError (ErrInvalid),
// ErrConflict when the id or the route is taken, ErrClosed after Close.
func (o *Orchestrator) Register(ctx context.Context, ep Endpoint) (RegisteredEndpoint, error) {
	if err := o.errIfClosed(); err != nil {
		return RegisteredEndpoint{}, err // before the upstream's DNS lookup
	}
	ep = ep.Normalized()
	if err := ep.Validate(); err != nil {
		return RegisteredEndpoint{}, err
	}
	if err := o.checkUpstream(ctx, ep); err != nil {
		return RegisteredEndpoint{}, err
	}
	o.writeMu.Lock()
	defer o.writeMu.Unlock()
	o.mu.Lock()
	err := o.errIfClosed()
	if cur, ok := o.entries[ep.ID]; ok && err == nil {
		err = fmt.Errorf("%w: endpoint %q already exists (source %s)", ErrConflict, ep.ID, cur.reg.Source)
	}
	if err == nil {
		err = o.routeFreeLocked(ep)
	}
	o.mu.Unlock()
	if err != nil {
		return RegisteredEndpoint{}, err
	}
	reg, err := o.registry.Put(ctx, Registration{Endpoint: ep, Source: SourceAPI}, IfAbsent)
	if err != nil {
		if errors.Is(err, ErrConflict) {
			return RegisteredEndpoint{}, fmt.Errorf("%w: endpoint %q already exists", ErrConflict, ep.ID)
		}
		return RegisteredEndpoint{}, err
	}
	return o.finishPut(reg, &ep)
}

// finishPut applies the registration this gateway just stored and returns
// its view.
func (o *Orchestrator) finishPut(reg Registration, checked *Endpoint) (RegisteredEndpoint, error) {
	id := reg.Endpoint.ID
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.errIfClosed(); err != nil {
		return RegisteredEndpoint{}, err
	}
	ev := Event{Revision: reg.Revision, Changes: []Change{{Kind: ChangePut, Key: id, Registration: reg}}}
	if o.applyOwnLocked(ev, map[string]*Endpoint{id: checked}) {
		o.publishLocked()
	}
	rt := o.entries[id]
	if rt == nil {
		// Removed by a newer write (another gateway's) before this one
		// could be applied.
		return RegisteredEndpoint{}, fmt.Errorf("%w: %q was removed by a later change", ErrNotFound, id)
	}
	return o.view(rt), nil
}

// Update replaces an API-owned endpoint's config; its breaker is rebuilt.
// Errors: ErrNotFound, *ValidationError, ErrConflict when the endpoint is
// owned by the config file or the new route is taken, ErrClosed after Close.
func (o *Orchestrator) Update(ctx context.Context, ep Endpoint) (RegisteredEndpoint, error) {
	return o.UpdateIf(ctx, ep, 0)
}

// UpdateIf is Update on the condition that the endpoint is still at
// revision (RegisteredEndpoint.Revision, the admin API's ETag); 0 means
// unconditional. The registry checks the condition atomically with the
// write, so two admins editing at once, through one gateway or two sharing
// a store, cannot silently overwrite each other: the later one gets
// ErrRevisionMismatch.
func (o *Orchestrator) UpdateIf(ctx context.Context, ep Endpoint, revision uint64) (RegisteredEndpoint, error) {
	if err := o.errIfClosed(); err != nil {
		return RegisteredEndpoint{}, err
	}
	ep = ep.Normalized()
	if err := ep.Validate(); err != nil {
		return RegisteredEndpoint{}, err
	}
	if err := o.checkUpstream(ctx, ep); err != nil {
		return RegisteredEndpoint{}, err
	}
	o.writeMu.Lock()
	defer o.writeMu.Unlock()
	for attempt := 0; ; attempt++ {
		cur, err := o.currentAPIOwned(ctx, ep.ID, revision, attempt > 0)
		if err != nil {
			return RegisteredEndpoint{}, err
		}
		o.mu.Lock()
		err = o.routeFreeLocked(ep)
		o.mu.Unlock()
		if err != nil {
			return RegisteredEndpoint{}, err
		}
		reg, err := o.registry.Put(ctx, Registration{Endpoint: ep, Source: SourceAPI, RegisteredAt: cur.RegisteredAt}, IfRevision(cur.Revision))
		if errors.Is(err, ErrRevisionMismatch) && attempt < storeRetries {
			continue // changed under us: check ownership and revision again
		}
		if err != nil {
			return RegisteredEndpoint{}, err
		}
		return o.finishPut(reg, &ep)
	}
}

// currentAPIOwned returns the registration a conditional change of id is
// based on, after the checks every API change makes: it exists, the API
// owns it, and it is at revision (unless 0). The gateway's own view is
// used when it can answer; the store is read when the view lacks the id,
// disagrees with the caller's revision (it may be behind the store), or
// fresh is set (a write based on the view was just refused).
func (o *Orchestrator) currentAPIOwned(ctx context.Context, id string, revision uint64, fresh bool) (Registration, error) {
	o.mu.Lock()
	if err := o.errIfClosed(); err != nil {
		o.mu.Unlock()
		return Registration{}, err
	}
	rt := o.entries[id]
	var cur Registration
	if rt != nil {
		cur = Registration{Endpoint: rt.ep, Source: rt.reg.Source, Revision: rt.reg.Revision, RegisteredAt: rt.reg.RegisteredAt}
	}
	o.mu.Unlock()
	if rt == nil || fresh || (revision != 0 && cur.Revision != revision) {
		got, err := o.registry.Get(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			return Registration{}, fmt.Errorf("%w: %q", ErrNotFound, id)
		case err != nil:
			return Registration{}, err
		}
		cur = got
	}
	if cur.Source != SourceAPI {
		return Registration{}, ownedError(id)
	}
	if revision != 0 && cur.Revision != revision {
		return Registration{}, fmt.Errorf("%w: endpoint %q is at revision %d, not %d", ErrRevisionMismatch, id, cur.Revision, revision)
	}
	return cur, nil
}

// Deregister removes an API-owned endpoint and its operator overrides (a
// breaker trip), in one registry commit. Requests already forwarded to it
// finish. Errors: ErrNotFound, ErrConflict for a config-owned endpoint,
// ErrClosed after Close.
func (o *Orchestrator) Deregister(ctx context.Context, id string) error {
	return o.DeregisterIf(ctx, id, 0)
}

// DeregisterIf is Deregister on the condition that the endpoint is still at
// revision; 0 means unconditional. As with UpdateIf the registry checks
// the condition; a newer revision gives ErrRevisionMismatch.
func (o *Orchestrator) DeregisterIf(ctx context.Context, id string, revision uint64) error {
	if err := o.errIfClosed(); err != nil {
		return err
	}
	o.writeMu.Lock()
	defer o.writeMu.Unlock()
	for attempt := 0; ; attempt++ {
		cur, err := o.currentAPIOwned(ctx, id, revision, attempt > 0)
		if err != nil {
			return err
		}
		// The endpoint's operator overrides (a trip) go with it: an id
		// registered again starts afresh.
		ops := []Op{DeleteOp(id, IfRevision(cur.Revision))}
		o.mu.Lock()
		for key, ov := range o.overrides {
			if ov.EndpointID == id {
				ops = append(ops, DeleteOverrideOp(key, IfRevision(ov.Revision)))
			}
		}
		o.mu.Unlock()
		ev, err := o.registry.Commit(ctx, ops)
		if (errors.Is(err, ErrRevisionMismatch) || errors.Is(err, ErrNotFound)) && len(ops) > 1 && attempt < storeRetries {
			continue // an override changed meanwhile: look again
		}
		if errors.Is(err, ErrRevisionMismatch) && attempt < storeRetries {
			continue
		}
		if err != nil {
			return err
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		if err := o.errIfClosed(); err != nil {
			return err
		}
		if o.applyOwnLocked(ev, nil) {
			o.publishLocked()
		}
		return nil
	}
}

func ownedError(id string) error {
	return fmt.Errorf("%w: endpoint %q is owned by the config file; edit the file instead (tripping its circuit breaker is the emergency lever)", ErrConflict, id)
}

// routeFreeLocked refuses ep when another id already serves its route.
func (o *Orchestrator) routeFreeLocked(ep Endpoint) error {
	for id, rt := range o.entries {
		if id != ep.ID && rt.ep.Name == ep.Name && rt.ep.Version == ep.Version {
			return fmt.Errorf("%w: route %s is already served by endpoint %q", ErrConflict, o.prefix+routeKeyString(ep.Name, ep.Version), id)
		}
	}
	return nil
}

// Sync makes the endpoints of one source exactly eps, as one change: new
// ones are added, changed ones replaced (their breakers rebuilt), missing
// ones removed, and the route table is published once. This is how a config
// reload is applied. Everything is validated first, then written to the
// registry in one atomic Commit, so on any error nothing changes, in the
// registry or in the routes. An id owned by the other source is a conflict.
// After Close it returns ErrClosed.
func (o *Orchestrator) Sync(ctx context.Context, source Source, eps []Endpoint) error {
	if err := o.errIfClosed(); err != nil {
		return err
	}
	o.writeMu.Lock()
	defer o.writeMu.Unlock()
	return o.syncWrite(ctx, source, eps, nil)
}

// Desired is the desired state a config source declares: the global
// sections (circuit_breaker, health_check, rate_limit,
// adaptive_concurrency) and the endpoints of source "config". Apply installs it as one change.
type Desired struct {
	// CircuitBreaker holds the global breaker defaults (WithCircuitBreaker).
	CircuitBreaker CircuitBreakerConfig
	// HealthCheck holds the global health-check defaults (WithHealthCheck).
	HealthCheck HealthCheckConfig
	// RateLimit holds the global rate limits (WithRateLimit).
	RateLimit RateLimits
	// AdaptiveConcurrency is the global adaptive_concurrency section
	// (WithAdaptiveConcurrency); nil when there is none.
	AdaptiveConcurrency *AdaptiveConcurrencyConfig
	// Endpoints are the endpoints of source "config".
	Endpoints []Endpoint
}

// Validate checks d as a whole and returns a *ValidationError listing every
// problem, with the field paths and messages New and Apply use
// ("circuit_breaker.failure_threshold", "endpoints[2].url", a duplicate id
// or route between endpoints), or nil. It is exported so that a config
// source that checks a whole file before applying it (orchestratord's
// config package) reports the library's own messages rather than a copy of
// its rules.
func (d Desired) Validate() error {
	var errs ValidationError
	d.validateDefaults(&errs)
	validateSet(d.Endpoints, "endpoints", &errs)
	return errs.orNil()
}

// validateDefaults checks the global sections, each under its own name:
// what Validate, Apply and PlanApply check before the endpoints.
func (d Desired) validateDefaults(errs *ValidationError) {
	d.CircuitBreaker.validate("circuit_breaker", errs)
	d.HealthCheck.validate("health_check", errs)
	d.RateLimit.validate("rate_limit", errs)
	if d.AdaptiveConcurrency != nil {
		d.AdaptiveConcurrency.validate("adaptive_concurrency", errs)
	}
}

// Apply applies a config source's desired state as one change: the global
// circuit_breaker, health_check, rate_limit and adaptive_concurrency
// sections and the endpoints of source "config". When the global sections
// change every route is rebuilt (keeping the breakers, buckets and
// limiters whose settings did not change). Settings given to New (prefix, trusted proxies, limits)
// are fixed and need a new gateway. On any error nothing changes. After
// Close it returns ErrClosed.
func (o *Orchestrator) Apply(ctx context.Context, d Desired) error {
	if err := o.errIfClosed(); err != nil {
		return err
	}
	var errs ValidationError
	d.validateDefaults(&errs)
	if err := errs.orNil(); err != nil {
		return err
	}
	o.writeMu.Lock()
	defer o.writeMu.Unlock()
	pd := &policyDefaults{breaker: d.CircuitBreaker.withDefaults(), health: d.HealthCheck.withDefaults(), rateLimit: d.RateLimit, adaptive: d.AdaptiveConcurrency}
	return o.syncWrite(ctx, SourceConfig, d.Endpoints, pd)
}

// policyDefaults are the global defaults Apply installs with its endpoints.
type policyDefaults struct {
	breaker   CircuitBreakerConfig
	health    HealthCheckConfig
	rateLimit RateLimits
	adaptive  *AdaptiveConcurrencyConfig
}

// syncWrite makes the endpoints of source exactly eps, and installs the
// defaults d (when not nil) with them. It runs under writeMu: it checks
// eps against the gateway's view, commits the difference with every op
// conditional on the revision it was checked at, and applies the result.
// A refused precondition means the view was behind the store: the view is
// refreshed and everything checked again.
func (o *Orchestrator) syncWrite(ctx context.Context, source Source, eps []Endpoint, d *policyDefaults) error {
	norm := make([]Endpoint, len(eps))
	checked := make(map[string]*Endpoint, len(eps))
	for i, ep := range eps {
		norm[i] = ep.Normalized()
		checked[norm[i].ID] = &norm[i]
	}
	var errs ValidationError
	validateSet(norm, "endpoints", &errs)
	o.checkHeaderRulesForTokens(norm, &errs)
	if err := errs.orNil(); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		ops, err := o.syncOps(source, norm)
		if err != nil {
			return err
		}
		var ev Event
		if len(ops) > 0 {
			ev, err = o.registry.Commit(ctx, ops)
			if (errors.Is(err, ErrRevisionMismatch) || errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound)) && attempt < storeRetries {
				// Another writer changed one of these ids since the view
				// was built: catch up and decide again.
				if rerr := o.Refresh(ctx); rerr != nil {
					return rerr
				}
				continue
			}
			if err != nil {
				return err
			}
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		if err := o.errIfClosed(); err != nil {
			return err
		}
		rebuildAll := false
		if d != nil {
			rebuildAll = string(mustJSON(d.breaker)) != string(mustJSON(o.breakerDefaults)) || string(mustJSON(d.health)) != string(mustJSON(o.healthDefaults)) ||
				!slices.Equal(d.rateLimit, o.rateLimitDefaults) || !sameJSON(d.adaptive, o.adaptiveDefaults)
			if rebuildAll {
				hc := d.health
				o.breakerDefaults, o.healthDefaults, o.rateLimitDefaults, o.adaptiveDefaults = d.breaker, &hc, d.rateLimit, d.adaptive
			}
		}
		changed := o.applyOwnLocked(ev, checked)
		if rebuildAll {
			o.rebuildAllLocked()
			changed = true
		}
		if changed {
			o.publishLocked()
		}
		return nil
	}
}

// syncOps checks norm (of source) against the gateway's view and returns
// the ops that make the registry match: deletes of the source's endpoints
// not in norm, puts of new and changed ones, each conditional on the
// revision the view holds.
func (o *Orchestrator) syncOps(source Source, norm []Endpoint) ([]Op, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.errIfClosed(); err != nil {
		return nil, err
	}
	var errs ValidationError
	// Routes held by the other source, to refuse a clash before writing.
	otherRoutes := make(map[string]string)
	for id, rt := range o.entries {
		if rt.reg.Source != source {
			otherRoutes[rt.ep.Name+"/"+rt.ep.Version] = id
		}
	}
	want := make(map[string]struct{}, len(norm))
	for i, ep := range norm {
		want[ep.ID] = struct{}{}
		if cur, ok := o.entries[ep.ID]; ok && cur.reg.Source != source {
			errs.add(fmt.Sprintf("endpoints[%d].id", i), fmt.Sprintf("%q is already registered by the %s", ep.ID, sourceName(cur.reg.Source)))
		}
		if id, taken := otherRoutes[ep.Name+"/"+ep.Version]; taken && id != ep.ID {
			errs.add(fmt.Sprintf("endpoints[%d]", i), fmt.Sprintf("route %s is already served by endpoint %q (%s)", o.prefix+routeKeyString(ep.Name, ep.Version), id, sourceName(o.entries[id].reg.Source)))
		}
	}
	if err := errs.orNil(); err != nil {
		return nil, err
	}
	var ops []Op
	for id, rt := range o.entries {
		if _, keep := want[id]; !keep && rt.reg.Source == source {
			ops = append(ops, DeleteOp(id, IfRevision(rt.reg.Revision)))
		}
	}
	// Deletes in id order, then puts in the caller's order: a commit reads
	// the same every time, in logs and in a store's history.
	slices.SortFunc(ops, func(a, b Op) int { return cmp.Compare(a.Key, b.Key) })
	for _, ep := range norm {
		expect := IfAbsent
		if cur, ok := o.entries[ep.ID]; ok {
			if endpointsEqual(cur.ep, ep) {
				continue
			}
			expect = IfRevision(cur.reg.Revision)
		}
		ops = append(ops, PutOp(Registration{Endpoint: ep, Source: source}, expect))
	}
	return ops, nil
}

// rebuildAllLocked rebuilds every route for new global defaults, even when
// its own config is unchanged.
func (o *Orchestrator) rebuildAllLocked() {
	for id, rt := range o.entries {
		reg := Registration{Endpoint: rt.ep, Source: rt.reg.Source, Revision: rt.reg.Revision, RegisteredAt: rt.reg.RegisteredAt}
		if nrt, err := o.buildRoute(reg, rt); err == nil {
			o.setEntryLocked(id, nrt)
			if nrt.healthActive && !sameJSON(nrt.health, rt.health) {
				o.checker.Add(id, 0)
			}
		}
	}
}

func sourceName(s Source) string {
	if s == SourceAPI {
		return "admin API"
	}
	return "config file"
}
