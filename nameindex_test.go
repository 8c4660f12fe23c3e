package orchestrator

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// The name index agrees with a map through any sequence of inserts,
// replacements and removals, including removals inside long probe runs
// (a small array and many names make runs long and wrapping).
func TestNameIndexAgreesWithAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string]*nameRoutes{}
	x := newNameIndex(nil)
	names := make([]string, 200)
	for i := range names {
		names[i] = fmt.Sprintf("n%d", i)
	}
	for step := 0; step < 20000; step++ {
		name := names[rng.IntN(200)]
		if rng.IntN(3) == 0 {
			delete(want, name)
			x.remove(name)
		} else {
			nr := &nameRoutes{name: name}
			want[name] = nr
			if 2*(x.used+1) > len(x.slots) {
				x = newNameIndex(want)
			} else {
				x.set(nr)
			}
		}
		if x.used != len(want) {
			t.Fatalf("step %d: %d entries; want %d", step, x.used, len(want))
		}
		for i := 0; i < 200; i++ {
			n := names[i]
			if got := x.get(n); got != want[n] {
				t.Fatalf("step %d: get(%q) = %v; want %v", step, n, got, want[n])
			}
		}
	}
}

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
	for i := 0; i < 300; i++ {
		rt, _ := tbl.lookup(fmt.Sprintf("/svc%d/v1/x", i))
		if i%3 == 0 {
			require.Nil(t, rt, "svc%d was removed", i)
		} else {
			require.NotNil(t, rt, "svc%d", i)
			require.Equal(t, fmt.Sprintf("svc%d", i), rt.ep.Name)
		}
	}
}
