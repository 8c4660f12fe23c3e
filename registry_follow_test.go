package orchestrator_test

// Tests of how the gateway uses its registry: one per finding of the
// registry review (deadlock on synchronous delivery, a closed watch, a
// failed read while following, Sync's atomicity, compare-and-swap between
// gateways, events without records, probes stalled by writers).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/registrytest"
)

// fwLog records the messages the gateway logs.
type fwLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *fwLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *fwLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.msgs = append(l.msgs, r.Message)
	l.mu.Unlock()
	return nil
}
func (l *fwLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *fwLog) WithGroup(string) slog.Handler      { return l }

func (l *fwLog) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// fwWithin fails the test when f does not return in time (a deadlock).
func fwWithin(t *testing.T, what string, f func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		require.NoError(t, err, what)
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: did not return within 20s; want no deadlock", what)
	}
}

// fwRoutable waits until the gateway serves id at revision rev.
func fwRoutable(t *testing.T, o *orchestrator.Orchestrator, id string, rev uint64) {
	t.Helper()
	regEventually(t, fmt.Sprintf("%s routable at revision %d", id, rev), func() bool {
		got, err := o.Endpoint(id)
		return err == nil && got.Revision == rev
	})
}

func fwOOB(t *testing.T, r orchestrator.Registry, name, url string) orchestrator.Registration {
	t.Helper()
	reg, err := r.Put(context.Background(), orchestrator.Registration{Endpoint: regEP(name, "", url), Source: orchestrator.SourceAPI}, orchestrator.IfAny)
	require.NoError(t, err)
	return reg
}

// Finding 1: a registry that hands over an event before the write returns
// (here: every write waits until the gateway's watch has received its
// event) used to deadlock the gateway, which held its lock while calling
// the registry. New with WithEndpoints deadlocked every time: the first
// write waited for a follower not yet started.
func TestSynchronousRegistryDoesNotDeadlockTheGateway(t *testing.T) {
	ctx := context.Background()
	b := rtNewBackend(t, "b")
	reg := registrytest.Synchronous(orchestrator.NewMemoryRegistry())
	var o *orchestrator.Orchestrator
	fwWithin(t, "New with WithEndpoints", func() (err error) {
		o, err = orchestrator.New(orchestrator.WithLogger(rtQuietLogger()), orchestrator.WithRegistry(reg),
			orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "cfg", URL: b.URL}))
		return err
	})
	t.Cleanup(func() {
		// A deadlocked gateway cannot close either: fail, do not hang.
		closed := make(chan struct{})
		go func() { o.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(20 * time.Second):
			t.Errorf("Close did not return within 20s; want no deadlock")
		}
	})

	// Writes of the gateway and writes straight to the store, at once: each
	// waits for the follower, which must never wait for a writer.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 50 {
			fwOOB(t, reg, fmt.Sprintf("oob%d", i%5), b.URL)
		}
	}()
	fwWithin(t, "Register, Update and Deregister beside writes straight to the store", func() error {
		for i := range 50 {
			ep := orchestrator.Endpoint{Name: fmt.Sprintf("api%d", i%5), URL: b.URL}
			if _, err := o.Register(ctx, ep); err != nil {
				return err
			}
			ep.URL += "/v2"
			if _, err := o.Update(ctx, ep); err != nil {
				return err
			}
			if err := o.Deregister(ctx, ep.EndpointID()); err != nil {
				return err
			}
		}
		return o.Sync(ctx, orchestrator.SourceConfig, []orchestrator.Endpoint{{Name: "cfg2", URL: b.URL}})
	})
	fwWithin(t, "the writes straight to the store", func() error { wg.Wait(); return nil })
	regCheck(t, o, "/orchestrator/cfg2/x", "200 b GET /x", "after the writes")
}

// fwClosingRegistry closes the first watch after it has forwarded one
// event, as a registry whose connection drops would, and records the
// revision every watch starts after.
type fwClosingRegistry struct {
	*orchestrator.MemoryRegistry
	watches atomic.Int64
	afters  chan uint64
}

