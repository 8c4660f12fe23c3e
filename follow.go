package orchestrator

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// How the gateway follows its registry.
//
// Two locks. o.writeMu serialises this gateway's own writes (Register,
// UpdateIf, DeregisterIf, Sync, Apply) from their checks through the
// registry call to applying the result, so that one gateway's checks and
// writes do not interleave. o.mu guards the route state and is held only
// to read or apply it, never while calling the registry: the follower
// needs o.mu to apply an event, and a registry may hand over an event
// before the write that caused it returns (a synchronous callback, an
// unbuffered channel). Lock order: writeMu, then mu, then probeMu.
//
// Two appliers. The follower applies every watched revision in order and
// records it in o.followed. A writer applies the result of its own write
// at once (so that what it wrote is routable when the call returns) unless
// the follower got there first. Both go through applyChangesLocked, which
// applies a change only when it is newer than what the gateway holds for
// its key: the route's revision, or the revision of a removal in o.tombs.
// Each key therefore ends at its newest revision, whichever applier is
// first, and an older change arriving late never undoes a newer one.
// Tombstones are kept only until the follower passes them: after that
// every change either applier can still apply is newer.

// followBackoff is the wait before re-opening a closed or failed watch, or
// listing again after a failed list: short at first (a registry restart),
// doubling up to followBackoffMax so that a registry that is down is not
// hammered and the log says so once every few seconds, not continuously.
const (
	followBackoffMin = 50 * time.Millisecond
	followBackoffMax = 5 * time.Second
)

const (
	watchClosed watchEnd = iota // the channel closed: re-open after the last revision
	watchResync                 // the store cannot resume: list again
)

func followBackoff(failures int) time.Duration {
	d := followBackoffMin << min(failures, 10)
	return jitter(min(d, followBackoffMax))
}

// startFollowing loads the registry and starts following it: List, apply,
// then Watch after the list's revision, so that no change falls between
// them. New calls it before anything writes, so that a registry that
// delivers events synchronously has a reader for them. The first List and
// Watch fail New; later failures are retried by follow.
func (o *Orchestrator) startFollowing() error {
	snap, err := o.registry.List(o.ctx)
	if err != nil {
		return fmt.Errorf("orchestrator: listing the registry: %w", err)
	}
	o.mu.Lock()
	o.applySnapshotLocked(snap)
	o.publishLocked()
	o.mu.Unlock()
	wctx, wcancel := context.WithCancel(o.ctx)
	events, err := o.registry.Watch(wctx, snap.Revision)
	if err != nil {
		wcancel()
		return fmt.Errorf("orchestrator: watching the registry: %w", err)
	}
	o.wg.Add(1)
	go o.follow(events, wcancel)
	return nil
}

// watchEnd says why a watch stopped delivering.
type watchEnd int

// follow applies registry events until Close. A watch that closes is
// re-opened after the last revision applied, with back-off; a Resync makes
// it list the registry again and watch from the list's revision. Either is
// logged, so that an operator sees a registry that keeps dropping watches.
func (o *Orchestrator) follow(events <-chan Event, cancel context.CancelFunc) {
	defer o.wg.Done()
	defer func() {
		cancel()
		if v := recover(); v != nil {
			o.routerLog.Error("registry watch panicked; routes stop following the registry", slog.Any("panic", v))
		}
	}()
	failures := 0
	for {
		end, delivered := o.consume(events)
		cancel()
		if o.ctx.Err() != nil {
			return
		}
		if delivered > 0 {
			failures = 0
		}
		if end == watchResync {
			o.routerLog.Warn("the registry cannot resume the watch; listing it again")
			if !o.relist(&failures) {
				return
			}
		} else {
			wait := followBackoff(failures)
			failures++
			o.routerLog.Warn("registry watch closed; re-opening it",
				slog.Uint64("after_revision", o.followedRevision()), slog.Duration("retry_in", wait))
			if !o.pause(wait) {
				return
			}
		}
		for {
			var wctx context.Context
			wctx, cancel = context.WithCancel(o.ctx)
			var err error
			events, err = o.registry.Watch(wctx, o.followedRevision())
			if err == nil {
				break
			}
			cancel()
			if o.ctx.Err() != nil {
				return
			}
			wait := followBackoff(failures)
			failures++
			o.routerLog.Error("re-opening the registry watch failed", slog.String("error", err.Error()), slog.Duration("retry_in", wait))
			if !o.pause(wait) {
				return
			}
		}
	}
}

