// Package registrytest checks an orchestrator.Registry implementation
// against the contract the gateway relies on, as testing/fstest.TestFS
// checks an fs.FS. Run it from the implementation's own tests:
//
//	func TestConformance(t *testing.T) {
//		registrytest.Run(t, func(t *testing.T) orchestrator.Registry {
//			return newStore(t) // empty; closed by t.Cleanup
//		})
//	}
//
// The suite checks what a fleet of gateways sharing the store depends on:
// revisions that increase with every write and equal the ones events
// carry; preconditions checked by the store (a stale revision fails with
// ErrRevisionMismatch and changes nothing); atomic commits; events that
// carry their records; a List whose revision, watched from, shows exactly
// the later changes; a watch that resumes from a revision without losing
// or repeating an event; writers that never wait for a slow watcher; and
// a gateway that does not deadlock on the store, also when its events are
// delivered synchronously (see Synchronous).
//
// A store may answer a watch with Resync when it no longer keeps the
// history asked for, but the suite expects it to keep at least the last
// MinHistory revisions: a gateway whose watch drops for a moment must be
// able to resume, not re-list.
//
// The package uses only the standard library's testing, so importing it
// adds nothing to a module's dependencies beyond orchestrator itself.
package registrytest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/orchestrator-go/orchestrator"
)

// MinHistory is how many recent revisions a store must be able to replay
// to a watch that resumes after one of them.
const MinHistory = 100

// wait bounds every wait of the suite: long enough for a loaded CI machine,
// short enough that a deadlock fails the test rather than its timeout.
const wait = 20 * time.Second

// Run runs the conformance suite as subtests of t. Each subtest calls
// newRegistry for a fresh, empty registry; it should register its own
// cleanup with t.Cleanup. Subtests do not run in parallel, so a registry
// may share a backing store if newRegistry empties it.
func Run(t *testing.T, newRegistry func(t *testing.T) orchestrator.Registry) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, r orchestrator.Registry)
	}{
		{"Revisions", testRevisions},
		{"Preconditions", testPreconditions},
		{"EventsCarryRecordsAndRevisions", testEvents},
		{"ListThenWatchSeesExactlyLaterChanges", testListThenWatch},
		{"WatchResumesWithoutLossOrDuplicates", testWatchResume},
		{"HistoryKeepsMinHistoryRevisions", testHistory},
		{"CommitIsAtomic", testCommitAtomic},
		{"Overrides", testOverrides},
		{"SlowWatcherNeverBlocksWriters", testSlowWatcher},
		{"WatchEndsWithItsContext", testWatchEnds},
		{"Gateway", testGateway},
		{"GatewayWithSynchronousDelivery", func(t *testing.T, r orchestrator.Registry) { testGateway(t, Synchronous(r)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newRegistry(t)) })
	}
}

func testRevisions(t *testing.T, r orchestrator.Registry) {
	ctx := context.Background()
	empty := list(t, r)
	if len(empty.Registrations) != 0 || len(empty.Overrides) != 0 {
		t.Fatalf("a new registry lists %d registrations and %d overrides; want none", len(empty.Registrations), len(empty.Overrides))
	}
	last := empty.Revision
	a := put(t, r, registration("a", 1), orchestrator.IfAbsent)
	if a.Revision <= last {
		t.Errorf("first Put's revision %d; want more than the list's %d", a.Revision, last)
	}
	if a.RegisteredAt.IsZero() {
		t.Errorf("Put left RegisteredAt zero; want the creation time")
	}
	got, err := r.Get(ctx, "a")
	if err != nil || !sameRegistration(got, a) {
		t.Errorf("Get(a) = %+v, %v; want what Put returned, %+v", got, err, a)
	}
	b := put(t, r, registration("b", 2), orchestrator.IfAbsent)
	a2 := put(t, r, registration("a", 3), orchestrator.IfRevision(a.Revision))
	if !(a.Revision < b.Revision && b.Revision < a2.Revision) {
		t.Errorf("revisions %d, %d, %d; want them increasing with every write, across ids", a.Revision, b.Revision, a2.Revision)
	}
	if !a2.RegisteredAt.Equal(a.RegisteredAt) {
		t.Errorf("replacing a kept RegisteredAt %v; want the creation time %v", a2.RegisteredAt, a.RegisteredAt)
	}
	snap := list(t, r)
	if snap.Revision != a2.Revision {
		t.Errorf("List's revision %d; want the last write's %d", snap.Revision, a2.Revision)
	}
	if len(snap.Registrations) != 2 {
		t.Errorf("List holds %d registrations; want 2", len(snap.Registrations))
	}
	for _, reg := range snap.Registrations {
		want := map[string]orchestrator.Registration{"a": a2, "b": b}[reg.Endpoint.ID]
		if !sameRegistration(reg, want) {
			t.Errorf("List has %+v; want %+v", reg, want)
		}
	}
	rev := del(t, r, "b", orchestrator.IfRevision(b.Revision))
	if rev <= a2.Revision {
		t.Errorf("Delete's revision %d; want more than %d", rev, a2.Revision)
	}
	if _, err := r.Get(ctx, "b"); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Errorf("Get after Delete: %v; want ErrNotFound", err)
	}
	if snap := list(t, r); snap.Revision != rev {
		t.Errorf("List's revision after a Delete %d; want the Delete's %d", snap.Revision, rev)
	}
}