func (r *fwClosingRegistry) Watch(ctx context.Context, after uint64) (<-chan orchestrator.Event, error) {
	r.afters <- after
	in, err := r.MemoryRegistry.Watch(ctx, after)
	if err != nil || r.watches.Add(1) > 1 {
		return in, err
	}
	out := make(chan orchestrator.Event)
	go func() {
		defer close(out)
		select {
		case ev := <-in:
			select {
			case out <- ev:
			case <-ctx.Done():
			}
		case <-ctx.Done():
		}
	}()
	return out, nil
}

// Finding 2: a watch channel that closed was dropped silently, and the
// gateway stopped following. It is re-opened (logged, with back-off) after
// the last revision applied, so that nothing is missed and nothing needs
// listing again.
func TestClosedWatchIsReopenedFromTheLastRevision(t *testing.T) {
	b := rtNewBackend(t, "b")
	reg := &fwClosingRegistry{MemoryRegistry: orchestrator.NewMemoryRegistry(), afters: make(chan uint64, 16)}
	log := &fwLog{}
	o, err := orchestrator.New(orchestrator.WithLogger(slog.New(log)), orchestrator.WithRegistry(reg))
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })
	assert.Equal(t, uint64(0), <-reg.afters, "the first watch starts after the first list's revision")

	first := fwOOB(t, reg, "first", b.URL)
	fwRoutable(t, o, "first", first.Revision)
	select {
	case after := <-reg.afters:
		assert.Equal(t, first.Revision, after, "the watch is re-opened after the last revision applied")
	case <-time.After(20 * time.Second):
		t.Fatal("the closed watch was not re-opened within 20s")
	}
	second := fwOOB(t, reg, "second", b.URL)
	fwRoutable(t, o, "second", second.Revision)
	assert.Equal(t, 1, log.count("registry watch closed; re-opening it"), "log lines saying the watch closed")
}

// fwResyncRegistry answers the first watch with Resync, fails the Lists
// after the first until listFailures is spent, and fails every Get.
type fwResyncRegistry struct {
	*orchestrator.MemoryRegistry
	lists        atomic.Int64
	listFailures atomic.Int64
	gets         atomic.Int64
	watches      atomic.Int64
}

func (r *fwResyncRegistry) List(ctx context.Context) (orchestrator.Snapshot, error) {
	if r.lists.Add(1) > 1 && r.listFailures.Add(-1) >= 0 {
		return orchestrator.Snapshot{}, errors.New("registry unreachable")
	}
	return r.MemoryRegistry.List(ctx)
}

func (r *fwResyncRegistry) Get(ctx context.Context, id string) (orchestrator.Registration, error) {
	r.gets.Add(1)
	return orchestrator.Registration{}, errors.New("registry unreachable")
}

func (r *fwResyncRegistry) Watch(ctx context.Context, after uint64) (<-chan orchestrator.Event, error) {
	if r.watches.Add(1) > 1 {
		return r.MemoryRegistry.Watch(ctx, after)
	}
	out := make(chan orchestrator.Event, 1)
	out <- orchestrator.Event{Resync: true}
	close(out)
	return out, nil
}

// Finding 3: a failed read while handling an event lost the change for
// good. Following now reads nothing (events carry their records), and the
// one read it still makes, the List after a Resync, is retried until it
// answers; the change made meanwhile is caught up.
func TestFailedReadsWhileFollowingLoseNothing(t *testing.T) {
	b := rtNewBackend(t, "b")
	reg := &fwResyncRegistry{MemoryRegistry: orchestrator.NewMemoryRegistry()}
	reg.listFailures.Store(2)
	// Written before New, so that it is in the first list; the gateway
	// must keep it through the failed lists.
	before := fwOOB(t, reg.MemoryRegistry, "before", b.URL)
	log := &fwLog{}
	o, err := orchestrator.New(orchestrator.WithLogger(slog.New(log)), orchestrator.WithRegistry(reg))
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })
	during := fwOOB(t, reg.MemoryRegistry, "during", b.URL)
	fwRoutable(t, o, "during", during.Revision)
	fwRoutable(t, o, "before", before.Revision)
	after := fwOOB(t, reg.MemoryRegistry, "after", b.URL)
	fwRoutable(t, o, "after", after.Revision)
	assert.Equal(t, 1, log.count("the registry cannot resume the watch; listing it again"))
	assert.Equal(t, 2, log.count("listing the registry failed; routes keep their last known state"))
	assert.Zero(t, reg.gets.Load(), "Gets while following")
}

