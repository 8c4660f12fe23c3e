package orchestrator_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

// regEP returns a normalized endpoint for direct registry writes.
func regEP(name, version, url string) orchestrator.Endpoint {
	return orchestrator.Endpoint{Name: name, Version: version, URL: url}.Normalized()
}

// regRecv reads one event or fails after a deadline.
func regRecv(t *testing.T, ch <-chan orchestrator.Event) (orchestrator.Event, bool) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		return ev, ok
	case <-time.After(10 * time.Second):
		t.Fatalf("no event within 10s; want one")
		return orchestrator.Event{}, false
	}
}

// regEventually polls cond until it holds or a deadline passes.
func regEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still false after 10s; want true", what)
		}
		<-tick.C
	}
}

// regPutEvent is the event of a one-registration write at its revision.
func regPutEvent(reg orchestrator.Registration) orchestrator.Event {
	return orchestrator.Event{Revision: reg.Revision, Changes: []orchestrator.Change{{Kind: orchestrator.ChangePut, Key: reg.Endpoint.ID, Registration: reg}}}
}

func regDeleteEvent(id string, rev uint64) orchestrator.Event {
	return orchestrator.Event{Revision: rev, Changes: []orchestrator.Change{{Kind: orchestrator.ChangeDelete, Key: id}}}
}

func TestMemoryRegistryPreconditions(t *testing.T) {
	ctx := context.Background()
	r := orchestrator.NewMemoryRegistry()
	a := regEP("a", "", "http://127.0.0.1:1")
	api := func(ep orchestrator.Endpoint) orchestrator.Registration {
		return orchestrator.Registration{Endpoint: ep, Source: orchestrator.SourceAPI}
	}

	_, err := r.Put(ctx, api(a), orchestrator.IfExists)
	assert.ErrorIs(t, err, orchestrator.ErrNotFound, "IfExists put of a missing id")
	_, err = r.Put(ctx, api(a), orchestrator.IfRevision(7))
	assert.ErrorIs(t, err, orchestrator.ErrRevisionMismatch, "IfRevision put of a missing id")
	_, err = r.Get(ctx, "a")
	assert.ErrorIs(t, err, orchestrator.ErrNotFound, "Get after refused puts")

	created, err := r.Put(ctx, api(a), orchestrator.IfAbsent)
	require.NoError(t, err, "IfAbsent put of a new id")
	assert.NotZero(t, created.Revision, "created.Revision = 0; want > 0")
	assert.False(t, created.RegisteredAt.IsZero(), "created.RegisteredAt is zero; want the creation time")
	assert.Equal(t, a, created.Endpoint)
	assert.Equal(t, orchestrator.SourceAPI, created.Source)

	_, err = r.Put(ctx, api(a), orchestrator.IfAbsent)
	assert.ErrorIs(t, err, orchestrator.ErrConflict, "second IfAbsent put")
	got, err := r.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, created, got, "Get after a refused IfAbsent put; want the original")

	changed := a
	changed.URL = "http://127.0.0.1:2"
	later := created.RegisteredAt.Add(time.Hour)
	updated, err := r.Put(ctx, orchestrator.Registration{Endpoint: changed, Source: orchestrator.SourceAPI, RegisteredAt: later}, orchestrator.IfRevision(created.Revision))
	require.NoError(t, err, "put at the current revision")
	assert.Greater(t, updated.Revision, created.Revision)
	assert.True(t, updated.RegisteredAt.Equal(created.RegisteredAt), "RegisteredAt after update = %v; want the original %v", updated.RegisteredAt, created.RegisteredAt)

	// A writer still holding the first revision is refused by the store.
	_, err = r.Put(ctx, api(a), orchestrator.IfRevision(created.Revision))
	assert.ErrorIs(t, err, orchestrator.ErrRevisionMismatch, "put at a stale revision")
	_, err = r.Delete(ctx, "a", orchestrator.IfRevision(created.Revision))
	assert.ErrorIs(t, err, orchestrator.ErrRevisionMismatch, "delete at a stale revision")
	got, err = r.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, updated, got, "after refused stale writes; want the update kept")

	upserted, err := r.Put(ctx, orchestrator.Registration{Endpoint: a, Source: orchestrator.SourceConfig}, orchestrator.IfAny)
	require.NoError(t, err, "IfAny put of an existing id")
	assert.Greater(t, upserted.Revision, updated.Revision)
	assert.Equal(t, orchestrator.SourceConfig, upserted.Source)
	existing, err := r.Put(ctx, api(a), orchestrator.IfExists)
	require.NoError(t, err, "IfExists put of an existing id")

	b := regEP("b", "v1", "http://127.0.0.1:3")
	fresh, err := r.Put(ctx, api(b), orchestrator.IfAny)
	require.NoError(t, err, "IfAny put of a new id")
	assert.Greater(t, fresh.Revision, existing.Revision, "one counter for the whole registry")

	rev, err := r.Delete(ctx, "b_v1", orchestrator.IfRevision(fresh.Revision))
	require.NoError(t, err, "delete at the current revision")
	assert.Greater(t, rev, fresh.Revision)

	_, err = r.Put(ctx, orchestrator.Registration{Endpoint: orchestrator.Endpoint{Name: "noid", URL: "http://x"}}, orchestrator.IfAny)
	assert.ErrorIs(t, err, orchestrator.ErrInvalid, "put without an id")
}

