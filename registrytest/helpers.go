// The suite's helpers: registrations to write, and waits on watches
// that fail the test with what they saw.

package registrytest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/orchestrator-go/orchestrator"
)

// endpoint returns a valid, normalized endpoint; n varies its upstream.
func endpoint(id string, n int) orchestrator.Endpoint {
	return orchestrator.Endpoint{ID: id, Name: id, URL: fmt.Sprintf("http://127.0.0.1:%d/%s", 1024+n, id)}.Normalized()
}

func registration(id string, n int) orchestrator.Registration {
	return orchestrator.Registration{Endpoint: endpoint(id, n), Source: orchestrator.SourceAPI}
}

// sameJSON compares two values by their JSON encoding, which is what a
// store that serialises records keeps of them (nil and empty lists, time
// zones and monotonic clock readings aside).
func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

// sameRegistration reports whether two registrations are the same record.
func sameRegistration(a, b orchestrator.Registration) bool {
	return sameJSON(a.Endpoint, b.Endpoint) && a.Source == b.Source && a.Revision == b.Revision && a.RegisteredAt.Equal(b.RegisteredAt)
}

// describe writes an event as "rev kind key, kind key" for messages.
func describe(ev orchestrator.Event) string {
	if ev.Resync {
		return "resync"
	}
	parts := make([]string, len(ev.Changes))
	for i, c := range ev.Changes {
		parts[i] = c.Kind.String() + " " + c.Key
	}
	return fmt.Sprintf("%d %s", ev.Revision, strings.Join(parts, ", "))
}

func describeAll(evs []orchestrator.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = describe(ev)
	}
	return out
}

// watch opens a watch after rev that ends with the test.
func watch(t *testing.T, r orchestrator.Registry, after uint64) (<-chan orchestrator.Event, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := r.Watch(ctx, after)
	if err != nil {
		t.Fatalf("Watch(after %d): %v", after, err)
	}
	return ch, cancel
}

// next reads one event, failing on a closed channel or after wait.
func next(t *testing.T, ch <-chan orchestrator.Event, what string) orchestrator.Event {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatalf("%s: the watch closed; want an event", what)
		}
		return ev
	case <-timer.C:
		t.Fatalf("%s: no event within %v", what, wait)
	}
	return orchestrator.Event{}
}

func list(t *testing.T, r orchestrator.Registry) orchestrator.Snapshot {
	t.Helper()
	snap, err := r.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return snap
}

func put(t *testing.T, r orchestrator.Registry, reg orchestrator.Registration, expect orchestrator.Precondition) orchestrator.Registration {
	t.Helper()
	stored, err := r.Put(context.Background(), reg, expect)
	if err != nil {
		t.Fatalf("Put(%s, %v): %v", reg.Endpoint.ID, expect, err)
	}
	return stored
}

func del(t *testing.T, r orchestrator.Registry, id string, expect orchestrator.Precondition) uint64 {
	t.Helper()
	rev, err := r.Delete(context.Background(), id, expect)
	if err != nil {
		t.Fatalf("Delete(%s, %v): %v", id, expect, err)
	}
	return rev
}

// write makes the i-th change of a scripted sequence (puts and deletes
// over a few ids) and returns its event as the store should send it.
func write(t *testing.T, r orchestrator.Registry, i int) orchestrator.Event {
	t.Helper()
	id := fmt.Sprintf("seq-%d", i%5)
	if i%7 == 6 {
		if _, err := r.Get(context.Background(), id); err == nil {
			rev := del(t, r, id, orchestrator.IfAny)
			return orchestrator.Event{Revision: rev, Changes: []orchestrator.Change{{Kind: orchestrator.ChangeDelete, Key: id}}}
		}
	}
	reg := put(t, r, registration(id, i), orchestrator.IfAny)
	return orchestrator.Event{Revision: reg.Revision, Changes: []orchestrator.Change{{Kind: orchestrator.ChangePut, Key: id, Registration: reg}}}
}

// expectEvents reads len(want) events and checks them against want: same
// revisions, same changes, same records.
func expectEvents(t *testing.T, ch <-chan orchestrator.Event, want []orchestrator.Event, what string) {
	t.Helper()
	var got []orchestrator.Event
	for range want {
		got = append(got, next(t, ch, what))
	}
	if !sameEvents(got, want) {
		t.Fatalf("%s:\n got %q\nwant %q", what, describeAll(got), describeAll(want))
	}
}

func sameEvents(got, want []orchestrator.Event) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Resync != w.Resync || g.Revision != w.Revision || len(g.Changes) != len(w.Changes) {
			return false
		}
		for j := range g.Changes {
			gc, wc := g.Changes[j], w.Changes[j]
			if gc.Kind != wc.Kind || gc.Key != wc.Key {
				return false
			}
			switch gc.Kind {
			case orchestrator.ChangePut:
				if !sameRegistration(gc.Registration, wc.Registration) {
					return false
				}
			case orchestrator.ChangeOverridePut:
				if !sameJSON(gc.Override, wc.Override) {
					return false
				}
			}
		}
	}
	return true
}

// expectNothingMore proves no event is pending on ch: a sentinel write's
// event must come next.
func expectNothingMore(t *testing.T, r orchestrator.Registry, ch <-chan orchestrator.Event, what string) {
	t.Helper()
	s := put(t, r, registration("sentinel", 0), orchestrator.IfAny)
	ev := next(t, ch, what)
	if ev.Revision != s.Revision || len(ev.Changes) != 1 || ev.Changes[0].Key != "sentinel" {
		t.Fatalf("%s: got event %q; want the sentinel's %d put sentinel (an extra or duplicated event)", what, describe(ev), s.Revision)
	}
}

// within runs f and fails the test when it does not return in time: a
// gateway that deadlocks on its registry fails here, not at the test
// binary's timeout.
func within(t *testing.T, what string, f func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-timer.C:
		t.Fatalf("%s: did not return within %v; the gateway is deadlocked on its registry", what, wait)
	}
}