// fwRefusingRegistry refuses any write that would store the id refuse, and
// counts single writes.
type fwRefusingRegistry struct {
	*orchestrator.MemoryRegistry
	refuse string
	single atomic.Int64
}

func (r *fwRefusingRegistry) Put(ctx context.Context, reg orchestrator.Registration, expect orchestrator.Precondition) (orchestrator.Registration, error) {
	r.single.Add(1)
	if reg.Endpoint.ID == r.refuse {
		return orchestrator.Registration{}, errors.New("write refused")
	}
	return r.MemoryRegistry.Put(ctx, reg, expect)
}

func (r *fwRefusingRegistry) Delete(ctx context.Context, id string, expect orchestrator.Precondition) (uint64, error) {
	r.single.Add(1)
	return r.MemoryRegistry.Delete(ctx, id, expect)
}

func (r *fwRefusingRegistry) Commit(ctx context.Context, ops []orchestrator.Op) (orchestrator.Event, error) {
	for _, op := range ops {
		if op.Kind == orchestrator.ChangePut && op.Registration.Endpoint.ID == r.refuse {
			return orchestrator.Event{}, errors.New("write refused")
		}
	}
	return r.MemoryRegistry.Commit(ctx, ops)
}

// Finding 4: Sync promised "on any error nothing changes" but deleted the
// old set before a later write failed. It now commits the whole difference
// atomically: a refused write leaves the registry and the routes as they
// were.
func TestSyncChangesNothingWhenTheRegistryRefuses(t *testing.T) {
	ctx := context.Background()
	b := rtNewBackend(t, "b")
	reg := &fwRefusingRegistry{MemoryRegistry: orchestrator.NewMemoryRegistry(), refuse: "b"}
	o := rtNew(t, orchestrator.WithRegistry(reg), orchestrator.WithEndpoints(
		orchestrator.Endpoint{Name: "old1", URL: b.URL}, orchestrator.Endpoint{Name: "old2", URL: b.URL}))
	before, err := reg.List(ctx)
	require.NoError(t, err)

	err = o.Sync(ctx, orchestrator.SourceConfig, []orchestrator.Endpoint{{Name: "a", URL: b.URL}, {Name: "b", URL: b.URL}})
	require.ErrorContains(t, err, "write refused")
	err = o.Apply(ctx, orchestrator.Desired{Endpoints: []orchestrator.Endpoint{{Name: "old1", URL: b.URL}, {Name: "b", URL: b.URL}},
		CircuitBreaker: orchestrator.CircuitBreakerConfig{FailureThreshold: 1}})
	require.ErrorContains(t, err, "write refused")

	after, err := reg.List(ctx)
	require.NoError(t, err)
	assert.Equal(t, before, after, "registry after refused syncs; want it unchanged")
	assert.Equal(t, []string{"old1", "old2"}, regIDs(o), "routes after refused syncs")
	assert.Zero(t, reg.single.Load(), "Sync wrote with Put or Delete; want one atomic Commit")

	require.NoError(t, o.Sync(ctx, orchestrator.SourceConfig, []orchestrator.Endpoint{{Name: "a", URL: b.URL}, {Name: "old2", URL: b.URL}}))
	assert.Equal(t, []string{"a", "old2"}, regIDs(o))
}

// fwSilentRegistry never delivers an event: a gateway on it is as far
// behind the store as a slow follower can be.
type fwSilentRegistry struct{ *orchestrator.MemoryRegistry }