func TestMemoryRegistryGetDeleteList(t *testing.T) {
	ctx := context.Background()
	r := orchestrator.NewMemoryRegistry()

	_, err := r.Get(ctx, "missing")
	assert.ErrorIs(t, err, orchestrator.ErrNotFound, "Get(missing)")
	_, err = r.Delete(ctx, "missing", orchestrator.IfAny)
	assert.ErrorIs(t, err, orchestrator.ErrNotFound, "Delete(missing)")

	snap, err := r.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, snap.Registrations, "List of an empty registry")
	assert.Zero(t, snap.Revision, "revision of an empty registry")

	var lastRev uint64
	for _, id := range []string{"charlie", "alpha", "delta", "bravo"} {
		reg, err := r.Put(ctx, orchestrator.Registration{Endpoint: regEP(id, "", "http://127.0.0.1:1")}, orchestrator.IfAbsent)
		require.NoError(t, err)
		assert.Greater(t, reg.Revision, lastRev, "Revision = %d; want > %d", reg.Revision, lastRev)
		lastRev = reg.Revision
	}
	snap, err = r.List(ctx)
	require.NoError(t, err)
	var ids []string
	for _, reg := range snap.Registrations {
		ids = append(ids, reg.Endpoint.ID)
	}
	assert.Equal(t, []string{"alpha", "bravo", "charlie", "delta"}, ids, "List ids; want sorted")
	assert.Equal(t, lastRev, snap.Revision, "List revision; want the last write's")

	delRev, err := r.Delete(ctx, "bravo", orchestrator.IfAny)
	require.NoError(t, err, "Delete(bravo)")
	assert.Greater(t, delRev, lastRev)
	_, err = r.Get(ctx, "bravo")
	assert.ErrorIs(t, err, orchestrator.ErrNotFound, "Get after Delete")
	_, err = r.Delete(ctx, "bravo", orchestrator.IfAny)
	assert.ErrorIs(t, err, orchestrator.ErrNotFound, "second Delete")

	snap, err = r.List(ctx)
	require.NoError(t, err)
	require.Len(t, snap.Registrations, 3, "List after Delete")
	assert.Equal(t, delRev, snap.Revision, "List revision after Delete")

	// The list is a copy: changing it changes nothing stored.
	snap.Registrations[0].Endpoint.URL = "http://changed"
	got, err := r.Get(ctx, "alpha")
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:1", got.Endpoint.URL, "stored URL; want it unchanged by editing List's result")

	// Recreating a deleted id gets a new, higher revision.
	reg, err := r.Put(ctx, orchestrator.Registration{Endpoint: regEP("bravo", "", "http://127.0.0.1:1")}, orchestrator.IfAbsent)
	require.NoError(t, err)
	assert.Greater(t, reg.Revision, delRev)
}

func TestMemoryRegistryWatch(t *testing.T) {
	r := orchestrator.NewMemoryRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := r.Watch(ctx, 0)
	require.NoError(t, err)
	other, err := r.Watch(ctx, 0)
	require.NoError(t, err)

	bg := context.Background()
	a, err := r.Put(bg, orchestrator.Registration{Endpoint: regEP("a", "", "http://127.0.0.1:1")}, orchestrator.IfAbsent)
	require.NoError(t, err)
	ev, ok := regRecv(t, events)
	require.True(t, ok, "events closed; want an event")
	assert.Equal(t, regPutEvent(a), ev, "event of put a: the registration, at the revision Put returned")

	b, err := r.Put(bg, orchestrator.Registration{Endpoint: regEP("b", "", "http://127.0.0.1:1")}, orchestrator.IfAbsent)
	require.NoError(t, err)
	ev, _ = regRecv(t, events)
	assert.Equal(t, regPutEvent(b), ev, "event of put b")

	delRev, err := r.Delete(bg, "a", orchestrator.IfAny)
	require.NoError(t, err)
	ev, _ = regRecv(t, events)
	assert.Equal(t, regDeleteEvent("a", delRev), ev, "event of delete a")

	// A refused write is not an event: the next event is the next change.
	_, err = r.Put(bg, orchestrator.Registration{Endpoint: regEP("b", "", "http://127.0.0.1:1")}, orchestrator.IfAbsent)
	require.Error(t, err)
	_, err = r.Delete(bg, "zzz", orchestrator.IfAny)
	require.Error(t, err)
	c, err := r.Put(bg, orchestrator.Registration{Endpoint: regEP("c", "", "http://127.0.0.1:1")}, orchestrator.IfAbsent)
	require.NoError(t, err)
	ev, _ = regRecv(t, events)
	assert.Equal(t, regPutEvent(c), ev, "event after refused writes; want put c")

	// The second watcher saw every change too, in order: nothing is
	// coalesced away.
	want := []orchestrator.Event{regPutEvent(a), regPutEvent(b), regDeleteEvent("a", delRev), regPutEvent(c)}
	for i, w := range want {
		ev, ok := regRecv(t, other)
		require.True(t, ok, "second watcher closed early")
		assert.Equal(t, w, ev, "second watcher's event %d", i)
	}

	// A watch from a past revision replays what came after it.
	replay, err := r.Watch(ctx, b.Revision)
	require.NoError(t, err)
	for i, w := range want[2:] {
		ev, _ := regRecv(t, replay)
		assert.Equal(t, w, ev, "replayed event %d after revision %d", i, b.Revision)
	}

	// Ending the context closes every channel.
	cancel()
	for _, ch := range []<-chan orchestrator.Event{events, other, replay} {
		for {
			_, ok := regRecv(t, ch)
			if !ok {
				break
			}
		}
	}

	// Writes after the watch ended do not block or panic.
	_, err = r.Put(bg, orchestrator.Registration{Endpoint: regEP("d", "", "http://127.0.0.1:1")}, orchestrator.IfAbsent)
	require.NoError(t, err, "Put after a watcher ended")

	// A watch started with an ended context closes at once.
	done, doneCancel := context.WithCancel(context.Background())
	doneCancel()
	ch, err := r.Watch(done, 0)
	require.NoError(t, err)
	_, ok = regRecv(t, ch)
	assert.False(t, ok, "watch with an ended context delivered an event; want the channel closed")
}

func TestMemoryRegistrySlowWatcherNeverBlocksWriters(t *testing.T) {
	const ids, rounds = 10, 300 // 3,000 revisions: more than the history keeps
	r := orchestrator.NewMemoryRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := r.Watch(ctx, 0)
	require.NoError(t, err)

	// Write many changes without reading a single event. If a write blocked
	// on the watcher this would never finish.
	written := make(chan uint64, 1)
	go func() {
		bg := context.Background()
		var last uint64
		for round := 0; round < rounds; round++ {
			for i := 0; i < ids; i++ {
				ep := regEP(fmt.Sprintf("ep%d", i), "", fmt.Sprintf("http://127.0.0.1:%d", 1+round))
				reg, err := r.Put(bg, orchestrator.Registration{Endpoint: ep}, orchestrator.IfAny)
				if err != nil {
					panic(err)
				}
				last = reg.Revision
			}
		}
		written <- last
	}()
	var last uint64
	select {
	case last = <-written:
	case <-time.After(30 * time.Second):
		t.Fatalf("%d writes did not finish within 30s while the watcher read nothing; want writers never blocked", ids*rounds)
	}

	// The watcher gets revisions in order, none skipped, until it falls
	// behind what the registry keeps: then one Resync, and the channel
	// closes. It never gets a wrong or partial picture silently.
	var prev uint64
	resynced := false
	for {
		ev, ok := regRecv(t, events)
		if !ok {
			break
		}
		require.False(t, resynced, "an event after Resync; want the channel closed")
		if ev.Resync {
			resynced = true
			continue
		}
		require.Equal(t, prev+1, ev.Revision, "revision after %d; want the next one, none skipped", prev)
		prev = ev.Revision
	}
	assert.True(t, resynced, "a watcher %d revisions behind got no Resync (last seen %d of %d)", last, prev, last)
}

