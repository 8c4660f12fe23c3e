package orchestrator

import (
	"log/slog"
	"slices"
)

// putLocked builds the route for reg unless the same revision is applied.
// A registration that fails validation (written by someone else to a shared
// registry) is logged and left out.
func (o *Orchestrator) putLocked(reg Registration) bool {
	return o.putCheckedLocked(reg, nil)
}

// putCheckedLocked is putLocked for a registration the registry returned
// after storing checked, an endpoint already validated: unless the
// registry changed it, it is not validated again (a reload of 10,000
// endpoints would otherwise validate each twice).
func (o *Orchestrator) putCheckedLocked(reg Registration, checked *Endpoint) bool {
	id := reg.Endpoint.ID
	old := o.entries[id]
	if old != nil && old.reg.Revision == reg.Revision && reg.Revision != 0 {
		return false
	}
	if validated := checked != nil && endpointsEqual(*checked, reg.Endpoint); !validated {
		if err := reg.Endpoint.Validate(); err != nil {
			o.routerLog.Error("ignoring an invalid endpoint from the registry", slog.String("endpoint_id", id), slog.String("error", err.Error()))
			return o.removeLocked(id)
		}
	}
	rt, err := o.buildRoute(reg, old)
	if err != nil {
		o.routerLog.Error("ignoring an endpoint that cannot be routed", slog.String("endpoint_id", id), slog.String("error", err.Error()))
		return o.removeLocked(id)
	}
	o.setEntryLocked(id, rt)
	switch {
	case !rt.healthActive:
		o.checker.Remove(id)
	case rt.freshHealth(old) || !sameJSON(old.health, rt.health):
		// Probe right away: a new endpoint's status should not wait an
		// interval, nor a fresh health state (a new upstream or probe URL,
		// checks just turned on), nor a new health check config. The first
		// Add starts the probe workers.
		o.checker.Add(id, 0)
	}
	return true
}

func (o *Orchestrator) removeLocked(id string) bool {
	if _, ok := o.entries[id]; !ok {
		return false
	}
	o.deleteEntryLocked(id)
	// Its series go away with it: they are written from the route table.
	o.checker.Remove(id)
	return true
}

func (o *Orchestrator) setEntryLocked(id string, rt *route) {
	if old := o.entries[id]; old != nil && old.ep.Name != rt.ep.Name {
		o.unindexLocked(old)
	}
	o.entries[id] = rt
	o.setProbeRoute(id, rt)
	named := o.byName[rt.ep.Name]
	if i := slices.IndexFunc(named, func(r *route) bool { return r.ep.ID == id }); i >= 0 {
		named[i] = rt
	} else {
		o.byName[rt.ep.Name] = append(named, rt)
	}
	o.dirtyIDs[id] = struct{}{}
	o.dirtyNames[rt.ep.Name] = struct{}{}
}

func (o *Orchestrator) deleteEntryLocked(id string) {
	if old := o.entries[id]; old != nil {
		o.unindexLocked(old)
	}
	delete(o.entries, id)
	o.setProbeRoute(id, nil)
	o.dirtyIDs[id] = struct{}{}
}

func (o *Orchestrator) unindexLocked(rt *route) {
	named := slices.DeleteFunc(o.byName[rt.ep.Name], func(r *route) bool { return r.ep.ID == rt.ep.ID })
	if len(named) == 0 {
		delete(o.byName, rt.ep.Name)
	} else {
		o.byName[rt.ep.Name] = named
	}
	o.dirtyNames[rt.ep.Name] = struct{}{}
}