func (r fwSilentRegistry) Watch(ctx context.Context, after uint64) (<-chan orchestrator.Event, error) {
	ch := make(chan orchestrator.Event)
	go func() { <-ctx.Done(); close(ch) }()
	return ch, nil
}

// Finding 5: the revision check ran against the gateway's own view and the
// write was unconditional, so a gateway that had not yet seen another's
// update overwrote it. The store checks the revision now.
func TestTwoGatewaysCannotLoseAnUpdate(t *testing.T) {
	ctx := context.Background()
	shared := orchestrator.NewMemoryRegistry()
	a := rtNew(t, orchestrator.WithRegistry(shared))
	v1, err := a.Register(ctx, orchestrator.Endpoint{Name: "svc", URL: "http://127.0.0.1:9001"})
	require.NoError(t, err)
	// b loads svc at v1, then hears of nothing more.
	b := rtNew(t, orchestrator.WithRegistry(fwSilentRegistry{shared}))
	seen, err := b.Endpoint("svc")
	require.NoError(t, err)
	require.Equal(t, v1.Revision, seen.Revision)

	v2, err := a.UpdateIf(ctx, orchestrator.Endpoint{Name: "svc", URL: "http://127.0.0.1:9002"}, v1.Revision)
	require.NoError(t, err)

	// An admin holding v1's ETag edits through b: refused.
	_, err = b.UpdateIf(ctx, orchestrator.Endpoint{Name: "svc", URL: "http://127.0.0.1:9003"}, v1.Revision)
	assert.ErrorIs(t, err, orchestrator.ErrRevisionMismatch, "UpdateIf through a gateway that missed an update")
	err = b.DeregisterIf(ctx, "svc", v1.Revision)
	assert.ErrorIs(t, err, orchestrator.ErrRevisionMismatch, "DeregisterIf through a gateway that missed an update")
	cur, err := shared.Get(ctx, "svc")
	require.NoError(t, err)
	assert.Equal(t, v2.Revision, cur.Revision, "the store's svc: the first gateway's update was lost")
	assert.Equal(t, "http://127.0.0.1:9002", cur.Endpoint.URL)

	// An admin holding v2's ETag (read from a) may edit through b, though
	// b has not seen v2: the store, not b's view, decides.
	v3, err := b.UpdateIf(ctx, orchestrator.Endpoint{Name: "svc", URL: "http://127.0.0.1:9004"}, v2.Revision)
	require.NoError(t, err, "UpdateIf with the current revision through a gateway behind the store")
	assert.Greater(t, v3.Revision, v2.Revision)
	// An unconditional Update through b is based on the store's state, so
	// it is not refused for b's stale view.
	_, err = b.Update(ctx, orchestrator.Endpoint{Name: "svc", URL: "http://127.0.0.1:9005"})
	require.NoError(t, err, "an unconditional Update through a gateway behind the store")
	// Ownership is checked on the store's state too: a config endpoint b
	// has not seen cannot be changed through b's API.
	_, err = shared.Put(ctx, orchestrator.Registration{Endpoint: regEP("svc", "", "http://127.0.0.1:9006"), Source: orchestrator.SourceConfig}, orchestrator.IfAny)
	require.NoError(t, err)
	_, err = b.Update(ctx, orchestrator.Endpoint{Name: "svc", URL: "http://127.0.0.1:9007"})
	assert.ErrorIs(t, err, orchestrator.ErrConflict, "Update of an endpoint the config now owns, through a gateway that has not seen it")
}

// fwCountingRegistry counts Gets.
type fwCountingRegistry struct {
	*orchestrator.MemoryRegistry
	gets atomic.Int64
}

func (r *fwCountingRegistry) Get(ctx context.Context, id string) (orchestrator.Registration, error) {
	r.gets.Add(1)
	return r.MemoryRegistry.Get(ctx, id)
}