func TestMemoryRegistryFrom(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	kept := orchestrator.Registration{Endpoint: regEP("kept", "", "http://127.0.0.1:1"), Source: orchestrator.SourceAPI, Revision: 40, RegisteredAt: at}
	bare := orchestrator.Registration{Endpoint: regEP("bare", "", "http://127.0.0.1:1"), Source: orchestrator.SourceAPI}
	var persisted []orchestrator.Snapshot
	fail := false
	r, err := orchestrator.NewMemoryRegistryFrom(orchestrator.Snapshot{Revision: 50, Registrations: []orchestrator.Registration{kept, bare}},
		func(ctx context.Context, next orchestrator.Snapshot) error {
			if fail {
				return errors.New("disk full")
			}
			persisted = append(persisted, next)
			return nil
		})
	require.NoError(t, err)

	got, err := r.Get(ctx, "kept")
	require.NoError(t, err)
	assert.Equal(t, kept, got, "a restored registration keeps its revision and time (ETags survive a restart)")
	got, err = r.Get(ctx, "bare")
	require.NoError(t, err)
	assert.Greater(t, got.Revision, uint64(50), "a restored registration without a revision gets a new one")
	snap, err := r.List(ctx)
	require.NoError(t, err)
	assert.Equal(t, got.Revision, snap.Revision)

	// History before the restore is gone: a watch from there must list.
	old, err := r.Watch(ctx, 10)
	require.NoError(t, err)
	ev, _ := regRecv(t, old)
	assert.True(t, ev.Resync, "watch after a revision older than the restore: got %+v; want Resync", ev)

	events, err := r.Watch(ctx, snap.Revision)
	require.NoError(t, err)
	// A refused persist refuses the change: not stored, no event.
	fail = true
	_, err = r.Put(ctx, orchestrator.Registration{Endpoint: regEP("new", "", "http://127.0.0.1:1")}, orchestrator.IfAbsent)
	require.ErrorContains(t, err, "disk full")
	_, err = r.Get(ctx, "new")
	assert.ErrorIs(t, err, orchestrator.ErrNotFound, "a change whose persist failed was stored")
	fail = false
	deleted, err := r.Delete(ctx, "kept", orchestrator.IfRevision(40))
	require.NoError(t, err)
	ev, _ = regRecv(t, events)
	assert.Equal(t, regDeleteEvent("kept", deleted), ev, "first event after a refused change; want the next change")
	require.Len(t, persisted, 1)
	assert.Equal(t, deleted, persisted[0].Revision, "persist sees the revision the change will have")
	assert.Len(t, persisted[0].Registrations, 1, "persist sees the content after the change")

	_, err = orchestrator.NewMemoryRegistryFrom(orchestrator.Snapshot{Registrations: []orchestrator.Registration{kept, kept}}, nil)
	assert.ErrorIs(t, err, orchestrator.ErrConflict, "a snapshot with an id twice")
}

// regFake is a hand-written Registry, as a user would back one with a
// database. It stores through a MemoryRegistry and counts the calls the
// Orchestrator makes, so tests can tell it is really used.
type regFake struct {
	mem     *orchestrator.MemoryRegistry
	lists   atomic.Int64
	watches atomic.Int64
	gets    atomic.Int64
}

func (f *regFake) List(ctx context.Context) (orchestrator.Snapshot, error) {
	f.lists.Add(1)
	return f.mem.List(ctx)
}

func (f *regFake) Get(ctx context.Context, id string) (orchestrator.Registration, error) {
	f.gets.Add(1)
	return f.mem.Get(ctx, id)
}

func (f *regFake) Put(ctx context.Context, reg orchestrator.Registration, expect orchestrator.Precondition) (orchestrator.Registration, error) {
	return f.mem.Put(ctx, reg, expect)
}

func (f *regFake) Delete(ctx context.Context, id string, expect orchestrator.Precondition) (uint64, error) {
	return f.mem.Delete(ctx, id, expect)
}

func (f *regFake) Commit(ctx context.Context, ops []orchestrator.Op) (orchestrator.Event, error) {
	return f.mem.Commit(ctx, ops)
}

func (f *regFake) Watch(ctx context.Context, after uint64) (<-chan orchestrator.Event, error) {
	f.watches.Add(1)
	return f.mem.Watch(ctx, after)
}

var _ orchestrator.Registry = (*regFake)(nil)

// regBody sends GET target through h and returns "status body".
func regBody(h http.Handler, target string) string {
	rec := rtServe(h, http.MethodGet, target, nil)
	return fmt.Sprintf("%d %s", rec.Code, rec.Body.String())
}

// regCheck sends GET target through h and checks "status body".
func regCheck(t *testing.T, h http.Handler, target, want, why string) {
	t.Helper()
	if got := regBody(h, target); got != want {
		t.Errorf("GET %s (%s): got %q; want %q", target, why, got, want)
	}
}

