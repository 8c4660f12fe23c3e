package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// follow applies registry events until Close. Events already applied (our
// own writes) are recognised by revision and cost one Get.
func (o *Orchestrator) follow(events <-chan Event) {
	defer o.wg.Done()
	defer func() {
		if v := recover(); v != nil {
			o.routerLog.Error("registry watch panicked; routes stop following the registry", slog.Any("panic", v))
		}
	}()
	for ev := range events {
		batch := []Event{ev}
		// Coalesce a burst into one table rebuild.
	drain:
		for len(batch) < 1024 {
			select {
			case more, ok := <-events:
				if !ok {
					break drain
				}
				batch = append(batch, more)
			default:
				break drain
			}
		}
		o.applyEvents(batch)
	}
}

func (o *Orchestrator) applyEvents(batch []Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed.Load() {
		return // events still buffered when Close ran change nothing
	}
	changed := false
	for _, ev := range batch {
		if ev.Kind == EventResync {
			if err := o.refreshLocked(o.ctx); err != nil {
				o.routerLog.Error("registry resync failed", slog.String("error", err.Error()))
			}
			continue
		}
		reg, err := o.registry.Get(o.ctx, ev.ID)
		switch {
		case errors.Is(err, ErrNotFound):
			changed = o.removeLocked(ev.ID) || changed
		case err != nil:
			o.routerLog.Error("reading a changed endpoint from the registry failed", slog.String("endpoint_id", ev.ID), slog.String("error", err.Error()))
		default:
			changed = o.putLocked(reg) || changed
		}
	}
	if changed {
		o.publishLocked()
	}
}

// Refresh re-reads the whole registry and rebuilds the route table. It is
// what POST /router/refresh does; registry events make it unnecessary in
// normal operation. After Close it returns ErrClosed.
func (o *Orchestrator) Refresh(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.errIfClosed(); err != nil {
		return err
	}
	return o.refreshLocked(ctx)
}

func (o *Orchestrator) refreshLocked(ctx context.Context) error {
	regs, err := o.registry.List(ctx)
	if err != nil {
		return fmt.Errorf("orchestrator: listing the registry: %w", err)
	}
	seen := make(map[string]struct{}, len(regs))
	for _, reg := range regs {
		seen[reg.Endpoint.ID] = struct{}{}
		o.putLocked(reg)
	}
	for id := range o.entries {
		if _, ok := seen[id]; !ok {
			o.removeLocked(id)
		}
	}
	o.publishLocked()
	return nil
}

// Register adds an endpoint owned by the API (source "api"). It is routable
// when Register returns. Errors: *ValidationError (ErrInvalid), ErrConflict
// when the id or the route is taken, ErrClosed after Close.
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
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.errIfClosed(); err != nil {
		return RegisteredEndpoint{}, err
	}
	if cur, ok := o.entries[ep.ID]; ok {
		return RegisteredEndpoint{}, fmt.Errorf("%w: endpoint %q already exists (source %s)", ErrConflict, ep.ID, cur.reg.Source)
	}
	if err := o.routeFreeLocked(ep); err != nil {
		return RegisteredEndpoint{}, err
	}
	reg, err := o.registry.Put(ctx, Registration{Endpoint: ep, Source: SourceAPI}, PutCreate)
	if err != nil {
		if errors.Is(err, ErrConflict) {
			return RegisteredEndpoint{}, fmt.Errorf("%w: endpoint %q already exists", ErrConflict, ep.ID)
		}
		return RegisteredEndpoint{}, err
	}
	o.putLocked(reg)
	o.publishLocked()
	return o.view(o.entries[ep.ID]), nil
}

// Update replaces an API-owned endpoint's config; its breaker is rebuilt.
// Errors: ErrNotFound, *ValidationError, ErrConflict when the endpoint is
// owned by the config file or the new route is taken, ErrClosed after Close.
func (o *Orchestrator) Update(ctx context.Context, ep Endpoint) (RegisteredEndpoint, error) {
	return o.UpdateIf(ctx, ep, 0)
}

// UpdateIf is Update on the condition that the endpoint is still at
// revision (RegisteredEndpoint.Revision, the admin API's ETag); 0 means
// unconditional. A newer revision gives ErrRevisionMismatch, so two admins
// editing at once cannot silently overwrite each other. The check and the
// change are one step for this gateway.
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
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.errIfClosed(); err != nil {
		return RegisteredEndpoint{}, err
	}
	cur, ok := o.entries[ep.ID]
	if !ok {
		return RegisteredEndpoint{}, fmt.Errorf("%w: %q", ErrNotFound, ep.ID)
	}
	if cur.reg.Source != SourceAPI {
		return RegisteredEndpoint{}, ownedError(cur)
	}
	if revision != 0 && cur.reg.Revision != revision {
		return RegisteredEndpoint{}, fmt.Errorf("%w: endpoint %q is at revision %d, not %d", ErrRevisionMismatch, ep.ID, cur.reg.Revision, revision)
	}
	if err := o.routeFreeLocked(ep); err != nil {
		return RegisteredEndpoint{}, err
	}
	reg, err := o.registry.Put(ctx, Registration{Endpoint: ep, Source: SourceAPI, RegisteredAt: cur.reg.RegisteredAt}, PutUpdate)
	if err != nil {
		return RegisteredEndpoint{}, err
	}
	o.putLocked(reg)
	o.publishLocked()
	return o.view(o.entries[ep.ID]), nil
}