// Finding 6: events carried only an id, so following cost a Get per event.
// They carry the record and its revision; following reads nothing.
func TestFollowingCostsNoReads(t *testing.T) {
	ctx := context.Background()
	b := rtNewBackend(t, "b")
	reg := &fwCountingRegistry{MemoryRegistry: orchestrator.NewMemoryRegistry()}
	o := rtNew(t, orchestrator.WithRegistry(reg))
	var last orchestrator.Registration
	for i := range 20 {
		last = fwOOB(t, reg, fmt.Sprintf("oob%d", i%4), fmt.Sprintf("%s/%d", b.URL, i))
	}
	fwRoutable(t, o, last.Endpoint.ID, last.Revision)
	_, err := reg.Delete(ctx, "oob0", orchestrator.IfAny)
	require.NoError(t, err)
	regEventually(t, "oob0 removed", func() bool { _, err := o.Endpoint("oob0"); return err != nil })
	assert.Zero(t, reg.gets.Load(), "Gets made to follow 21 changes")
	got, err := o.Endpoint(last.Endpoint.ID)
	require.NoError(t, err)
	assert.Equal(t, last.Endpoint.URL, got.Config.URL, "the route follows the record the event carried")
}

// fwBlockingHandler blocks the first record with message msg until release
// is closed: a writer that logs while it holds the route lock holds it as
// long as a very long reload would.
type fwBlockingHandler struct {
	msg     string
	blocked chan struct{}
	release chan struct{}
	once    sync.Once
}

func (h *fwBlockingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *fwBlockingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		first := false
		h.once.Do(func() { first = true })
		if first {
			close(h.blocked)
			<-h.release
		}
	}
	return nil
}
func (h *fwBlockingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *fwBlockingHandler) WithGroup(string) slog.Handler      { return h }

// Finding 7: every scheduled probe took the route writers' lock to find its
// route, so a long reload (or, before, a slow registry call made under the
// lock) stalled all health checking. Probes keep running while a writer
// holds the lock.
func TestProbesRunWhileAWriterHoldsTheRouteLock(t *testing.T) {
	ctx := context.Background()
	b := rtNewBackend(t, "b")
	h := &fwBlockingHandler{
		msg:     "circuit breaker rebuilt for a config change; it was open and starts closed",
		blocked: make(chan struct{}), release: make(chan struct{}),
	}
	probes := make(chan struct{}, 64)
	prober := orchestrator.ProberFunc(func(ctx context.Context, tg orchestrator.ProbeTarget) error {
		if tg.EndpointID == "probed" {
			select {
			case probes <- struct{}{}:
			default:
			}
		}
		return nil
	})
	o, err := orchestrator.New(orchestrator.WithLogger(slog.New(h)), orchestrator.WithProber(prober))
	require.NoError(t, err)
	released := false
	release := func() {
		if !released {
			released = true
			close(h.release)
		}
	}
	t.Cleanup(func() { release(); o.Close() })
	_, err = o.Register(ctx, orchestrator.Endpoint{Name: "probed", URL: b.URL,
		HealthCheck: &orchestrator.HealthCheckConfig{Interval: orchestrator.Duration(5 * time.Millisecond)}})
	require.NoError(t, err)
	_, err = o.Register(ctx, orchestrator.Endpoint{Name: "tripped", URL: b.URL})
	require.NoError(t, err)
	orchestrator.OpenBreakerForTest(o, "tripped") // opened as failures would: a trip would outlive the update

	// The update rebuilds the open breaker and logs it under the route
	// lock, where the handler holds it.
	updated := make(chan error, 1)
	go func() {
		_, err := o.Update(ctx, orchestrator.Endpoint{Name: "tripped", URL: b.URL + "/v2"})
		updated <- err
	}()
	select {
	case <-h.blocked:
	case <-time.After(20 * time.Second):
		t.Fatal("the update did not reach the breaker rebuild within 20s")
	}
	for len(probes) > 0 {
		<-probes // probes from before the lock was taken
	}
	for i := range 3 {
		select {
		case <-probes:
		case <-time.After(10 * time.Second):
			t.Fatalf("probe %d while a writer holds the route lock: none within 10s; want probes to keep running", i+1)
		}
	}
	release()
	require.NoError(t, <-updated)
}

