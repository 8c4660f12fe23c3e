package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// RegisterAll adds several endpoints owned by the API (source "api") as one
// change: every one of them is routable when it returns, or, on any error,
// none is registered. They are written to the registry in one Commit and
// published in one route table, so that no reader, of this gateway or of
// another following the same registry, ever sees some of them without the
// others. The result lists them in the order of eps; they share one
// Revision.
//
// Everything is checked before anything is written, and every problem is
// reported at once. A *ValidationError (ErrInvalid) lists each invalid
// field with the endpoint's index in eps ("[2].url"), an id or a route
// that two of them share, and an upstream the guard refuses. ErrConflict
// names, by index, every id that is already registered and every route
// another endpoint already serves; the registry refuses an id it holds even
// when this gateway has not seen it yet. No endpoints is no change and
// returns an empty slice. After Close it returns ErrClosed. It is safe for
// concurrent use, as every registration method is.
func (o *Orchestrator) RegisterAll(ctx context.Context, eps []Endpoint) ([]RegisteredEndpoint, error) {
	if err := o.errIfClosed(); err != nil {
		return nil, err // before the upstreams' DNS lookups
	}
	if len(eps) == 0 {
		return []RegisteredEndpoint{}, nil
	}
	norm := make([]Endpoint, len(eps))
	checked := make(map[string]*Endpoint, len(eps))
	for i, ep := range eps {
		norm[i] = ep.Normalized()
		checked[norm[i].ID] = &norm[i]
	}
	if err := o.checkAll(ctx, norm); err != nil {
		return nil, err
	}
	o.writeMu.Lock()
	defer o.writeMu.Unlock()
	if err := o.refuseTaken(norm); err != nil {
		return nil, err
	}
	ops := make([]Op, len(norm))
	for i, ep := range norm {
		ops[i] = PutOp(Registration{Endpoint: ep, Source: SourceAPI}, IfAbsent)
	}
	ev, err := o.registry.Commit(ctx, ops)
	if err != nil {
		// ErrConflict here: another gateway sharing the store registered
		// one of the ids since the check above. The store refused the
		// commit whole; its error names the op, whose index is the
		// endpoint's.
		return nil, fmt.Errorf("%w; nothing was registered", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.errIfClosed(); err != nil {
		return nil, err
	}
	if o.applyOwnLocked(ev, checked) {
		o.publishLocked()
	}
	out := make([]RegisteredEndpoint, len(norm))
	for i, ep := range norm {
		rt := o.entries[ep.ID]
		if rt == nil {
			// Removed by a newer write (another gateway's) before this one
			// could be applied.
			return nil, fmt.Errorf("%w: %q was removed by a later change", ErrNotFound, ep.ID)
		}
		out[i] = o.view(rt)
	}
	return out, nil
}

// checkAll validates norm as one set, and each upstream against the guard,
// and returns every problem found, each field prefixed by its index.
func (o *Orchestrator) checkAll(ctx context.Context, norm []Endpoint) error {
	var errs ValidationError
	validateSet(norm, "", &errs)
	for i, ep := range norm {
		var guardErr *ValidationError
		if err := o.checkUpstream(ctx, ep); errors.As(err, &guardErr) {
			for _, fe := range guardErr.Errors {
				errs.add(fmt.Sprintf("[%d].%s", i, fe.Field), fe.Message)
			}
		} else if err != nil {
			return err
		}
	}
	return errs.orNil()
}

// refuseTaken returns ErrConflict naming every endpoint of norm whose id
// is registered already or whose route another endpoint serves, or nil.
// It runs under writeMu, so that no write of this gateway slips in between
// it and the commit; the commit's IfAbsent covers the other gateways.
func (o *Orchestrator) refuseTaken(norm []Endpoint) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.errIfClosed(); err != nil {
		return err
	}
	var taken []string
	for i, ep := range norm {
		if cur, ok := o.entries[ep.ID]; ok {
			taken = append(taken, fmt.Sprintf("[%d].id: endpoint %q already exists (source %s)", i, ep.ID, cur.reg.Source))
			continue
		}
		if err := o.routeFreeLocked(ep); err != nil {
			taken = append(taken, fmt.Sprintf("[%d]: %s", i, strings.TrimPrefix(err.Error(), ErrConflict.Error()+": ")))
		}
	}
	if len(taken) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s; nothing was registered", ErrConflict, strings.Join(taken, "; "))
}
