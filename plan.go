package orchestrator

import (
	"context"
	"errors"
	"fmt"

	"github.com/orchestrator-go/orchestrator/internal/jsondiff"
)

// Plan is what applying a desired state (Apply) would change, computed
// without changing anything: the endpoints of source "config" added,
// removed and changed, field by field, with their targets, and the global
// defaults. An operator reads it before saving a config file, as a
// Terraform user reads a plan. Endpoints owned by the admin API are never
// touched by Apply and are left out; an id or a route of the desired state
// that one of them holds makes PlanApply fail as Apply would.
type Plan struct {
	// Added are the endpoints Apply would register, in the desired
	// state's order.
	Added []PlannedEndpoint `json:"added"`
	// Removed are the config-owned endpoints Apply would deregister, by id.
	Removed []PlannedEndpoint `json:"removed"`
	// Changed are the endpoints whose configuration would change, in the
	// desired state's order.
	Changed []EndpointChange `json:"changed"`
	// Unchanged counts the endpoints Apply would leave as they are.
	Unchanged int `json:"unchanged"`
	// Defaults are the changes to the global circuit_breaker,
	// health_check, rate_limit and adaptive_concurrency sections, as fields with their defaults applied. When
	// there are any, every route is rebuilt with them (its breaker and
	// health state start afresh).
	Defaults []FieldChange `json:"defaults"`
}

// Empty reports whether applying would change nothing.
func (p Plan) Empty() bool {
	return len(p.Added) == 0 && len(p.Removed) == 0 && len(p.Changed) == 0 && len(p.Defaults) == 0
}

// PlannedEndpoint is an endpoint a plan adds or removes.
type PlannedEndpoint struct {
	// ID is the endpoint's id.
	ID string `json:"id"`
	// Route is the gateway path it serves: the prefix, its name and version.
	Route string `json:"route"`
	// Targets are its targets (the url shorthand's one included).
	Targets []PlannedTarget `json:"targets"`
}

// PlannedTarget is a target as a plan names it.
type PlannedTarget struct {
	// ID is the target's id (TargetID: host:port by default).
	ID string `json:"id"`
	// URL is the target's base URL.
	URL string `json:"url"`
}

// EndpointChange is one endpoint's change in a plan.
type EndpointChange struct {
	// ID is the endpoint's id.
	ID string `json:"id"`
	// Fields are its changed settings but for its targets, each by its
	// path in the config (timeout, circuit_breaker.failure_threshold).
	Fields []FieldChange `json:"fields"`
	// TargetsAdded and TargetsRemoved are targets, matched by id, that
	// the change adds and removes; a target whose URL moves to another
	// host:port is removed and added, as its observed state is.
	TargetsAdded   []PlannedTarget `json:"targets_added"`
	TargetsRemoved []PlannedTarget `json:"targets_removed"`
	// TargetsChanged are targets kept under their id whose settings
	// change (url path, weight, tls).
	TargetsChanged []TargetChange `json:"targets_changed"`
}

// TargetChange is one kept target's changed settings.
type TargetChange struct {
	// ID is the target's id.
	ID string `json:"id"`
	// Fields are its changed settings (url, weight, tls.ca_file, ...).
	Fields []FieldChange `json:"fields"`
}

// FieldChange is one setting's change: its path and its old and new values
// as the admin API's JSON writes them (durations as seconds). Old is
// absent when the field was not set; New when it no longer is.
type FieldChange struct {
	// Field is the setting's path, such as retry.attempts.
	Field string `json:"field"`
	// Old is the value before; nil when it was not set.
	Old any `json:"old,omitempty"`
	// New is the value after; nil when it is no longer set.
	New any `json:"new,omitempty"`
}

