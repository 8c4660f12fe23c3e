package orchestrator

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// silentWatchRegistry delivers no event, so that a test hands the gateway
// its events itself, in the order it chooses.
type silentWatchRegistry struct{ *MemoryRegistry }

func (r silentWatchRegistry) Watch(ctx context.Context, after uint64) (<-chan Event, error) {
	ch := make(chan Event)
	go func() { <-ctx.Done(); close(ch) }()
	return ch, nil
}

// TestOlderChangesNeverUndoNewerOnes: a writer applies its own result at
// once, and the follower hears of the same revisions later. Those late
// events, an old snapshot, or a writer's result the follower has passed
// must never bring back a state older than the one the gateway holds:
// above all, an endpoint deregistered must not come back, even for a
// moment.
func TestOlderChangesNeverUndoNewerOnes(t *testing.T) {
	ctx := context.Background()
	mem := NewMemoryRegistry()
	o, err := New(WithLogger(slog.New(slog.DiscardHandler)), WithRegistry(silentWatchRegistry{mem}))
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })

	ep := Endpoint{Name: "x", URL: "http://127.0.0.1:1"}.Normalized()
	v1, err := o.Register(ctx, ep)
	require.NoError(t, err)
	ep2 := ep
	ep2.URL = "http://127.0.0.1:2"
	v2, err := o.Update(ctx, ep2)
	require.NoError(t, err)
	require.NoError(t, o.Deregister(ctx, "x"))
	snap, err := mem.List(ctx)
	require.NoError(t, err)
	deleted := snap.Revision

	absent := func(what string) {
		t.Helper()
		_, err := o.Endpoint("x")
		assert.ErrorIs(t, err, ErrNotFound, "x after %s; want it still deregistered", what)
	}
	put := func(v RegisteredEndpoint, e Endpoint) Event {
		reg := Registration{Endpoint: e, Source: SourceAPI, Revision: v.Revision, RegisteredAt: v.RegistrationTime}
		return Event{Revision: v.Revision, Changes: []Change{{Kind: ChangePut, Key: "x", Registration: reg}}}
	}

	o.applyEvents([]Event{put(v1, ep)})
	absent("the late event of its registration")
	o.applyEvents([]Event{put(v2, ep2)})
	absent("the late event of its update")
	o.applyEvents([]Event{{Revision: deleted, Changes: []Change{{Kind: ChangeDelete, Key: "x"}}}})
	absent("the event of its removal")

	o.mu.Lock()
	applied := o.applyOwnLocked(put(v2, ep2), nil)
	fromOld := o.applySnapshotLocked(Snapshot{Revision: v2.Revision, Registrations: []Registration{put(v2, ep2).Changes[0].Registration}})
	tombs := len(o.tombs)
	o.mu.Unlock()
	assert.False(t, applied, "a writer's result older than the follower's position was applied")
	assert.False(t, fromOld, "a snapshot older than the follower's position was applied")
	absent("an old result and an old snapshot")
	assert.Zero(t, tombs, "removals the follower has passed are still remembered")
}
