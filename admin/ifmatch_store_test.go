package admin_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/admin"
)

// stalledWatch is a shared store whose watch never delivers: the gateway
// on it sees only what it reads or writes itself, as one whose follower
// lags behind another gateway's writes.
type stalledWatch struct{ *orchestrator.MemoryRegistry }

func (stalledWatch) Watch(ctx context.Context, after uint64) (<-chan orchestrator.Event, error) {
	ch := make(chan orchestrator.Event)
	go func() {
		<-ctx.Done()
		close(ch)
	}()
	return ch, nil
}

func TestIfMatchIsCheckedByTheStoreNotByALaggingView(t *testing.T) {
	// Given two gateways on one store, the second never following it
	store := orchestrator.NewMemoryRegistry()
	first, err := orchestrator.New(orchestrator.WithRegistry(store))
	require.NoError(t, err)
	t.Cleanup(func() { first.Close() })
	lagging, err := orchestrator.New(orchestrator.WithRegistry(stalledWatch{store}))
	require.NoError(t, err)
	t.Cleanup(func() { lagging.Close() })
	ep := orchestrator.Endpoint{Name: "svc", URL: "http://127.0.0.1:9"}
	v1, err := first.Register(context.Background(), ep)
	require.NoError(t, err)
	require.NoError(t, lagging.Refresh(context.Background())) // the lagging gateway saw revision v1 once
	ep.URL = "http://127.0.0.1:10"
	v2, err := first.Update(context.Background(), ep)
	require.NoError(t, err)
	require.Greater(t, v2.Revision, v1.Revision)
	h := admin.New(lagging, admin.Options{})

	// When a client that read the newest ETag updates through the lagging gateway
	body := `{"name": "svc", "url": "http://127.0.0.1:11"}`
	rec := call(h, http.MethodPut, "/registry/endpoints/svc", body, header("If-Match", `"`+strconv.FormatUint(v2.Revision, 10)+`"`))

	// Then the store, which holds that revision, lets it through
	assert.Equal(t, http.StatusOK, rec.Code, "body: %s", rec.Body.String())

	// And a stale tag is still refused, by the store
	rec = call(h, http.MethodPut, "/registry/endpoints/svc", body, header("If-Match", `"`+strconv.FormatUint(v1.Revision, 10)+`"`))
	requireProblem(t, rec, http.StatusPreconditionFailed, "precondition-failed")
}