func testPreconditions(t *testing.T, r orchestrator.Registry) {
	ctx := context.Background()
	check := func(what string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: got %v; want %v", what, err, want)
		}
	}
	_, err := r.Put(ctx, registration("a", 1), orchestrator.IfExists)
	check("IfExists Put of a missing id", err, orchestrator.ErrNotFound)
	_, err = r.Put(ctx, registration("a", 1), orchestrator.IfRevision(12345))
	check("IfRevision Put of a missing id", err, orchestrator.ErrRevisionMismatch)
	_, err = r.Delete(ctx, "a", orchestrator.IfAny)
	check("Delete of a missing id", err, orchestrator.ErrNotFound)
	v1 := put(t, r, registration("a", 1), orchestrator.IfAbsent)
	_, err = r.Put(ctx, registration("a", 2), orchestrator.IfAbsent)
	check("IfAbsent Put of an existing id", err, orchestrator.ErrConflict)
	v2 := put(t, r, registration("a", 3), orchestrator.IfRevision(v1.Revision))

	// The heart of compare-and-swap between gateways: the store, not the
	// caller, refuses a write based on a revision that is no longer current.
	_, err = r.Put(ctx, registration("a", 4), orchestrator.IfRevision(v1.Revision))
	check("Put at a stale revision", err, orchestrator.ErrRevisionMismatch)
	_, err = r.Delete(ctx, "a", orchestrator.IfRevision(v1.Revision))
	check("Delete at a stale revision", err, orchestrator.ErrRevisionMismatch)
	if got, err := r.Get(ctx, "a"); err != nil || !sameRegistration(got, v2) {
		t.Errorf("after refused stale writes Get(a) = %+v, %v; want it unchanged, %+v", got, err, v2)
	}
	if snap := list(t, r); snap.Revision != v2.Revision {
		t.Errorf("List's revision after refused writes %d; want %d (a refused write is no revision)", snap.Revision, v2.Revision)
	}
	v3 := put(t, r, registration("a", 5), orchestrator.IfExists)
	v4 := put(t, r, registration("a", 6), orchestrator.IfAny)
	if v4.Revision <= v3.Revision {
		t.Errorf("revisions %d then %d; want increasing", v3.Revision, v4.Revision)
	}
	del(t, r, "a", orchestrator.IfRevision(v4.Revision))
	_, err = r.Put(ctx, registration("a", 7), orchestrator.IfRevision(v4.Revision))
	check("Put at the revision of a deleted record", err, orchestrator.ErrRevisionMismatch)
}

func testEvents(t *testing.T, r orchestrator.Registry) {
	ctx := context.Background()
	ch, _ := watch(t, r, list(t, r).Revision)
	a := put(t, r, registration("a", 1), orchestrator.IfAbsent)
	expectEvents(t, ch, []orchestrator.Event{{Revision: a.Revision, Changes: []orchestrator.Change{{Kind: orchestrator.ChangePut, Key: "a", Registration: a}}}},
		"the event of a Put: its revision is the one Put returned, and it carries the registration")
	rev := del(t, r, "a", orchestrator.IfAny)
	expectEvents(t, ch, []orchestrator.Event{{Revision: rev, Changes: []orchestrator.Change{{Kind: orchestrator.ChangeDelete, Key: "a"}}}},
		"the event of a Delete: its revision is the one Delete returned")
	ev, err := r.Commit(ctx, []orchestrator.Op{
		orchestrator.PutOp(registration("x", 1), orchestrator.IfAbsent),
		orchestrator.PutOp(registration("y", 2), orchestrator.IfAbsent),
	})
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if len(ev.Changes) != 2 || ev.Changes[0].Registration.Revision != ev.Revision || ev.Changes[1].Registration.Revision != ev.Revision {
		t.Fatalf("Commit returned %q; want two puts, each record at the commit's revision %d", describe(ev), ev.Revision)
	}
	expectEvents(t, ch, []orchestrator.Event{ev}, "the event of a Commit: one revision with all its changes, as Commit returned it")
	expectNothingMore(t, r, ch, "after a Commit")
}

