package orchestrator_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

// raFields returns the field paths a *ValidationError lists.
func raFields(t *testing.T, err error) []string {
	t.Helper()
	var ve *orchestrator.ValidationError
	require.True(t, errors.As(err, &ve), "error %v (%T) is not a *ValidationError", err, err)
	fields := make([]string, len(ve.Errors))
	for i, fe := range ve.Errors {
		fields[i] = fe.Field
	}
	return fields
}

// raStored returns the ids the registry holds, sorted.
func raStored(t *testing.T, o *orchestrator.Orchestrator) []string {
	t.Helper()
	snap, err := o.Registry().List(context.Background())
	require.NoError(t, err)
	ids := make([]string, 0, len(snap.Registrations))
	for _, reg := range snap.Registrations {
		ids = append(ids, reg.Endpoint.ID)
	}
	slices.Sort(ids)
	return ids
}

// Issue 13 point 9: bulk registration, all or nothing.
func TestRegisterAll(t *testing.T) {
	ctx := context.Background()
	b := rtNewBackend(t, "b")

	t.Run("registers every endpoint in one registry revision, routable at once", func(t *testing.T) {
		o := rtNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "cfg", URL: b.URL}))
		watch, err := o.Registry().Watch(t.Context(), mustRevision(t, o))
		require.NoError(t, err)

		got, err := o.RegisterAll(ctx, []orchestrator.Endpoint{
			{Name: "users", Version: "v1", URL: b.URL + "/u", Methods: []string{"get"}},
			{Name: "orders", URL: b.URL + "/o"},
			{ID: "billing", Name: "bill", Version: "v2", URL: b.URL + "/b"},
		})
		require.NoError(t, err, "RegisterAll = %v; want nil", err)

		// Routable the moment RegisterAll returns: no polling.
		regCheck(t, o, "/orchestrator/users/v1/1", "200 b GET /u/1", "first endpoint")
		regCheck(t, o, "/orchestrator/orders/2", "200 b GET /o/2", "second endpoint")
		regCheck(t, o, "/orchestrator/bill/v2/3", "200 b GET /b/3", "third endpoint")

		require.Len(t, got, 3)
		assert.Equal(t, []string{"users_v1", "orders", "billing"}, []string{got[0].ID, got[1].ID, got[2].ID}, "the views, in the order given")
		assert.Equal(t, []string{"GET"}, got[0].Config.Methods, "normalized")
		for _, v := range got {
			assert.Equal(t, orchestrator.SourceAPI, v.Source, "%s: source", v.ID)
			assert.Equal(t, got[0].Revision, v.Revision, "%s: revision %d; want the batch's one revision %d", v.ID, v.Revision, got[0].Revision)
		}
		ev, ok := regRecv(t, watch)
		require.True(t, ok)
		assert.Equal(t, got[0].Revision, ev.Revision, "one event at the batch's revision")
		assert.Len(t, ev.Changes, 3, "one event carries all three registrations")
		assert.Equal(t, []string{"billing", "cfg", "orders", "users_v1"}, raStored(t, o))
	})

	t.Run("no endpoints is no change", func(t *testing.T) {
		o := rtNew(t)
		before := mustRevision(t, o)
		got, err := o.RegisterAll(ctx, nil)
		require.NoError(t, err)
		assert.Empty(t, got)
		assert.Equal(t, before, mustRevision(t, o), "the registry's revision moved")
	})

	refused := []struct {
		name   string
		eps    []orchestrator.Endpoint
		is     error
		fields []string // for ErrInvalid: every field the error must list, in order
		says   []string // for ErrConflict: what the message must name
	}{
		{
			name: "one invalid among three lists it by index",
			eps: []orchestrator.Endpoint{
				{Name: "a", URL: b.URL}, {Name: "b", URL: "ftp://x", AuthType: "magic"}, {Name: "c", URL: b.URL},
			},
			is: orchestrator.ErrInvalid, fields: []string{"[1].url", "[1].auth_type"},
		},
		{
			name: "every invalid endpoint is listed",
			eps: []orchestrator.Endpoint{
				{Name: "", URL: b.URL}, {Name: "b", URL: b.URL}, {Name: "c", URL: ""},
			},
			is: orchestrator.ErrInvalid, fields: []string{"[0].name", "[2].url"},
		},
		{
			name: "an id twice in the batch",
			eps:  []orchestrator.Endpoint{{Name: "a", URL: b.URL}, {Name: "b", URL: b.URL}, {ID: "a", Name: "c", URL: b.URL}},
			is:   orchestrator.ErrInvalid, fields: []string{"[2].id"},
		},
		{
			name: "a route twice in the batch",
			eps:  []orchestrator.Endpoint{{Name: "a", URL: b.URL}, {ID: "other", Name: "a", URL: b.URL}},
			is:   orchestrator.ErrInvalid, fields: []string{"[1]"},
		},
		{
			name: "an upstream the guard refuses",
			eps:  []orchestrator.Endpoint{{Name: "a", URL: b.URL}, {Name: "meta", URL: "http://169.254.169.254/latest"}},
			is:   orchestrator.ErrInvalid, fields: []string{"[1].url"},
		},
		{
			name: "an id already registered",
			eps:  []orchestrator.Endpoint{{Name: "a", URL: b.URL}, {Name: "cfg", URL: b.URL + "/x"}, {Name: "c", URL: b.URL}},
			is:   orchestrator.ErrConflict, says: []string{`[1].id: endpoint "cfg" already exists (source config)`, "nothing was registered"},
		},
		{
			name: "a route another endpoint serves",
			eps:  []orchestrator.Endpoint{{Name: "a", URL: b.URL}, {ID: "b", Name: "cfg", URL: b.URL}},
			is:   orchestrator.ErrConflict, says: []string{`[1]: route /orchestrator/cfg is already served by endpoint "cfg"`},
		},
	}
	for _, tt := range refused {
		t.Run("refuses "+tt.name+" and registers none", func(t *testing.T) {
			o := rtNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "cfg", URL: b.URL}))
			before := mustRevision(t, o)
			got, err := o.RegisterAll(ctx, tt.eps)
			require.ErrorIs(t, err, tt.is, "RegisterAll = %v; want %v", err, tt.is)
			assert.Nil(t, got)
			if tt.fields != nil {
				assert.Equal(t, tt.fields, raFields(t, err))
			}
			for _, s := range tt.says {
				assert.Contains(t, err.Error(), s)
			}
			assert.Equal(t, before, mustRevision(t, o), "the registry's revision moved")
			assert.Equal(t, []string{"cfg"}, raStored(t, o), "the registry holds what it held")
			assert.Equal(t, []string{"cfg"}, regIDs(o), "the routes are what they were")
		})
	}

	t.Run("an id another gateway stores first refuses the whole batch", func(t *testing.T) {
		// The racing gateway writes between this one's check and its commit.
		racer := &raRacingRegistry{MemoryRegistry: orchestrator.NewMemoryRegistry()}
		o := rtNew(t, orchestrator.WithRegistry(racer))
		racer.before = func() {
			_, err := racer.Put(ctx, orchestrator.Registration{Endpoint: regEP("b", "", b.URL), Source: orchestrator.SourceAPI}, orchestrator.IfAbsent)
			assert.NoError(t, err)
		}
		_, err := o.RegisterAll(ctx, []orchestrator.Endpoint{{Name: "a", URL: b.URL}, {Name: "b", URL: b.URL}, {Name: "c", URL: b.URL}})
		require.ErrorIs(t, err, orchestrator.ErrConflict)
		assert.Contains(t, err.Error(), `op 1 of 3`, "names the endpoint's index")
		assert.Equal(t, []string{"b"}, raStored(t, o), "only the other gateway's write is stored")
		_, err = o.Endpoint("a")
		assert.ErrorIs(t, err, orchestrator.ErrNotFound, "a was not applied")
	})

	t.Run("after Close", func(t *testing.T) {
		o := rtNew(t)
		require.NoError(t, o.Close())
		_, err := o.RegisterAll(ctx, []orchestrator.Endpoint{{Name: "a", URL: b.URL}})
		assert.ErrorIs(t, err, orchestrator.ErrClosed)
	})
}