func TestRegister(t *testing.T) {
	ctx := context.Background()
	b := rtNewBackend(t, "b")
	o := rtNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "cfg", URL: b.URL}))

	before := time.Now()
	view, err := o.Register(ctx, orchestrator.Endpoint{Name: "users", Version: "v1", URL: b.URL + "/api", Methods: []string{"get"}})
	require.NoError(t, err, "Register = %v; want nil", err)
	// Routable the moment Register returns: no polling.
	got := regBody(o, "/orchestrator/users/v1/42")
	assert.Equal(t, "200 b GET /api/42", got, "request right after Register = %q; want 200 from the backend", got)

	assert.Equal(t, "users_v1", view.ID, "view.ID = %q; want users_v1", view.ID)
	assert.Equal(t, orchestrator.SourceAPI, view.Source, "view.Source = %q; want api", view.Source)
	assert.Equal(t, []string{"GET"}, view.Config.Methods, "view.Config.Methods = %v; want [GET] (normalized)", view.Config.Methods)
	assert.False(t, view.RegistrationTime.Before(before.Add(-time.Second)), "RegistrationTime = %v; want about now", view.RegistrationTime)
	assert.NotZero(t, view.Revision, "view.Revision = 0; want > 0")
	reg, err := o.Registry().Get(ctx, "users_v1")
	require.NoError(t, err, "the registry has no users_v1 after Register: %v", err)
	assert.Equal(t, orchestrator.SourceAPI, reg.Source, "stored Source = %q; want api", reg.Source)

	t.Run("duplicate id", func(t *testing.T) {
		_, err := o.Register(ctx, orchestrator.Endpoint{Name: "users", Version: "v1", URL: b.URL})
		assert.True(t, errors.Is(err, orchestrator.ErrConflict), "Register(duplicate id) = %v; want ErrConflict", err)
		_, err = o.Register(ctx, orchestrator.Endpoint{ID: "users_v1", Name: "elsewhere", URL: b.URL})
		assert.True(t, errors.Is(err, orchestrator.ErrConflict), "Register(explicit duplicate id) = %v; want ErrConflict", err)
		_, err = o.Register(ctx, orchestrator.Endpoint{Name: "cfg", URL: b.URL + "/other"})
		assert.True(t, errors.Is(err, orchestrator.ErrConflict), "Register(id of a config endpoint) = %v; want ErrConflict", err)
		regCheck(t, o, "/orchestrator/users/v1/1", "200 b GET /api/1", "the original endpoint changed after a refused Register")
		regCheck(t, o, "/orchestrator/cfg/x", "200 b GET /x", "the config endpoint changed after a refused Register")
	})

	t.Run("route taken by another id", func(t *testing.T) {
		_, err := o.Register(ctx, orchestrator.Endpoint{ID: "impostor", Name: "users", Version: "v1", URL: b.URL + "/evil"})
		assert.True(t, errors.Is(err, orchestrator.ErrConflict), "Register(taken route) = %v; want ErrConflict", err)
		_, err = o.Register(ctx, orchestrator.Endpoint{ID: "impostor2", Name: "cfg", URL: b.URL + "/evil"})
		assert.True(t, errors.Is(err, orchestrator.ErrConflict), "Register(route of a config endpoint) = %v; want ErrConflict", err)
		_, err = o.Registry().Get(ctx, "impostor")
		assert.True(t, errors.Is(err, orchestrator.ErrNotFound), "registry has the refused endpoint (%v); want ErrNotFound", err)
		regCheck(t, o, "/orchestrator/users/v1/1", "200 b GET /api/1", "route changed after a refused Register")
	})

	t.Run("invalid lists every problem", func(t *testing.T) {
		_, err := o.Register(ctx, orchestrator.Endpoint{
			Name: "-bad", Version: "v/1", URL: "ftp://user@host", Methods: []string{"GET", "BAD METHOD"},
			AuthType: "magic", HealthCheckPath: "nope",
		})
		require.Error(t, err, "Register(invalid) = nil; want an error")
		assert.True(t, errors.Is(err, orchestrator.ErrInvalid), "errors.Is(err, ErrInvalid) = false for %v; want true", err)
		var ve *orchestrator.ValidationError
		require.True(t, errors.As(err, &ve), "error %T is not a *ValidationError", err)
		var fields []string
		for _, fe := range ve.Errors {
			fields = append(fields, fe.Field)
		}
		// The id defaults to name_version, so it is invalid too.
		assert.ElementsMatch(t, []string{"name", "version", "id", "url", "methods[1]", "auth_type", "health_check_path"}, fields,
			"fields = %v; want name, version, id, url, methods[1], auth_type, health_check_path", fields)
		list, err := o.Registry().List(ctx)
		require.NoError(t, err)
		assert.Len(t, list.Registrations, 2, "registry holds %d endpoints after a refused Register; want 2", len(list.Registrations))
	})
}

func TestUpdate(t *testing.T) {
	ctx := context.Background()
	a := rtNewBackend(t, "a")
	b := rtNewBackend(t, "b")
	o := rtNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "cfg", URL: a.URL}))
	first, err := o.Register(ctx, orchestrator.Endpoint{Name: "svc", Version: "v1", URL: a.URL + "/one"})
	require.NoError(t, err)
	_, err = o.Register(ctx, orchestrator.Endpoint{Name: "other", URL: a.URL})
	require.NoError(t, err)
	regCheck(t, o, "/orchestrator/svc/v1/x", "200 a GET /one/x", "after Register")

	// Reroute to another backend: the next request goes there.
	view, err := o.Update(ctx, orchestrator.Endpoint{Name: "svc", Version: "v1", URL: b.URL + "/two"})
	require.NoError(t, err, "Update = %v; want nil", err)
	got := regBody(o, "/orchestrator/svc/v1/x")
	assert.Equal(t, "200 b GET /two/x", got, "request after Update = %q; want the new backend", got)
	assert.Greater(t, view.Revision, first.Revision, "Revision after Update = %d; want > %d", view.Revision, first.Revision)
	assert.True(t, view.RegistrationTime.Equal(first.RegistrationTime), "RegistrationTime after Update = %v; want the original %v", view.RegistrationTime, first.RegistrationTime)
	assert.Equal(t, orchestrator.SourceAPI, view.Source, "Source after Update = %q; want api", view.Source)

	// Change methods: GET is refused now, POST served.
	_, err = o.Update(ctx, orchestrator.Endpoint{Name: "svc", Version: "v1", URL: b.URL + "/two", Methods: []string{"post"}})
	require.NoError(t, err)
	rec := rtServe(o, http.MethodGet, "/orchestrator/svc/v1/x", nil)
	rtCheckProblem(t, rec, http.StatusMethodNotAllowed, "svc_v1")
	assert.Equal(t, "POST", rec.Header().Get("Allow"), "Allow = %q; want POST", rec.Header().Get("Allow"))
	rec = rtServe(o, http.MethodPost, "/orchestrator/svc/v1/x", nil)
	assert.Equal(t, "b POST /two/x", rec.Body.String(), "POST after Update = %q; want the backend", rec.Body.String())

	// Disable it in place.
	_, err = o.Update(ctx, orchestrator.Endpoint{Name: "svc", Version: "v1", URL: b.URL, Disabled: true})
	require.NoError(t, err)
	rtCheckProblem(t, rtServe(o, http.MethodGet, "/orchestrator/svc/v1/x", nil), http.StatusServiceUnavailable, "svc_v1")

	// Move it to another route, keeping the id.
	_, err = o.Update(ctx, orchestrator.Endpoint{ID: "svc_v1", Name: "moved", URL: b.URL})
	require.NoError(t, err, "Update(new route) = %v; want nil", err)
	regCheck(t, o, "/orchestrator/moved/y", "200 b GET /y", "the new route does not serve")
	rtCheckProblem(t, rtServe(o, http.MethodGet, "/orchestrator/svc/v1/x", nil), http.StatusNotFound, "")

	_, err = o.Update(ctx, orchestrator.Endpoint{ID: "svc_v1", Name: "other", URL: b.URL})
	assert.True(t, errors.Is(err, orchestrator.ErrConflict), "Update(route of another id) = %v; want ErrConflict", err)
	regCheck(t, o, "/orchestrator/other/z", "200 a GET /z", "the other endpoint changed after a refused Update")

	_, err = o.Update(ctx, orchestrator.Endpoint{Name: "ghost", URL: b.URL})
	assert.True(t, errors.Is(err, orchestrator.ErrNotFound), "Update(unknown) = %v; want ErrNotFound", err)

	_, err = o.Update(ctx, orchestrator.Endpoint{Name: "cfg", URL: b.URL})
	assert.True(t, errors.Is(err, orchestrator.ErrConflict), "Update(config endpoint) = %v; want ErrConflict", err)
	assert.Contains(t, fmt.Sprint(err), "config", "error = %v; want it to say the config file owns it", err)
	regCheck(t, o, "/orchestrator/cfg/q", "200 a GET /q", "the config endpoint changed after a refused Update")

	_, err = o.Update(ctx, orchestrator.Endpoint{ID: "svc_v1", Name: "moved", URL: "nope"})
	assert.True(t, errors.Is(err, orchestrator.ErrInvalid), "Update(invalid) = %v; want ErrInvalid", err)
	regCheck(t, o, "/orchestrator/moved/y", "200 b GET /y", "endpoint changed after a refused Update")
}