func testListThenWatch(t *testing.T, r orchestrator.Registry) {
	for i := range 6 {
		write(t, r, i)
	}
	snap := list(t, r)
	var later []orchestrator.Event
	for i := 6; i < 16; i++ {
		later = append(later, write(t, r, i))
	}
	ch, _ := watch(t, r, snap.Revision)
	expectEvents(t, ch, later, fmt.Sprintf("a watch after List's revision %d: exactly the later changes", snap.Revision))
	expectNothingMore(t, r, ch, "after the later changes")
}

func testWatchResume(t *testing.T, r orchestrator.Registry) {
	start := list(t, r).Revision
	ch, cancel := watch(t, r, start)
	var all []orchestrator.Event
	for i := range 20 {
		all = append(all, write(t, r, i))
	}
	expectEvents(t, ch, all[:7], "before the watch restarts")
	cancel()
	for i := 20; i < 30; i++ {
		all = append(all, write(t, r, i))
	}
	resumed, _ := watch(t, r, all[6].Revision)
	expectEvents(t, resumed, all[7:], fmt.Sprintf("a watch resumed after revision %d: everything later, nothing twice", all[6].Revision))
	expectNothingMore(t, r, resumed, "after the resumed watch caught up")
	replay, _ := watch(t, r, start)
	expectEvents(t, replay, all, fmt.Sprintf("a watch after revision %d: the whole history since", start))
}

func testHistory(t *testing.T, r orchestrator.Registry) {
	start := list(t, r).Revision
	var all []orchestrator.Event
	for i := range MinHistory {
		all = append(all, write(t, r, i))
	}
	ch, _ := watch(t, r, start)
	expectEvents(t, ch, all, fmt.Sprintf("a watch after revision %d, %d revisions ago", start, MinHistory))
}

func testCommitAtomic(t *testing.T, r orchestrator.Registry) {
	ctx := context.Background()
	a := put(t, r, registration("a", 1), orchestrator.IfAbsent)
	a2 := put(t, r, registration("a", 2), orchestrator.IfRevision(a.Revision))
	before := list(t, r)
	ch, _ := watch(t, r, before.Revision)
	_, err := r.Commit(ctx, []orchestrator.Op{
		orchestrator.PutOp(registration("new", 3), orchestrator.IfAbsent),
		orchestrator.DeleteOp("a", orchestrator.IfRevision(a.Revision)), // stale
	})
	if !errors.Is(err, orchestrator.ErrRevisionMismatch) {
		t.Fatalf("a Commit with one stale op: %v; want ErrRevisionMismatch", err)
	}
	_, err = r.Commit(ctx, []orchestrator.Op{
		orchestrator.PutOp(registration("dup", 1), orchestrator.IfAny),
		orchestrator.DeleteOp("dup", orchestrator.IfAny),
	})
	if err == nil {
		t.Errorf("a Commit changing one id twice succeeded; want it refused")
	}
	after := list(t, r)
	if after.Revision != before.Revision || len(after.Registrations) != 1 || !sameRegistration(after.Registrations[0], a2) {
		t.Fatalf("after refused commits List = revision %d, %d registrations; want revision %d with only a unchanged", after.Revision, len(after.Registrations), before.Revision)
	}
	expectNothingMore(t, r, ch, "after refused commits (no event for them)")
	empty, err := r.Commit(ctx, nil)
	if err != nil || len(empty.Changes) != 0 {
		t.Errorf("an empty Commit = %q, %v; want no change and no error", describe(empty), err)
	}
	ev, err := r.Commit(ctx, []orchestrator.Op{
		orchestrator.DeleteOp("a", orchestrator.IfRevision(a2.Revision)),
		orchestrator.PutOp(registration("b", 4), orchestrator.IfAbsent),
		orchestrator.DeleteOp("sentinel", orchestrator.IfExists),
	})
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	expectEvents(t, ch, []orchestrator.Event{ev}, "a Commit's event")
	if got := list(t, r); got.Revision != ev.Revision || len(got.Registrations) != 1 || got.Registrations[0].Endpoint.ID != "b" {
		t.Errorf("after the Commit List = revision %d, %d registrations; want revision %d with b only", got.Revision, len(got.Registrations), ev.Revision)
	}
}