// PlanApply answers what Apply(ctx, d) would do now, changing nothing. It
// validates d as Apply does and returns the same errors: a
// *ValidationError (ErrInvalid) listing every problem, an id or a route
// held by an API-owned endpoint included, or ErrClosed after Close.
func (o *Orchestrator) PlanApply(ctx context.Context, d Desired) (Plan, error) {
	if err := o.errIfClosed(); err != nil {
		return Plan{}, err
	}
	var errs ValidationError
	d.validateDefaults(&errs)
	norm := make([]Endpoint, len(d.Endpoints))
	for i, ep := range d.Endpoints {
		norm[i] = ep.Normalized()
	}
	validateSet(norm, "endpoints", &errs)
	o.checkHeaderRulesForTokens(norm, &errs)
	if err := errs.orNil(); err != nil {
		return Plan{}, err
	}
	// syncOps is Apply's own decision of what to write, so the plan cannot
	// drift from what applying does.
	ops, err := o.syncOps(SourceConfig, norm)
	if err != nil {
		return Plan{}, err
	}
	o.mu.Lock()
	current := make(map[string]Endpoint, len(o.entries))
	for id, rt := range o.entries {
		current[id] = rt.ep
	}
	breakerDefaults, healthDefaults, rateLimitDefaults, adaptiveDefaults := o.breakerDefaults, *o.healthDefaults, o.rateLimitDefaults, o.adaptiveDefaults
	o.mu.Unlock()

	p := Plan{Added: []PlannedEndpoint{}, Removed: []PlannedEndpoint{}, Changed: []EndpointChange{}, Defaults: []FieldChange{}}
	touched := 0
	for _, op := range ops {
		switch op.Kind {
		case ChangeDelete:
			p.Removed = append(p.Removed, o.plannedEndpoint(current[op.Key]))
		case ChangePut:
			ep := op.Registration.Endpoint
			old, exists := current[ep.ID]
			if !exists {
				p.Added = append(p.Added, o.plannedEndpoint(ep))
				continue
			}
			touched++
			p.Changed = append(p.Changed, diffEndpoints(old, ep))
		}
	}
	p.Unchanged = len(norm) - len(p.Added) - touched
	p.Defaults = append(p.Defaults, diffValues("circuit_breaker", breakerDefaults, d.CircuitBreaker.withDefaults())...)
	p.Defaults = append(p.Defaults, diffValues("health_check", healthDefaults, d.HealthCheck.withDefaults())...)
	p.Defaults = append(p.Defaults, diffValues("rate_limit", rateLimitDefaults, d.RateLimit)...)
	p.Defaults = append(p.Defaults, diffValues("adaptive_concurrency", adaptiveDefaults, d.AdaptiveConcurrency)...)
	return p, nil
}

// checkHeaderRulesForTokens adds the admin-token refusals of eps to errs,
// at endpoints[i].
func (o *Orchestrator) checkHeaderRulesForTokens(eps []Endpoint, errs *ValidationError) {
	for i, ep := range eps {
		var tokenErr *ValidationError
		if errors.As(o.checkHeaderRulesForToken(ep), &tokenErr) {
			for _, fe := range tokenErr.Errors {
				errs.add(fmt.Sprintf("endpoints[%d].%s", i, fe.Field), fe.Message)
			}
		}
	}
}

func (o *Orchestrator) plannedEndpoint(ep Endpoint) PlannedEndpoint {
	return PlannedEndpoint{ID: ep.ID, Route: o.prefix + routeKeyString(ep.Name, ep.Version), Targets: plannedTargets(ep.TargetList())}
}

func plannedTargets(ts []Target) []PlannedTarget {
	out := make([]PlannedTarget, len(ts))
	for i, t := range ts {
		out[i] = PlannedTarget{ID: t.TargetID(), URL: t.URL}
	}
	return out
}

// diffEndpoints compares two configurations of one endpoint: every field
// but url and targets by its JSON form (the form endpointsEqual agrees
// with), and the targets by id.
func diffEndpoints(old, cur Endpoint) EndpointChange {
	c := EndpointChange{ID: cur.ID, TargetsAdded: []PlannedTarget{}, TargetsRemoved: []PlannedTarget{}, TargetsChanged: []TargetChange{}}
	oldTargets, curTargets := old.TargetList(), cur.TargetList()
	o, n := old, cur
	o.URL, o.Targets, n.URL, n.Targets = "", nil, "", nil
	c.Fields = diffValues("", o, n)

	byID := make(map[string]Target, len(oldTargets))
	for _, t := range oldTargets {
		byID[t.TargetID()] = t
	}
	kept := make(map[string]bool, len(curTargets))
	for _, t := range curTargets {
		id := t.TargetID()
		kept[id] = true
		prev, ok := byID[id]
		if !ok {
			c.TargetsAdded = append(c.TargetsAdded, PlannedTarget{ID: id, URL: t.URL})
			continue
		}
		// A default id is spelled out on neither side's JSON; compare
		// the targets as they are, with the id they resolve to.
		prev.ID, t.ID = id, id
		if fields := diffValues("", prev, t); len(fields) > 0 {
			c.TargetsChanged = append(c.TargetsChanged, TargetChange{ID: id, Fields: fields})
		}
	}
	for _, t := range oldTargets {
		if id := t.TargetID(); !kept[id] {
			c.TargetsRemoved = append(c.TargetsRemoved, PlannedTarget{ID: id, URL: t.URL})
		}
	}
	if len(old.Targets) != len(cur.Targets) && (len(old.Targets) == 0 || len(cur.Targets) == 0) {
		// The url shorthand and a targets list are two spellings of the
		// same thing; say which one the endpoint now uses.
		c.Fields = append(c.Fields, FieldChange{Field: "targets", Old: spelling(old), New: spelling(cur)})
	}
	return c
}

func spelling(ep Endpoint) string {
	if len(ep.Targets) > 0 {
		return fmt.Sprintf("a list of %d", len(ep.Targets))
	}
	return "the url shorthand"
}

// diffValues compares two values through their JSON forms (jsondiff).
func diffValues(prefix string, old, cur any) []FieldChange {
	changes := jsondiff.Leaves(prefix, old, cur)
	out := make([]FieldChange, len(changes))
	for i, c := range changes {
		out[i] = FieldChange{Field: c.Field, Old: c.Old, New: c.New}
	}
	return out
}