// The writer's own result and the follower's events may arrive in either
// order: an older change never undoes a newer one. Two gateways editing
// one store converge on the store's state.
func TestTwoGatewaysConvergeUnderConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	b := rtNewBackend(t, "b")
	shared := orchestrator.NewMemoryRegistry()
	g1 := rtNew(t, orchestrator.WithRegistry(shared))
	g2 := rtNew(t, orchestrator.WithRegistry(shared))
	var wg sync.WaitGroup
	for gi, g := range []*orchestrator.Orchestrator{g1, g2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60 {
				name := fmt.Sprintf("svc%d", i%3)
				ep := orchestrator.Endpoint{Name: name, URL: fmt.Sprintf("%s/g%d/%d", b.URL, gi, i)}
				switch i % 3 {
				case 0:
					g.Register(ctx, ep) // may conflict with the other gateway's
				case 1:
					g.Update(ctx, ep) // may find it gone
				case 2:
					g.Deregister(ctx, ep.EndpointID())
				}
			}
		}()
	}
	wg.Wait()
	sentinel := fwOOB(t, shared, "sentinel", b.URL)
	fwRoutable(t, g1, "sentinel", sentinel.Revision)
	fwRoutable(t, g2, "sentinel", sentinel.Revision)
	snap, err := shared.List(ctx)
	require.NoError(t, err)
	want := map[string]uint64{}
	for _, r := range snap.Registrations {
		want[r.Endpoint.ID] = r.Revision
	}
	for gi, g := range []*orchestrator.Orchestrator{g1, g2} {
		got := map[string]uint64{}
		for _, ep := range g.Endpoints() {
			got[ep.ID] = ep.Revision
		}
		assert.Equal(t, want, got, "gateway %d's endpoints and revisions; want the store's", gi+1)
	}
	assert.True(t, slices.Contains(regIDs(g1), "sentinel"))
}

// Operator overrides are records of their own beside registrations: the
// gateway follows them from the store, whether or not their endpoint is
// registered, through a relist as through events.
func TestGatewayFollowsOverrides(t *testing.T) {
	ctx := context.Background()
	b := rtNewBackend(t, "b")
	reg := orchestrator.NewMemoryRegistry()
	trip := orchestrator.Override{Kind: orchestrator.OverrideBreakerOpen, EndpointID: "cfg", Reason: "incident 7"}
	listed, err := reg.Commit(ctx, []orchestrator.Op{orchestrator.PutOverrideOp(trip, orchestrator.IfAbsent)})
	require.NoError(t, err)
	o := rtNew(t, orchestrator.WithRegistry(reg), orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "cfg", URL: b.URL}))
	assert.Equal(t, []orchestrator.Override{listed.Changes[0].Override}, o.Overrides(), "overrides loaded by New")

	drain := orchestrator.Override{Kind: orchestrator.OverrideTargetDrained, EndpointID: "other", Target: "a"}
	added, err := reg.Commit(ctx, []orchestrator.Op{
		orchestrator.PutOverrideOp(drain, orchestrator.IfAbsent),
		orchestrator.DeleteOverrideOp(trip.Key(), orchestrator.IfRevision(listed.Revision)),
	})
	require.NoError(t, err)
	regEventually(t, "the overrides follow the store", func() bool {
		got := o.Overrides()
		return len(got) == 1 && got[0].Key() == "target_drained/other/a" && got[0].Revision == added.Revision
	})
	// A config reload that rewrites the endpoint leaves overrides alone.
	require.NoError(t, o.Sync(ctx, orchestrator.SourceConfig, []orchestrator.Endpoint{{Name: "cfg", URL: b.URL + "/v2"}}))
	require.NoError(t, o.Refresh(ctx))
	assert.Len(t, o.Overrides(), 1, "overrides after a reload and a refresh")
}