func TestDeregister(t *testing.T) {
	ctx := context.Background()
	b := rtNewBackend(t, "b")
	o := rtNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "cfg", URL: b.URL}))
	_, err := o.Register(ctx, orchestrator.Endpoint{Name: "tmp", Version: "v1", URL: b.URL})
	require.NoError(t, err)
	regCheck(t, o, "/orchestrator/tmp/v1/x", "200 b GET /x", "after Register")

	require.NoError(t, o.Deregister(ctx, "tmp_v1"), "Deregister = error; want nil")
	rtCheckProblem(t, rtServe(o, http.MethodGet, "/orchestrator/tmp/v1/x", nil), http.StatusNotFound, "")
	_, err = o.Registry().Get(ctx, "tmp_v1")
	assert.True(t, errors.Is(err, orchestrator.ErrNotFound), "registry Get after Deregister = %v; want ErrNotFound", err)
	_, err = o.Endpoint("tmp_v1")
	assert.True(t, errors.Is(err, orchestrator.ErrNotFound), "Endpoint after Deregister = %v; want ErrNotFound", err)

	err = o.Deregister(ctx, "tmp_v1")
	assert.True(t, errors.Is(err, orchestrator.ErrNotFound), "second Deregister = %v; want ErrNotFound", err)

	err = o.Deregister(ctx, "cfg")
	assert.True(t, errors.Is(err, orchestrator.ErrConflict), "Deregister(config endpoint) = %v; want ErrConflict", err)
	regCheck(t, o, "/orchestrator/cfg/x", "200 b GET /x", "config endpoint gone after a refused Deregister")

	// The id and route are free again.
	_, err = o.Register(ctx, orchestrator.Endpoint{Name: "tmp", Version: "v1", URL: b.URL + "/again"})
	require.NoError(t, err, "Register after Deregister = %v; want nil", err)
	regCheck(t, o, "/orchestrator/tmp/v1/x", "200 b GET /again/x", "re-registered after Deregister")
}

func regIDs(o *orchestrator.Orchestrator) []string {
	var ids []string
	for _, r := range o.Routes() {
		ids = append(ids, r.EndpointID)
	}
	sort.Strings(ids)
	return ids
}

func TestSyncConfigSource(t *testing.T) {
	ctx := context.Background()
	a := rtNewBackend(t, "a")
	b := rtNewBackend(t, "b")
	o := rtNew(t, orchestrator.WithEndpoints(
		orchestrator.Endpoint{Name: "keep", URL: a.URL},
		orchestrator.Endpoint{Name: "change", URL: a.URL},
		orchestrator.Endpoint{Name: "drop", URL: a.URL},
	))
	_, err := o.Register(ctx, orchestrator.Endpoint{Name: "api", URL: a.URL})
	require.NoError(t, err)
	keepBefore, err := o.Endpoint("keep")
	require.NoError(t, err)

	err = o.Sync(ctx, orchestrator.SourceConfig, []orchestrator.Endpoint{
		{Name: "keep", URL: a.URL},
		{Name: "change", URL: b.URL + "/new"},
		{Name: "add", Version: "v1", URL: b.URL},
	})
	require.NoError(t, err, "Sync = %v; want nil", err)
	assert.Equal(t, []string{"add_v1", "api", "change", "keep"}, regIDs(o), "routes after Sync = %v; want add_v1 api change keep", regIDs(o))
	regCheck(t, o, "/orchestrator/keep/x", "200 a GET /x", "unchanged endpoint after Sync")
	regCheck(t, o, "/orchestrator/change/x", "200 b GET /new/x", "changed endpoint not rerouted")
	regCheck(t, o, "/orchestrator/add/v1/x", "200 b GET /x", "added endpoint not routable")
	regCheck(t, o, "/orchestrator/api/x", "200 a GET /x", "API endpoint touched by a config Sync")
	rtCheckProblem(t, rtServe(o, http.MethodGet, "/orchestrator/drop/x", nil), http.StatusNotFound, "")
	keepAfter, err := o.Endpoint("keep")
	require.NoError(t, err)
	assert.Equal(t, keepBefore.Revision, keepAfter.Revision, "unchanged endpoint revision %d -> %d; want it left alone", keepBefore.Revision, keepAfter.Revision)
	reg, err := o.Registry().Get(ctx, "add_v1")
	require.NoError(t, err)
	assert.Equal(t, orchestrator.SourceConfig, reg.Source, "Sync'd endpoint source = %q; want config", reg.Source)

	refused := []struct {
		name string
		eps  []orchestrator.Endpoint
	}{
		{"id owned by the API", []orchestrator.Endpoint{{Name: "keep", URL: a.URL}, {Name: "api", URL: b.URL}}},
		{"route owned by the API", []orchestrator.Endpoint{{Name: "keep", URL: a.URL}, {ID: "mine", Name: "api", URL: b.URL}}},
		{"invalid", []orchestrator.Endpoint{{Name: "keep", URL: a.URL}, {Name: "bad", URL: "ftp://x"}}},
		{"duplicate ids", []orchestrator.Endpoint{{Name: "keep", URL: a.URL}, {ID: "keep", Name: "k2", URL: a.URL}}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			err := o.Sync(ctx, orchestrator.SourceConfig, tt.eps)
			require.Error(t, err, "Sync(%s) = nil; want an error", tt.name)
			// Nothing changed: not even the parts that were fine.
			assert.Equal(t, []string{"add_v1", "api", "change", "keep"}, regIDs(o), "routes after a refused Sync = %v; want unchanged", regIDs(o))
			regCheck(t, o, "/orchestrator/api/x", "200 a GET /x", "API endpoint changed by a refused Sync")
			regCheck(t, o, "/orchestrator/change/x", "200 b GET /new/x", "config endpoint changed by a refused Sync")
		})
	}
	err = o.Sync(ctx, orchestrator.SourceConfig, []orchestrator.Endpoint{{Name: "keep", URL: a.URL}, {Name: "api", URL: b.URL}})
	var ve *orchestrator.ValidationError
	require.True(t, errors.As(err, &ve), "Sync(API id) error %T; want *ValidationError", err)
	assert.Equal(t, "endpoints[1].id", ve.Errors[0].Field, "field = %q; want endpoints[1].id", ve.Errors[0].Field)

	// An empty config removes every config endpoint and nothing else.
	require.NoError(t, o.Sync(ctx, orchestrator.SourceConfig, nil))
	assert.Equal(t, []string{"api"}, regIDs(o), "routes after an empty Sync = %v; want only the API endpoint", regIDs(o))
}