// publishLocked swaps in a route table reflecting o.entries. When few
// entries changed it edits a copy of the previous table's indexes (which
// copies only the shards touched) for the ids and names touched;
// otherwise it rebuilds everything.
func (o *Orchestrator) publishLocked() {
	prev := o.table.Load()
	var (
		t        *routeTable
		shadowed []*route
	)
	if prev == emptyTable || len(o.dirtyIDs)*8 > len(o.entries) {
		t, shadowed = buildTable(o.entries)
	} else {
		ids := prev.ids.Edit()
		paths := prev.paths.Edit()
		for id := range o.dirtyIDs {
			// The path the endpoint's previous route served is given up
			// first; the names loop below sets every touched name's paths
			// to the routes that serve them now (a route it shadowed, say).
			if old := prev.ids.Get(id); old != nil && prev.paths.Get(old.path) == old {
				paths.Delete(old.path)
			}
			ids.Set(id, o.entries[id]) // nil deletes
		}
		for name := range o.dirtyNames {
			byPath, sh := servingRoutes(o.routesNamedLocked(name))
			shadowed = append(shadowed, sh...)
			for path, rt := range byPath {
				paths.Set(path, rt)
			}
		}
		t = &routeTable{ids: ids.Index(), paths: paths.Index()}
	}
	// After a large change, fresh sets: clear keeps a map's full size, and
	// these would hold room for 10,000 ids for good after one big reload.
	if len(o.dirtyIDs) > 64 {
		o.dirtyIDs = make(map[string]struct{})
	} else {
		clear(o.dirtyIDs)
	}
	if len(o.dirtyNames) > 64 {
		o.dirtyNames = make(map[string]struct{})
	} else {
		clear(o.dirtyNames)
	}
	for _, rt := range shadowed {
		o.routerLog.Warn("two endpoints claim the same route; the earlier registration serves it",
			slog.String("endpoint_id", rt.ep.ID), slog.String("route", o.prefix+routeKeyString(rt.ep.Name, rt.ep.Version)))
	}
	o.table.Store(t)
}

// routesNamedLocked returns the routes of one name, by id.
func (o *Orchestrator) routesNamedLocked(name string) map[string]*route {
	named := o.byName[name]
	m := make(map[string]*route, len(named))
	for _, rt := range named {
		m[rt.ep.ID] = rt
	}
	return m
}

// buildRoute computes everything the hot path needs for reg. Observed state
// carries over from old when the upstream stays the same.
func (o *Orchestrator) buildRoute(reg Registration, old *route) (*route, error) {
	// Normalized: a registry written by others may hold "get" for GET.
	ep := reg.Endpoint.Normalized()
	rt := &route{
		reg:      registration{Source: reg.Source, Revision: reg.Revision, RegisteredAt: reg.RegisteredAt},
		ep:       ep,
		path:     routeKeyString(ep.Name, ep.Version),
		allowAll: len(ep.Methods) == 0,
	}

	breakerCfg := o.breakerDefaults
	if ep.CircuitBreaker != nil {
		breakerCfg = ep.CircuitBreaker.merge(o.breakerDefaults)
	}
	if o.metrics != nil {
		// The series of an id keep counting across its config changes.
		if old != nil && old.metrics != nil {
			rt.metrics = old.metrics
		} else {
			rt.metrics = &endpointMetrics{}
		}
	}
	rt.health = o.healthDefaults
	if ep.HealthCheck != nil {
		merged := ep.HealthCheck.merge(*o.healthDefaults)
		rt.health = &merged
	}
	// Probed when checks are on and the prober has something to check: a
	// custom prober checks every endpoint, the HTTP prober only those with
	// a health_check_path.
	rt.healthActive = rt.health.enabled() && !ep.Disabled && (ep.HealthCheckPath != "" || o.probesEveryEndpoint())
	if err := o.buildTargets(rt, old, breakerCfg); err != nil {
		return nil, err
	}
	rt.retry = newRetryPlan(ep.Retry, rt.headerTimeout())
	if rt.retry != nil && old != nil && old.retry != nil {
		rt.retry.stats = old.retry.stats // counters keep counting across config changes
	}
	rt.policies = newEndpointPolicies(ep.MaxConcurrent, rt.retry, o.extraPolicies)
	if old != nil && old.sameUpstreams(rt) {
		rt.traffic = old.traffic
	} else {
		rt.traffic = &trafficState{}
	}
	if old != nil {
		rt.timeline.carry(&old.timeline)
	}

	rt.fallback = newFallbackPlan(breakerCfg.FallbackStrategy, ep.Fallback)
	limits := o.rateLimitDefaults
	if ep.RateLimit != nil {
		limits = *ep.RateLimit
	}
	var oldLimits *rateLimitPlan
	var oldAdaptive *adaptivePlan
	if old != nil {
		oldLimits, oldAdaptive = old.rateLimitPlan(), old.adaptivePlan()
	}
	extra := routeExtra{headers: newHeaderPlan(ep), rateLimits: newRateLimitPlan(limits, oldLimits),
		adaptive: newAdaptivePlan(ep.AdaptiveConcurrency, o.adaptiveDefaults, oldAdaptive)}
	if extra != (routeExtra{}) {
		rt.extra = &extra
	}
	return rt, nil
}
