package orchestrator_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

func TestPlanApply(t *testing.T) {
	ctx := context.Background()
	w2 := 2
	running := []orchestrator.Endpoint{
		{Name: "users", Version: "v1", URL: "http://127.0.0.1:9001/api", Timeout: polDuration(30 * time.Second)},
		{Name: "search", Targets: []orchestrator.Target{{ID: "a", URL: "http://127.0.0.1:9101"}, {ID: "b", URL: "http://127.0.0.1:9102"}}},
		{Name: "old", URL: "http://127.0.0.1:9003"},
		{Name: "same", URL: "http://127.0.0.1:9004"},
	}
	o := polNew(t, orchestrator.WithEndpoints(running...))
	_, err := o.Register(ctx, orchestrator.Endpoint{Name: "byapi", URL: "http://127.0.0.1:9005"})
	require.NoError(t, err)

	desired := orchestrator.Desired{
		CircuitBreaker: orchestrator.CircuitBreakerConfig{FailureThreshold: 3},
		Endpoints: []orchestrator.Endpoint{
			{Name: "users", Version: "v1", URL: "http://127.0.0.1:9001/api", Timeout: polDuration(10 * time.Second),
				CircuitBreaker: &orchestrator.CircuitBreakerConfig{FailureRateThreshold: 50}},
			{Name: "search", Targets: []orchestrator.Target{{ID: "a", URL: "http://127.0.0.1:9101/v2", Weight: &w2}, {ID: "c", URL: "http://127.0.0.1:9103"}}},
			{Name: "same", URL: "http://127.0.0.1:9004"},
			{Name: "fresh", Version: "v1", URL: "http://127.0.0.1:9006"},
		},
	}
	p, err := o.PlanApply(ctx, desired)
	require.NoError(t, err)

	t.Run("added and removed endpoints, with their routes and targets", func(t *testing.T) {
		require.Len(t, p.Added, 1)
		assert.Equal(t, orchestrator.PlannedEndpoint{ID: "fresh_v1", Route: "/orchestrator/fresh/v1",
			Targets: []orchestrator.PlannedTarget{{ID: "127.0.0.1:9006", URL: "http://127.0.0.1:9006"}}}, p.Added[0])
		require.Len(t, p.Removed, 1)
		assert.Equal(t, "old", p.Removed[0].ID)
		assert.Equal(t, 1, p.Unchanged, "same is unchanged")
	})

	t.Run("changed fields by path, with old and new values", func(t *testing.T) {
		require.Len(t, p.Changed, 2)
		users := p.Changed[0]
		assert.Equal(t, "users_v1", users.ID)
		assert.Equal(t, []orchestrator.FieldChange{
			{Field: "circuit_breaker.failure_rate_threshold", Old: nil, New: float64(50)},
			{Field: "timeout", Old: float64(30), New: float64(10)},
		}, users.Fields)
		assert.Empty(t, users.TargetsAdded)
		assert.Empty(t, users.TargetsRemoved)
	})

	t.Run("targets matched by id: added, removed, reweighted", func(t *testing.T) {
		search := p.Changed[1]
		assert.Equal(t, "search", search.ID)
		assert.Empty(t, search.Fields)
		assert.Equal(t, []orchestrator.PlannedTarget{{ID: "c", URL: "http://127.0.0.1:9103"}}, search.TargetsAdded)
		assert.Equal(t, []orchestrator.PlannedTarget{{ID: "b", URL: "http://127.0.0.1:9102"}}, search.TargetsRemoved)
		assert.Equal(t, []orchestrator.TargetChange{{ID: "a", Fields: []orchestrator.FieldChange{
			{Field: "url", Old: "http://127.0.0.1:9101", New: "http://127.0.0.1:9101/v2"},
			{Field: "weight", Old: nil, New: float64(2)},
		}}}, search.TargetsChanged)
	})

	t.Run("global defaults, with their defaults applied", func(t *testing.T) {
		assert.Equal(t, []orchestrator.FieldChange{{Field: "circuit_breaker.failure_threshold", Old: float64(5), New: float64(3)}}, p.Defaults)
	})

	t.Run("the API's endpoints are left out, and nothing changed", func(t *testing.T) {
		for _, c := range p.Removed {
			assert.NotEqual(t, "byapi", c.ID)
		}
		v := polView(t, o, "users_v1")
		assert.Equal(t, 30*time.Second, v.Config.Timeout.Std(), "planning applies nothing")
		_, err := o.Endpoint("old")
		assert.NoError(t, err, "planning removes nothing")
	})

	t.Run("applying the same state then plans nothing", func(t *testing.T) {
		require.NoError(t, o.Apply(ctx, desired))
		again, err := o.PlanApply(ctx, desired)
		require.NoError(t, err)
		assert.True(t, again.Empty(), "plan after apply: %+v", again)
		assert.Equal(t, 4, again.Unchanged)
	})

	t.Run("the plan is JSON the admin API can serve", func(t *testing.T) {
		raw, err := json.Marshal(p)
		require.NoError(t, err)
		assert.Contains(t, string(raw), `{"field":"timeout","old":30,"new":10}`)
	})
}

func TestPlanApplyRefusesWhatApplyRefuses(t *testing.T) {
	ctx := context.Background()
	o := polNew(t)
	_, err := o.Register(ctx, orchestrator.Endpoint{Name: "taken", URL: "http://127.0.0.1:9005"})
	require.NoError(t, err)

	_, err = o.PlanApply(ctx, orchestrator.Desired{Endpoints: []orchestrator.Endpoint{
		{Name: "taken", URL: "http://127.0.0.1:9006"},
		{Name: "bad", URL: "ftp://x"},
	}})
	var verr *orchestrator.ValidationError
	require.ErrorAs(t, err, &verr)
	assert.Contains(t, err.Error(), "endpoints[1].url")

	_, err = o.PlanApply(ctx, orchestrator.Desired{Endpoints: []orchestrator.Endpoint{{Name: "taken", URL: "http://127.0.0.1:9006"}}})
	require.ErrorAs(t, err, &verr)
	assert.Contains(t, err.Error(), "endpoints[0].id", "an id the admin API owns")

	applyErr := o.Apply(ctx, orchestrator.Desired{Endpoints: []orchestrator.Endpoint{{Name: "taken", URL: "http://127.0.0.1:9006"}}})
	assert.Equal(t, applyErr.Error(), err.Error(), "the plan refuses as Apply does")
}

func TestPlanApplyBetweenTheURLShorthandAndTargets(t *testing.T) {
	o := polNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: "http://127.0.0.1:9001"}))
	p, err := o.PlanApply(context.Background(), orchestrator.Desired{Endpoints: []orchestrator.Endpoint{{Name: "svc",
		Targets: []orchestrator.Target{{URL: "http://127.0.0.1:9001"}, {URL: "http://127.0.0.1:9002"}}}}})
	require.NoError(t, err)
	require.Len(t, p.Changed, 1)
	c := p.Changed[0]
	assert.Empty(t, c.TargetsRemoved, "the url's target is kept: same id")
	assert.Equal(t, []orchestrator.PlannedTarget{{ID: "127.0.0.1:9002", URL: "http://127.0.0.1:9002"}}, c.TargetsAdded)
	assert.Equal(t, []orchestrator.FieldChange{{Field: "targets", Old: "the url shorthand", New: "a list of 2"}}, c.Fields)
}