// Deregister removes an API-owned endpoint. Requests already forwarded to
// it finish. Errors: ErrNotFound, ErrConflict for a config-owned endpoint,
// ErrClosed after Close.
func (o *Orchestrator) Deregister(ctx context.Context, id string) error {
	return o.DeregisterIf(ctx, id, 0)
}

// DeregisterIf is Deregister on the condition that the endpoint is still at
// revision; 0 means unconditional. A newer revision gives
// ErrRevisionMismatch.
func (o *Orchestrator) DeregisterIf(ctx context.Context, id string, revision uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.errIfClosed(); err != nil {
		return err
	}
	cur, ok := o.entries[id]
	if !ok {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if cur.reg.Source != SourceAPI {
		return ownedError(cur)
	}
	if revision != 0 && cur.reg.Revision != revision {
		return fmt.Errorf("%w: endpoint %q is at revision %d, not %d", ErrRevisionMismatch, id, cur.reg.Revision, revision)
	}
	if err := o.registry.Delete(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	o.removeLocked(id)
	o.publishLocked()
	return nil
}

func ownedError(cur *route) error {
	return fmt.Errorf("%w: endpoint %q is owned by the config file; edit the file instead (tripping its circuit breaker is the emergency lever)", ErrConflict, cur.id)
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
// reload is applied. Everything is validated first; on any error nothing
// changes. An id owned by the other source is a conflict. After Close it
// returns ErrClosed.
func (o *Orchestrator) Sync(ctx context.Context, source Source, eps []Endpoint) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.errIfClosed(); err != nil {
		return err
	}
	return o.syncLocked(ctx, source, eps, false)
}

// Apply applies a configuration file's share of the gateway as one change:
// the global circuit-breaker and health-check defaults and the endpoints of
// source "config". When the defaults change every route is rebuilt (and its
// breaker with it). Server settings (listener, prefix, trusted proxies) are
// fixed at New and need a restart. On any error nothing changes. After
// Close it returns ErrClosed.
func (o *Orchestrator) Apply(ctx context.Context, cfg *Config) error {
	if err := o.errIfClosed(); err != nil {
		return err
	}
	var errs ValidationError
	cfg.CircuitBreaker.validate("circuit_breaker", &errs)
	cfg.HealthCheck.validate("health_check", &errs)
	if err := errs.orNil(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.errIfClosed(); err != nil {
		return err
	}
	cb, hc := cfg.CircuitBreaker.withDefaults(), cfg.HealthCheck.withDefaults()
	rebuild := string(mustJSON(cb)) != string(mustJSON(o.breakerDefaults)) || string(mustJSON(hc)) != string(mustJSON(o.healthDefaults))
	oldCB, oldHC := o.breakerDefaults, o.healthDefaults
	o.breakerDefaults, o.healthDefaults = cb, &hc
	if err := o.syncLocked(ctx, SourceConfig, cfg.Endpoints, rebuild); err != nil {
		o.breakerDefaults, o.healthDefaults = oldCB, oldHC
		return err
	}
	return nil
}

// syncLocked makes the endpoints of source exactly eps. With rebuildAll,
// every route is rebuilt even when its own config is unchanged (the
// defaults it inherits changed).
func (o *Orchestrator) syncLocked(ctx context.Context, source Source, eps []Endpoint, rebuildAll bool) error {
	norm := make([]Endpoint, len(eps))
	for i, ep := range eps {
		norm[i] = ep.Normalized()
	}
	var errs ValidationError
	validateSet(norm, "endpoints", &errs)
	if err := errs.orNil(); err != nil {
		return err
	}
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
		return err
	}
	changed := false
	for id, rt := range o.entries {
		if _, keep := want[id]; !keep && rt.reg.Source == source {
			if err := o.registry.Delete(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
				o.publishLocked()
				return err
			}
			o.removeLocked(id)
			changed = true
		}
	}
	for _, ep := range norm {
		if cur, ok := o.entries[ep.ID]; ok && endpointsEqual(cur.ep, ep) {
			continue
		}
		reg, err := o.registry.Put(ctx, Registration{Endpoint: ep, Source: source}, PutUpsert)
		if err != nil {
			o.publishLocked()
			return err
		}
		o.putCheckedLocked(reg, &ep)
		changed = true
	}
	if rebuildAll {
		for id, rt := range o.entries {
			reg := Registration{Endpoint: rt.ep, Source: rt.reg.Source, Revision: rt.reg.Revision, RegisteredAt: rt.reg.RegisteredAt}
			if nrt, err := o.buildRoute(reg, rt); err == nil {
				o.setEntryLocked(id, nrt)
				if nrt.healthActive && !sameJSON(nrt.health, rt.health) {
					o.checker.Add(id, 0)
				}
			}
		}
		changed = true
	}
	if changed {
		o.publishLocked()
	}
	return nil
}

func sourceName(s Source) string {
	if s == SourceAPI {
		return "admin API"
	}
	return "config file"
}
