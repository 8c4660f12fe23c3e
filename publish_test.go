package orchestrator

import (
	"fmt"
	"testing"

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
	require.Equal(t, 200, tbl.names.Len())
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