func testOverrides(t *testing.T, r orchestrator.Registry) {
	ctx := context.Background()
	ch, _ := watch(t, r, list(t, r).Revision)
	// An override needs no registration: a trip on an endpoint the store
	// does not hold (a config-file endpoint kept local) is allowed.
	trip := orchestrator.Override{Kind: orchestrator.OverrideBreakerOpen, EndpointID: "cfg", Reason: "incident"}
	ev, err := r.Commit(ctx, []orchestrator.Op{orchestrator.PutOverrideOp(trip, orchestrator.IfAbsent)})
	if err != nil {
		t.Fatalf("putting an override: %v", err)
	}
	if len(ev.Changes) != 1 || ev.Changes[0].Kind != orchestrator.ChangeOverridePut || ev.Changes[0].Key != trip.Key() {
		t.Fatalf("the override's commit %q; want one override-put of %s", describe(ev), trip.Key())
	}
	stored := ev.Changes[0].Override
	if stored.Revision != ev.Revision || stored.CreatedAt.IsZero() || stored.Reason != trip.Reason {
		t.Errorf("stored override %+v; want revision %d, a creation time and the reason kept", stored, ev.Revision)
	}
	expectEvents(t, ch, []orchestrator.Event{ev}, "the event of an override")
	snap := list(t, r)
	if len(snap.Overrides) != 1 || !sameJSON(snap.Overrides[0], stored) || len(snap.Registrations) != 0 {
		t.Errorf("List = %d registrations, overrides %+v; want only the override", len(snap.Registrations), snap.Overrides)
	}
	_, err = r.Commit(ctx, []orchestrator.Op{orchestrator.PutOverrideOp(trip, orchestrator.IfAbsent)})
	if !errors.Is(err, orchestrator.ErrConflict) {
		t.Errorf("a second IfAbsent override: %v; want ErrConflict", err)
	}
	trip.Reason = "still investigating"
	edited, err := r.Commit(ctx, []orchestrator.Op{orchestrator.PutOverrideOp(trip, orchestrator.IfRevision(stored.Revision))})
	if err != nil {
		t.Fatalf("editing the override at its revision: %v", err)
	}
	_, err = r.Commit(ctx, []orchestrator.Op{orchestrator.DeleteOverrideOp(trip.Key(), orchestrator.IfRevision(stored.Revision))})
	if !errors.Is(err, orchestrator.ErrRevisionMismatch) {
		t.Errorf("deleting an override at a stale revision: %v; want ErrRevisionMismatch", err)
	}
	// A registration with the endpoint's id is a record of its own.
	reg := put(t, r, registration("cfg", 1), orchestrator.IfAbsent)
	gone, err := r.Commit(ctx, []orchestrator.Op{orchestrator.DeleteOverrideOp(trip.Key(), orchestrator.IfRevision(edited.Revision))})
	if err != nil {
		t.Fatalf("deleting the override: %v", err)
	}
	expectEvents(t, ch, []orchestrator.Event{
		edited,
		{Revision: reg.Revision, Changes: []orchestrator.Change{{Kind: orchestrator.ChangePut, Key: "cfg", Registration: reg}}},
		gone,
	}, "an override edited, a registration beside it, then the override's removal")
	if snap := list(t, r); len(snap.Overrides) != 0 || len(snap.Registrations) != 1 {
		t.Errorf("List = %d registrations, %d overrides; want the registration only", len(snap.Registrations), len(snap.Overrides))
	}
}

func testSlowWatcher(t *testing.T, r orchestrator.Registry) {
	const writes = 300
	start := list(t, r).Revision
	ch, _ := watch(t, r, start)
	done := make(chan []orchestrator.Event, 1)
	failed := make(chan string, 1)
	go func() {
		var evs []orchestrator.Event
		for i := range writes {
			stored, err := r.Put(context.Background(), registration(fmt.Sprintf("w%d", i%10), i), orchestrator.IfAny)
			if err != nil {
				failed <- err.Error()
				return
			}
			evs = append(evs, orchestrator.Event{Revision: stored.Revision, Changes: []orchestrator.Change{{Kind: orchestrator.ChangePut, Key: stored.Endpoint.ID, Registration: stored}}})
		}
		done <- evs
	}()
	var want []orchestrator.Event
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case want = <-done:
	case msg := <-failed:
		t.Fatalf("a write failed: %s", msg)
	case <-timer.C:
		t.Fatalf("%d writes did not finish within %v while a watcher read nothing; want writers never blocked by a watcher", writes, wait)
	}
	// Then the watcher reads: every revision in order, or (a store that
	// let it fall behind) some of them and a Resync that ends the watch.
	for i, w := range want {
		ev := next(t, ch, "a slow watcher")
		if ev.Resync {
			if _, open := <-ch; open {
				t.Fatalf("an event after Resync; want the watch closed")
			}
			t.Logf("the store sent Resync after %d of %d revisions to a watcher that read nothing", i, writes)
			return
		}
		if !sameEvents([]orchestrator.Event{ev}, []orchestrator.Event{w}) {
			t.Fatalf("a slow watcher's event %d: got %q; want %q (in order, none lost or merged)", i, describe(ev), describe(w))
		}
	}
}

