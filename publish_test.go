package orchestrator

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A table published incrementally finds exactly the routes a full build
// would, after registrations and removals among many names.
func TestIncrementalPublishKeepsTheNameIndexExact(t *testing.T) {
	o, err := New(WithMetrics(false), WithHealthCheck(HealthCheckConfig{Enabled: new(bool)}))
	require.NoError(t, err)
	defer o.Close()
	ctx := t.Context()
	for i := 0; i < 300; i++ {
		_, err := o.Register(ctx, Endpoint{Name: fmt.Sprintf("svc%d", i), Version: "v1", URL: "http://127.0.0.1:9"})
		require.NoError(t, err)
	}
	for i := 0; i < 300; i += 3 {
		require.NoError(t, o.Deregister(ctx, fmt.Sprintf("svc%d_v1", i)))
	}
	tbl := o.table.Load()
	require.Equal(t, 200, tbl.ids.Len())
	require.Equal(t, 200, tbl.paths.Len())
	for i := 0; i < 300; i++ {
		rt, _ := tbl.lookup(fmt.Sprintf("/svc%d/v1/x", i))
		byID := tbl.route(fmt.Sprintf("svc%d_v1", i))
		if i%3 == 0 {
			require.Nil(t, rt, "svc%d was removed", i)
			require.Nil(t, byID, "svc%d_v1 was removed", i)
		} else {
			require.NotNil(t, rt, "svc%d", i)
			require.Equal(t, fmt.Sprintf("svc%d", i), rt.ep.Name)
			require.Same(t, rt, byID)
		}
	}
}

// A route's version change and rename move it to its new path in an
// incremental publish, and its old path stops answering.
func TestIncrementalPublishFollowsVersionChangesAndRenames(t *testing.T) {
	o, err := New(WithMetrics(false), WithHealthCheck(HealthCheckConfig{Enabled: new(bool)}))
	require.NoError(t, err)
	defer o.Close()
	ctx := t.Context()
	for i := 0; i < 50; i++ {
		_, err := o.Register(ctx, Endpoint{Name: fmt.Sprintf("svc%d", i), Version: "v1", URL: "http://127.0.0.1:9"})
		require.NoError(t, err)
	}
	_, err = o.Register(ctx, Endpoint{ID: "moving", Name: "a", Version: "v1", URL: "http://127.0.0.1:9"})
	require.NoError(t, err)
	find := func(p string) string {
		rt, _ := o.table.Load().lookup(p)
		if rt == nil {
			return ""
		}
		return rt.ep.ID
	}
	require.Equal(t, "moving", find("/a/v1/x"))

	_, err = o.Update(ctx, Endpoint{ID: "moving", Name: "a", Version: "v2", URL: "http://127.0.0.1:9"})
	require.NoError(t, err)
	assert.Empty(t, find("/a/v1/x"), "the old version's path must stop answering")
	assert.Equal(t, "moving", find("/a/v2/x"))

	_, err = o.Update(ctx, Endpoint{ID: "moving", Name: "b", Version: "v2", URL: "http://127.0.0.1:9"})
	require.NoError(t, err)
	assert.Empty(t, find("/a/v2/x"), "the old name's path must stop answering")
	assert.Equal(t, "moving", find("/b/v2/x"))
	assert.Equal(t, 51, o.table.Load().paths.Len())
}

// Two routes claiming one path (an external registry written by others can
// hold them): the earlier registration serves it, and when it goes, an
// incremental publish hands the path to the other.
func TestShadowedRouteTakesOverItsPathWhenTheWinnerGoes(t *testing.T) {
	o, err := New(WithMetrics(false), WithHealthCheck(HealthCheckConfig{Enabled: new(bool)}))
	require.NoError(t, err)
	defer o.Close()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	build := func(id, name string, at time.Time) *route {
		rt, err := o.buildRoute(Registration{Endpoint: Endpoint{ID: id, Name: name, Version: "v1", URL: "http://127.0.0.1:9"}, Source: SourceAPI, RegisteredAt: at}, nil)
		require.NoError(t, err)
		return rt
	}
	o.mu.Lock()
	for i := 0; i < 50; i++ {
		id := fmt.Sprintf("svc%d", i)
		o.setEntryLocked(id, build(id, id, t0))
	}
	o.setEntryLocked("first", build("first", "dup", t0))
	o.setEntryLocked("second", build("second", "dup", t0.Add(time.Second)))
	o.publishLocked()
	o.mu.Unlock()
	rt, _ := o.table.Load().lookup("/dup/v1/x")
	require.NotNil(t, rt)
	assert.Equal(t, "first", rt.ep.ID, "the earlier registration serves the path")

	o.mu.Lock()
	o.deleteEntryLocked("first")
	o.publishLocked()
	o.mu.Unlock()
	rt, _ = o.table.Load().lookup("/dup/v1/x")
	require.NotNil(t, rt, "the shadowed route must take over the path")
	assert.Equal(t, "second", rt.ep.ID)
}
