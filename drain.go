package orchestrator

import (
	"errors"
	"fmt"
)

// DrainTarget takes one target of an endpoint out of balancing without
// editing the config: it gets no new requests (its weight counts as 0),
// while requests in flight to it finish. Like a manual breaker trip it is
// an operator override (OverrideTargetDrained) stored in the registry:
// desired state that every gateway sharing the registry applies, that a
// config reload keeps, and that config-owned endpoints accept. target is
// the target's id (Target.TargetID). Draining a drained target is not an
// error. Errors: ErrNotFound for an unknown endpoint or target, the
// registry's error, ErrClosed after Close.
func (o *Orchestrator) DrainTarget(id, target string) error {
	if err := o.errIfClosed(); err != nil {
		return err
	}
	if err := o.checkTarget(id, target); err != nil {
		return err
	}
	return o.commitOverride(PutOverrideOp(Override{Kind: OverrideTargetDrained, EndpointID: id, Target: target}, IfAny))
}

// RestoreTarget ends a DrainTarget: the target takes requests again as
// soon as it is eligible. Restoring a target that is not drained is not an
// error. Errors: ErrNotFound for an unknown endpoint or target, the
// registry's error, ErrClosed after Close.
func (o *Orchestrator) RestoreTarget(id, target string) error {
	if err := o.errIfClosed(); err != nil {
		return err
	}
	if err := o.checkTarget(id, target); err != nil {
		return err
	}
	err := o.commitOverride(DeleteOverrideOp(drainOverrideKey(id, target), IfAny))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// checkTarget returns ErrNotFound unless the endpoint id has the target.
func (o *Orchestrator) checkTarget(id, target string) error {
	rt := o.table.Load().route(id)
	if rt == nil {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	for _, u := range rt.targets {
		if u.id == target {
			return nil
		}
	}
	return fmt.Errorf("%w: endpoint %q has no target %q", ErrNotFound, id, target)
}

// drainOverrideKey is the key of the override that drains a target.
func drainOverrideKey(id, target string) string {
	return Override{Kind: OverrideTargetDrained, EndpointID: id, Target: target}.Key()
}

// applyDrainLocked makes the endpoint's targets follow the drain
// overrides now held.
func (o *Orchestrator) applyDrainLocked(id string) {
	rt := o.entries[id]
	if rt == nil {
		return // the override waits for its endpoint (buildTargets applies it)
	}
	for _, u := range rt.targets {
		_, drained := o.overrides[drainOverrideKey(id, u.id)]
		u.drained.Store(drained)
	}
}