// TestRegisterAllIsOneChange: a reader, of the writing gateway or of
// another following the same registry, sees a batch entirely or not at all.
func TestRegisterAllIsOneChange(t *testing.T) {
	ctx := context.Background()
	b := rtNewBackend(t, "b")
	shared := orchestrator.NewMemoryRegistry()
	writer := rtNew(t, orchestrator.WithRegistry(shared))
	follower := rtNew(t, orchestrator.WithRegistry(shared))

	const batches, size = 60, 4
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var snapshots atomic.Int64
	partial := make(chan string, 2)
	writerTicks, followerTicks := make(chan struct{}, 1), make(chan struct{}, 1)
	read := func(o *orchestrator.Orchestrator, ticks chan struct{}) {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			perBatch := map[string]int{}
			for _, ep := range o.Endpoints() {
				batch, _, _ := strings.Cut(ep.ID, "-")
				perBatch[batch]++
			}
			snapshots.Add(1)
			for batch, n := range perBatch {
				if n != size {
					select {
					case partial <- fmt.Sprintf("%s: %d of %d", batch, n, size):
					default:
					}
					close(ticks) // the writer stops waiting
					return
				}
			}
			select {
			case ticks <- struct{}{}:
			default:
			}
		}
	}
	wg.Add(2)
	go read(writer, writerTicks)
	go read(follower, followerTicks)
	for i := range batches {
		// Each batch waits for a snapshot from each reader, so snapshots
		// are taken all through the batches however the cores are shared.
		<-writerTicks
		<-followerTicks
		eps := make([]orchestrator.Endpoint, size)
		for j := range eps {
			eps[j] = orchestrator.Endpoint{ID: fmt.Sprintf("b%d-%d", i, j), Name: fmt.Sprintf("b%d-%d", i, j), URL: b.URL}
		}
		_, err := writer.RegisterAll(ctx, eps)
		require.NoError(t, err)
	}
	regEventually(t, "the follower has every batch", func() bool { return len(follower.Endpoints()) == batches*size })
	close(stop)
	wg.Wait()
	select {
	case got := <-partial:
		t.Fatalf("a reader saw part of a batch (%s); want all of it or none", got)
	default:
	}
	assert.GreaterOrEqual(t, snapshots.Load(), int64(2*batches), "the readers took %d snapshots; want one each per batch", snapshots.Load())
	assert.Len(t, writer.Endpoints(), batches*size)
}

// mustRevision returns the registry's current revision.
func mustRevision(t *testing.T, o *orchestrator.Orchestrator) uint64 {
	t.Helper()
	snap, err := o.Registry().List(context.Background())
	require.NoError(t, err)
	return snap.Revision
}

// raRacingRegistry runs before once, just before the first Commit of more
// than one op: another gateway's write landing between the Orchestrator's
// own check and its commit.
type raRacingRegistry struct {
	*orchestrator.MemoryRegistry
	once   sync.Once
	before func()
}

func (r *raRacingRegistry) Commit(ctx context.Context, ops []orchestrator.Op) (orchestrator.Event, error) {
	if len(ops) > 1 && r.before != nil {
		r.once.Do(r.before)
	}
	return r.MemoryRegistry.Commit(ctx, ops)
}