// Sync publishes its whole change at once: a concurrent reader sees the old
// set or the new set, never a mix.
func TestSyncIsOneChange(t *testing.T) {
	ctx := context.Background()
	a := rtNewBackend(t, "a")
	setA := []orchestrator.Endpoint{{Name: "x1", URL: a.URL}, {Name: "x2", URL: a.URL}, {Name: "x3", Version: "v1", URL: a.URL}}
	setB := []orchestrator.Endpoint{{Name: "y1", URL: a.URL}, {Name: "y2", URL: a.URL}, {Name: "x3", Version: "v1", URL: a.URL + "/b"}}
	o := rtNew(t, orchestrator.WithEndpoints(setA...))
	wantA := strings.Join([]string{"x1", "x2", "x3_v1"}, ",")
	wantB := strings.Join([]string{"x3_v1", "y1", "y2"}, ",")

	stop := make(chan struct{})
	bad := make(chan string, 1)
	// The reader offers a tick per snapshot and each Sync waits for one, so
	// snapshots are taken all through the Syncs.
	ticks := make(chan struct{}, 1)
	var snapshots atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			ids := strings.Join(regIDs(o), ",")
			snapshots.Add(1)
			if ids != wantA && ids != wantB {
				select {
				case bad <- ids:
				default:
				}
				close(ticks) // release the writer
				return
			}
			select {
			case ticks <- struct{}{}:
			default:
			}
		}
	}()
	for i := 0; i < 100; i++ {
		set := setB
		if i%2 == 1 {
			set = setA
		}
		<-ticks
		require.NoError(t, o.Sync(ctx, orchestrator.SourceConfig, set))
	}
	close(stop)
	wg.Wait()
	select {
	case ids := <-bad:
		t.Fatalf("a reader saw routes %q during Sync; want %q or %q", ids, wantA, wantB)
	default:
	}
	assert.GreaterOrEqual(t, snapshots.Load(), int64(100), "reader took %d snapshots; want at least one per Sync", snapshots.Load())
	assert.Equal(t, wantA, strings.Join(regIDs(o), ","), "final routes; want set A")
}

func TestCustomRegistry(t *testing.T) {
	ctx := context.Background()
	a := rtNewBackend(t, "a")
	b := rtNewBackend(t, "b")
	fake := &regFake{mem: orchestrator.NewMemoryRegistry()}
	_, err := fake.Put(ctx, orchestrator.Registration{Endpoint: regEP("pre", "v1", a.URL), Source: orchestrator.SourceAPI}, orchestrator.IfAbsent)
	require.NoError(t, err)

	o := rtNew(t, orchestrator.WithRegistry(fake), orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "cfg", URL: a.URL}))
	assert.Same(t, orchestrator.Registry(fake), o.Registry(), "Registry() is not the plugged-in registry")
	assert.Equal(t, int64(1), fake.watches.Load(), "Watch called %d times; want 1", fake.watches.Load())
	assert.Positive(t, fake.lists.Load(), "List never called; want the registry loaded at New")

	// What the registry held before New is routable at once.
	regCheck(t, o, "/orchestrator/pre/v1/x", "200 a GET /x", "pre-existing endpoint not loaded by New")
	// WithEndpoints wrote through to the plugged-in registry.
	reg, err := fake.mem.Get(ctx, "cfg")
	require.NoError(t, err, "WithEndpoints endpoint not in the custom registry: %v", err)
	assert.Equal(t, orchestrator.SourceConfig, reg.Source)

	// Out-of-band writes (another gateway, a database edit) are followed.
	_, err = fake.Put(ctx, orchestrator.Registration{Endpoint: regEP("oob", "", b.URL+"/o"), Source: orchestrator.SourceAPI}, orchestrator.IfAbsent)
	require.NoError(t, err)
	regEventually(t, "out-of-band Put routable", func() bool { return regBody(o, "/orchestrator/oob/x") == "200 b GET /o/x" })

	_, err = fake.Put(ctx, orchestrator.Registration{Endpoint: regEP("pre", "v1", b.URL+"/moved"), Source: orchestrator.SourceAPI}, orchestrator.IfExists)
	require.NoError(t, err)
	regEventually(t, "out-of-band update rerouted", func() bool { return regBody(o, "/orchestrator/pre/v1/x") == "200 b GET /moved/x" })

	// Methods written without normalization (a hand-edited database row).
	lower := regEP("lower", "", b.URL)
	lower.Methods = []string{"get", "post"}
	_, err = fake.Put(ctx, orchestrator.Registration{Endpoint: lower, Source: orchestrator.SourceAPI}, orchestrator.IfAbsent)
	require.NoError(t, err)
	regEventually(t, "out-of-band endpoint with lower-case methods serves GET", func() bool { return regBody(o, "/orchestrator/lower/x") == "200 b GET /x" })

	// An invalid registration from outside is left out and breaks nothing.
	_, err = fake.Put(ctx, orchestrator.Registration{Endpoint: regEP("broken", "", "ftp://nope"), Source: orchestrator.SourceAPI}, orchestrator.IfAbsent)
	require.NoError(t, err)
	_, err = fake.Delete(ctx, "oob", orchestrator.IfAny)
	require.NoError(t, err)
	regEventually(t, "out-of-band Delete unroutable", func() bool { return rtServe(o, http.MethodGet, "/orchestrator/oob/x", nil).Code == http.StatusNotFound })
	rtCheckProblem(t, rtServe(o, http.MethodGet, "/orchestrator/broken/x", nil), http.StatusNotFound, "")
	regCheck(t, o, "/orchestrator/pre/v1/x", "200 b GET /moved/x", "after an invalid out-of-band write")
	regCheck(t, o, "/orchestrator/cfg/x", "200 a GET /x", "after an invalid out-of-band write")

	// Endpoints registered out of band can be managed through the API.
	require.NoError(t, o.Deregister(ctx, "pre_v1"), "Deregister of an out-of-band API endpoint = error; want nil")
	rtCheckProblem(t, rtServe(o, http.MethodGet, "/orchestrator/pre/v1/x", nil), http.StatusNotFound, "")
	_, err = fake.mem.Get(ctx, "pre_v1")
	assert.True(t, errors.Is(err, orchestrator.ErrNotFound), "custom registry still has pre_v1 (%v); want ErrNotFound", err)

	// Close stops the watch: the registry's watcher goes away and later
	// writes are not applied.
	require.NoError(t, o.Close())
	_, err = fake.Put(ctx, orchestrator.Registration{Endpoint: regEP("late", "", b.URL), Source: orchestrator.SourceAPI}, orchestrator.IfAbsent)
	require.NoError(t, err)
	_, err = o.Endpoint("late")
	assert.ErrorIs(t, err, orchestrator.ErrNotFound, "write after Close was applied; want it ignored")
	assert.Equal(t, http.StatusServiceUnavailable, rtServe(o, http.MethodGet, "/orchestrator/late/x", nil).Code, "a closed gateway answers 503")
}