func testWatchEnds(t *testing.T, r orchestrator.Registry) {
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := r.Watch(ctx, list(t, r).Revision)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	put(t, r, registration("a", 1), orchestrator.IfAny)
	cancel()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				// Writes after the watch ended neither block nor fail.
				put(t, r, registration("b", 2), orchestrator.IfAny)
				return
			}
		case <-timer.C:
			t.Fatalf("the watch did not close within %v of its context ending", wait)
		}
	}
}

// testGateway runs a gateway on r through every kind of write it makes
// and one it must follow.
func testGateway(t *testing.T, r orchestrator.Registry) {
	ctx := context.Background()
	off := false
	var o *orchestrator.Orchestrator
	within(t, "New with config endpoints", func() error {
		var err error
		o, err = orchestrator.New(
			orchestrator.WithRegistry(r),
			orchestrator.WithLogger(slog.New(slog.DiscardHandler)),
			orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Enabled: &off}),
			orchestrator.WithEndpoints(endpoint("cfg", 1)),
		)
		return err
	})
	t.Cleanup(func() {
		// A deadlocked gateway cannot close either: report it rather than
		// hang the test binary.
		closed := make(chan struct{})
		go func() { o.Close(); close(closed) }()
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-closed:
		case <-timer.C:
			t.Errorf("Close did not return within %v; the gateway is deadlocked on its registry", wait)
		}
	})
	var v1, v2 orchestrator.RegisteredEndpoint
	within(t, "Register", func() (err error) {
		v1, err = o.Register(ctx, endpoint("api", 2))
		return err
	})
	if _, err := o.Endpoint("api"); err != nil {
		t.Fatalf("right after Register: %v; want it routable", err)
	}
	within(t, "UpdateIf at the current revision", func() (err error) {
		v2, err = o.UpdateIf(ctx, endpoint("api", 3), v1.Revision)
		return err
	})
	within(t, "UpdateIf at a stale revision", func() error {
		_, err := o.UpdateIf(ctx, endpoint("api", 4), v1.Revision)
		if !errors.Is(err, orchestrator.ErrRevisionMismatch) {
			return fmt.Errorf("got %v; want ErrRevisionMismatch", err)
		}
		return nil
	})
	if got, err := r.Get(ctx, "api"); err != nil || got.Revision != v2.Revision {
		t.Fatalf("the store holds api at %+v, %v; want the update at revision %d", got, err, v2.Revision)
	}
	within(t, "Sync", func() error {
		return o.Sync(ctx, orchestrator.SourceConfig, []orchestrator.Endpoint{endpoint("cfg", 5), endpoint("cfg2", 6)})
	})
	within(t, "Deregister", func() error { return o.DeregisterIf(ctx, "api", v2.Revision) })
	within(t, "several writes in a row", func() error {
		for i := range 20 {
			id := fmt.Sprintf("burst-%d", i%3)
			if _, err := o.Register(ctx, endpoint(id, i)); err != nil {
				return err
			}
			if err := o.Deregister(ctx, id); err != nil {
				return err
			}
		}
		return nil
	})
	// A write by someone else (another gateway) is followed.
	var oob orchestrator.Registration
	within(t, "a write straight to the store", func() (err error) {
		oob, err = r.Put(ctx, registration("oob", 7), orchestrator.IfAbsent)
		return err
	})
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if got, err := o.Endpoint("oob"); err == nil && got.Revision == oob.Revision {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not follow a write straight to the store within %v", wait)
		}
		<-tick.C
	}
	for _, id := range []string{"cfg", "cfg2", "oob"} {
		if _, err := o.Endpoint(id); err != nil {
			t.Errorf("endpoint %s: %v; want it routable", id, err)
		}
	}
	within(t, "Close", o.Close)
}