// consume applies events until the channel closes, a Resync arrives or
// Close. A burst is applied as one batch (one table publish).
func (o *Orchestrator) consume(events <-chan Event) (end watchEnd, delivered int) {
	for {
		var ev Event
		var ok bool
		select {
		case ev, ok = <-events:
		case <-o.ctx.Done():
			return watchClosed, delivered
		}
		if !ok {
			return watchClosed, delivered
		}
		if ev.Resync {
			return watchResync, delivered
		}
		batch := []Event{ev}
		n := len(ev.Changes)
		why, stop := watchClosed, false
	drain:
		for n < 1024 {
			select {
			case more, ok := <-events:
				switch {
				case !ok:
					stop = true
					break drain
				case more.Resync:
					why, stop = watchResync, true
					break drain
				}
				batch = append(batch, more)
				n += len(more.Changes)
			default:
				break drain
			}
		}
		delivered += len(batch)
		o.applyEvents(batch)
		if stop {
			return why, delivered
		}
	}
}

// relist lists the registry until it answers, with back-off, and applies
// the snapshot. It returns false when the gateway closes first.
func (o *Orchestrator) relist(failures *int) bool {
	for {
		snap, err := o.registry.List(o.ctx)
		if err == nil {
			o.mu.Lock()
			if !o.closed.Load() && o.applySnapshotLocked(snap) {
				o.publishLocked()
			}
			o.mu.Unlock()
			return true
		}
		if o.ctx.Err() != nil {
			return false
		}
		wait := followBackoff(*failures)
		*failures++
		o.routerLog.Error("listing the registry failed; routes keep their last known state", slog.String("error", err.Error()), slog.Duration("retry_in", wait))
		if !o.pause(wait) {
			return false
		}
	}
}

// pause waits d, or returns false when the gateway closes first.
func (o *Orchestrator) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-o.ctx.Done():
		return false
	}
}

func (o *Orchestrator) followedRevision() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.followed
}

// applyEvents applies watched revisions in order.
func (o *Orchestrator) applyEvents(batch []Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed.Load() {
		return // events still buffered when Close ran change nothing
	}
	changed := false
	for _, ev := range batch {
		if ev.Revision <= o.followed {
			continue // seen already: a store that repeats itself after a resume
		}
		changed = o.applyChangesLocked(ev.Revision, ev.Changes, nil) || changed
		o.followed = ev.Revision
	}
	o.pruneTombsLocked()
	if changed {
		o.publishLocked()
	}
}

// applyOwnLocked applies the result of this gateway's own write, unless
// the follower has applied that revision already (and maybe later ones).
func (o *Orchestrator) applyOwnLocked(ev Event, checked map[string]*Endpoint) bool {
	if ev.Revision <= o.followed {
		return false
	}
	return o.applyChangesLocked(ev.Revision, ev.Changes, checked)
}