// TestConcurrentRegistrationUnderLoad is the acceptance test of the hot
// path: requests to endpoints that stay registered never fail while other
// endpoints are added, changed and removed hundreds of times and while a
// stable endpoint's own config is updated in place.
func TestConcurrentRegistrationUnderLoad(t *testing.T) {
	const (
		readers    = 4
		iterations = 150
	)
	ctx := context.Background()
	stableA := rtNewBackend(t, "stableA")
	stableB := rtNewBackend(t, "stableB")
	churnX := rtNewBackend(t, "churnX")
	churnY := rtNewBackend(t, "churnY")

	cfgEndpoints := []orchestrator.Endpoint{
		{Name: "cfg1", URL: stableA.URL + "/c1"},
		{Name: "cfg2", Version: "v1", URL: stableB.URL + "/c2", Methods: []string{"GET", "POST"}},
	}
	o := rtNew(t, orchestrator.WithEndpoints(cfgEndpoints...))
	_, err := o.Register(ctx, orchestrator.Endpoint{Name: "api1", Version: "v1", URL: stableA.URL + "/a1"})
	require.NoError(t, err)
	api2 := orchestrator.Endpoint{Name: "api2", URL: stableB.URL + "/a2", Methods: []string{"GET"}}
	_, err = o.Register(ctx, api2)
	require.NoError(t, err)

	gw := httptest.NewServer(o)
	t.Cleanup(gw.Close)
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: readers + 2, DisableCompression: true},
		Timeout:   30 * time.Second,
	}
	t.Cleanup(client.CloseIdleConnections)

	type target struct {
		path string // after the prefix, without the query
		want string // body prefix: "<backend> GET <upstream path>"
	}
	stable := []target{
		{"/cfg1/data", "stableA GET /c1/data"},
		{"/cfg2/v1/items/7/", "stableB GET /c2/items/7/"},
		{"/api1/v1", "stableA GET /a1"},
		{"/api2/deep/a%2Fb", "stableB GET /a2/deep/a%2Fb"},
	}

	var (
		failMu   sync.Mutex
		failures []string
		total    atomic.Int64
	)
	fail := func(format string, args ...any) {
		failMu.Lock()
		defer failMu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	get := func(path string) (int, string, error) {
		resp, err := client.Get(gw.URL + "/orchestrator" + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}

	stop := make(chan struct{})
	// Every finished request offers a tick; every churn step takes one, so
	// the churn is spread over the load instead of racing ahead of it.
	ticks := make(chan struct{}, 1)
	tick := func() {
		select {
		case ticks <- struct{}{}:
		default:
		}
	}
	pace := func() { <-ticks }
	var started sync.WaitGroup
	var readersDone sync.WaitGroup
	started.Add(readers)
	for r := 0; r < readers; r++ {
		readersDone.Add(1)
		go func(r int) {
			defer readersDone.Done()
			first := true
			for i := 0; ; i++ {
				if !first {
					select {
					case <-stop:
						return
					default:
					}
				}
				tg := stable[(i+r)%len(stable)]
				q := fmt.Sprintf("?r=%d&i=%d", r, i)
				code, body, err := get(tg.path + q)
				total.Add(1)
				tick()
				if want := tg.want + q; err != nil || code != http.StatusOK || body != want {
					fail("GET %s%s: got %d %q (err %v); want 200 %q", tg.path, q, code, body, err, want)
				}
				if first {
					first = false
					started.Done()
				}
			}
		}(r)
	}
	// One more reader hits the churning endpoints: they may be absent (404)
	// or refuse GET (405), but must never fail otherwise.
	var churnSeen atomic.Int64
	readersDone.Add(1)
	go func() {
		defer readersDone.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			path := fmt.Sprintf("/dyn%d/x", i%4)
			if i%2 == 1 {
				path = fmt.Sprintf("/api1/v%d/x", 2+i%3)
			}
			code, body, err := get(path)
			tick()
			switch {
			case err != nil:
				fail("GET %s (churning): %v", path, err)
			case code == http.StatusOK:
				churnSeen.Add(1)
				if !strings.HasPrefix(body, "churnX GET ") && !strings.HasPrefix(body, "churnY GET ") {
					fail("GET %s (churning): got body %q; want one of the churn backends", path, body)
				}
			case code == http.StatusNotFound || code == http.StatusMethodNotAllowed:
			default:
				fail("GET %s (churning): got %d %q; want 200, 404 or 405", path, code, body)
			}
		}
	}()
	started.Wait()

	var churn sync.WaitGroup
	churnErr := make(chan error, 8)
	report := func(err error) {
		select {
		case churnErr <- err:
		default:
		}
	}
	// Add, update (URL between two backends, methods) and remove API endpoints.
	churn.Add(1)
	go func() {
		defer churn.Done()
		for i := 0; i < iterations; i++ {
			name := fmt.Sprintf("dyn%d", i%4)
			ep := orchestrator.Endpoint{Name: name, URL: churnX.URL + "/x"}
			if i%3 == 0 {
				ep.HealthCheckPath = "/health"
			}
			pace()
			if _, err := o.Register(ctx, ep); err != nil {
				report(fmt.Errorf("Register(%s) #%d: %w", name, i, err))
				return
			}
			pace()
			ep.URL, ep.Methods = churnY.URL+"/y", []string{"POST"}
			if _, err := o.Update(ctx, ep); err != nil {
				report(fmt.Errorf("Update(%s) #%d: %w", name, i, err))
				return
			}
			pace()
			ep.URL, ep.Methods = churnX.URL, []string{"GET", "POST"}
			if _, err := o.Update(ctx, ep); err != nil {
				report(fmt.Errorf("Update(%s) #%d: %w", name, i, err))
				return
			}
			pace()
			if err := o.Deregister(ctx, name); err != nil {
				report(fmt.Errorf("Deregister(%s) #%d: %w", name, i, err))
				return
			}
		}
	}()
	// Versions of a stable endpoint's name come and go: the stable version
	// shares its name's entry in the route table with them.
	churn.Add(1)
	go func() {
		defer churn.Done()
		for i := 0; i < iterations; i++ {
			ep := orchestrator.Endpoint{Name: "api1", Version: fmt.Sprintf("v%d", 2+i%3), URL: churnY.URL}
			pace()
			if _, err := o.Register(ctx, ep); err != nil {
				report(fmt.Errorf("Register(%s) #%d: %w", ep.EndpointID(), i, err))
				return
			}
			pace()
			if err := o.Deregister(ctx, ep.EndpointID()); err != nil {
				report(fmt.Errorf("Deregister(%s) #%d: %w", ep.EndpointID(), i, err))
				return
			}
		}
	}()
	// Config reloads that keep the stable config endpoints and swap others.
	churn.Add(1)
	go func() {
		defer churn.Done()
		for i := 0; i < iterations; i++ {
			eps := slices.Clone(cfgEndpoints)
			eps = append(eps, orchestrator.Endpoint{Name: "cfg1", Version: fmt.Sprintf("c%d", i%5), URL: churnX.URL})
			if i%2 == 0 {
				eps = append(eps, orchestrator.Endpoint{Name: fmt.Sprintf("reload%d", i%3), URL: churnY.URL})
			}
			pace()
			if err := o.Sync(ctx, orchestrator.SourceConfig, eps); err != nil {
				report(fmt.Errorf("Sync #%d: %w", i, err))
				return
			}
		}
	}()
	// The stable api2 endpoint's own config changes in place under load.
	churn.Add(1)
	go func() {
		defer churn.Done()
		for i := 0; i < iterations; i++ {
			ep := api2
			ep.Timeout = orchestrator.Duration(time.Duration(10+i%2*10) * time.Second)
			if i%2 == 1 {
				ep.Methods = []string{"GET", "PUT"}
				ep.AuthType = orchestrator.AuthBearer
			}
			pace()
			if _, err := o.Update(ctx, ep); err != nil {
				report(fmt.Errorf("Update(api2) #%d: %w", i, err))
				return
			}
		}
	}()
	churn.Wait()
	close(stop)
	readersDone.Wait()
	close(churnErr)
	for err := range churnErr {
		t.Errorf("churn: %v; want no error", err)
	}

	failMu.Lock()
	defer failMu.Unlock()
	if len(failures) > 0 {
		t.Errorf("requests to stable endpoints failed during churn (first %d shown); want none:\n%s", len(failures), strings.Join(failures, "\n"))
	}
	t.Logf("%d requests to stable endpoints, %d churn requests served", total.Load(), churnSeen.Load())
	// Pacing makes the load cover the churn: far more requests than steps.
	assert.GreaterOrEqual(t, total.Load(), int64(iterations), "requests sent = %d; want at least %d", total.Load(), iterations)

	// Desired state and routing agree afterwards.
	regs, err := o.Registry().List(ctx)
	require.NoError(t, err)
	var want []string
	for _, r := range regs.Registrations {
		want = append(want, r.Endpoint.ID)
	}
	assert.Equal(t, want, regIDs(o), "routes %v differ from the registry %v; want the same ids", regIDs(o), want)
	assert.ElementsMatch(t, []string{"api1_v1", "api2", "cfg1", "cfg1_c4", "cfg2_v1"}, regIDs(o), "routes after churn = %v; want api1_v1 api2 cfg1 cfg1_c4 cfg2_v1", regIDs(o))
	view, err := o.Endpoint("api2")
	require.NoError(t, err)
	assert.Equal(t, 20*time.Second, view.Config.Timeout.Std(), "api2 timeout = %v; want the last update's 20s", view.Config.Timeout.Std())
}

func TestConditionalUpdateAndDeregister(t *testing.T) {
	o, err := orchestrator.New()
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })
	ctx := context.Background()
	v1, err := o.Register(ctx, orchestrator.Endpoint{Name: "svc", URL: "http://127.0.0.1:9001"})
	require.NoError(t, err)

	// A writer holding revision v1 wins once...
	v2, err := o.UpdateIf(ctx, orchestrator.Endpoint{Name: "svc", URL: "http://127.0.0.1:9002"}, v1.Revision)
	require.NoError(t, err)
	require.Greater(t, v2.Revision, v1.Revision)

	// ...and a second writer still holding v1 is refused, changing nothing.
	_, err = o.UpdateIf(ctx, orchestrator.Endpoint{Name: "svc", URL: "http://127.0.0.1:9003"}, v1.Revision)
	require.ErrorIs(t, err, orchestrator.ErrRevisionMismatch)
	err = o.DeregisterIf(ctx, "svc", v1.Revision)
	require.ErrorIs(t, err, orchestrator.ErrRevisionMismatch)
	cur, err := o.Endpoint("svc")
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:9002", cur.Config.URL, "URL after refused writes: got %q", cur.Config.URL)

	// The current revision, or 0, goes through.
	require.NoError(t, o.DeregisterIf(ctx, "svc", v2.Revision))
	_, err = o.Endpoint("svc")
	require.ErrorIs(t, err, orchestrator.ErrNotFound)
}