// applyChangesLocked applies the changes of one revision, each only when
// it is newer than what the gateway holds for its key. checked holds
// endpoints this gateway validated before writing them, by id.
func (o *Orchestrator) applyChangesLocked(rev uint64, changes []Change, checked map[string]*Endpoint) bool {
	changed := false
	for _, c := range changes {
		switch c.Kind {
		case ChangePut:
			id := c.Registration.Endpoint.ID
			if o.staleLocked(id, rev) {
				continue
			}
			delete(o.tombs, id)
			changed = o.putCheckedLocked(c.Registration, checked[id]) || changed
			if o.entries[id] == nil {
				o.tombs[id] = rev // left out as invalid: an older state must not come back
			}
		case ChangeDelete:
			if o.staleLocked(c.Key, rev) {
				continue
			}
			o.tombs[c.Key] = rev
			changed = o.removeLocked(c.Key) || changed
		case ChangeOverridePut:
			key := overrideTomb(c.Key)
			if cur, ok := o.overrides[c.Key]; (ok && cur.Revision >= rev) || o.tombs[key] >= rev {
				continue
			}
			delete(o.tombs, key)
			o.overrides[c.Key] = c.Override
			o.applyOverrideLocked(c.Override)
		case ChangeOverrideDelete:
			key := overrideTomb(c.Key)
			cur, ok := o.overrides[c.Key]
			if (ok && cur.Revision >= rev) || o.tombs[key] >= rev {
				continue
			}
			o.tombs[key] = rev
			delete(o.overrides, c.Key)
			if ok {
				o.applyOverrideLocked(cur)
			}
		}
	}
	return changed
}

// applyOverrideLocked makes the endpoint an override names follow the
// overrides now held, after ov was stored or removed.
func (o *Orchestrator) applyOverrideLocked(ov Override) {
	switch ov.Kind {
	case OverrideBreakerOpen:
		o.applyHoldLocked(ov.EndpointID)
	case OverrideTargetDrained:
		o.applyDrainLocked(ov.EndpointID)
	}
}

// overrideTomb is an override's key in o.tombs, apart from endpoint ids
// (which never start with a NUL byte).
func overrideTomb(key string) string { return "\x00" + key }

// staleLocked reports whether the gateway holds a state of the endpoint id
// at rev or newer.
func (o *Orchestrator) staleLocked(id string, rev uint64) bool {
	if rt := o.entries[id]; rt != nil && rt.reg.Revision >= rev {
		return true
	}
	tomb, ok := o.tombs[id]
	return ok && tomb >= rev
}

// pruneTombsLocked forgets removals the follower has passed: every change
// still to come is newer than them.
func (o *Orchestrator) pruneTombsLocked() {
	for key, rev := range o.tombs {
		if rev <= o.followed {
			delete(o.tombs, key)
		}
	}
}

// applySnapshotLocked makes the gateway's state the snapshot's, keeping
// anything newer it already holds (a write of its own applied after the
// list was taken). A snapshot older than what the follower has applied
// says nothing new and is ignored: applying it would bring back endpoints
// removed since. It reports whether routes changed.
func (o *Orchestrator) applySnapshotLocked(snap Snapshot) bool {
	if snap.Revision < o.followed {
		return false
	}
	changed := false
	seen := make(map[string]struct{}, len(snap.Registrations))
	for _, reg := range snap.Registrations {
		id := reg.Endpoint.ID
		seen[id] = struct{}{}
		if o.staleLocked(id, reg.Revision) {
			continue
		}
		delete(o.tombs, id)
		changed = o.putLocked(reg) || changed
	}
	for id, rt := range o.entries {
		if _, ok := seen[id]; !ok && rt.reg.Revision <= snap.Revision {
			changed = o.removeLocked(id) || changed
		}
	}
	seenOv := make(map[string]struct{}, len(snap.Overrides))
	for _, ov := range snap.Overrides {
		key := ov.Key()
		seenOv[key] = struct{}{}
		if cur, ok := o.overrides[key]; (ok && cur.Revision >= ov.Revision) || o.tombs[overrideTomb(key)] >= ov.Revision {
			continue
		}
		o.overrides[key] = ov
		o.applyOverrideLocked(ov)
	}
	for key, ov := range o.overrides {
		if _, ok := seenOv[key]; !ok && ov.Revision <= snap.Revision {
			delete(o.overrides, key)
			o.applyOverrideLocked(ov)
		}
	}
	o.followed = snap.Revision
	o.pruneTombsLocked()
	return changed
}
