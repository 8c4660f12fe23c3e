package admin_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

// TestDrainAndRestoreATargetThroughTheAPI: the routes store an override,
// answer the endpoint's view, and take target ids with a port and IPv6
// brackets, percent-encoded or not.
func TestDrainAndRestoreATargetThroughTheAPI(t *testing.T) {
	f := newFixture(t)
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(b.Close)
	host := strings.TrimPrefix(b.URL, "http://")
	_, err := f.o.Register(context.Background(), orchestrator.Endpoint{Name: "multi", Targets: []orchestrator.Target{
		{URL: b.URL + "/a"},
		{URL: "http://[::1]:1/b"},
	}})
	require.NoError(t, err)

	got := decode[orchestrator.RegisteredEndpoint](t, call(f.h, http.MethodPost, "/registry/endpoints/multi/targets/"+host+"/drain", ""), http.StatusOK)
	require.Len(t, got.Targets, 2)
	assert.Equal(t, host, got.Targets[0].ID)
	assert.True(t, got.Targets[0].Drained)
	assert.False(t, got.Targets[1].Drained)
	ovs := f.o.Overrides()
	require.Len(t, ovs, 1)
	assert.Equal(t, orchestrator.OverrideTargetDrained, ovs[0].Kind)

	got = decode[orchestrator.RegisteredEndpoint](t, call(f.h, http.MethodPost, "/registry/endpoints/multi/targets/"+url.PathEscape(host)+"/restore", ""), http.StatusOK)
	assert.False(t, got.Targets[0].Drained)
	assert.Empty(t, f.o.Overrides())

	got = decode[orchestrator.RegisteredEndpoint](t, call(f.h, http.MethodPost, "/registry/endpoints/multi/targets/[::1]:1/drain", ""), http.StatusOK)
	assert.Equal(t, "[::1]:1", got.Targets[1].ID)
	assert.True(t, got.Targets[1].Drained, "an IPv6 host:port id")
	got = decode[orchestrator.RegisteredEndpoint](t, call(f.h, http.MethodPost, "/registry/endpoints/multi/targets/"+url.PathEscape("[::1]:1")+"/restore", ""), http.StatusOK)
	assert.False(t, got.Targets[1].Drained)

	requireProblem(t, call(f.h, http.MethodPost, "/registry/endpoints/multi/targets/nope/drain", ""), http.StatusNotFound, "not-found")
	requireProblem(t, call(f.h, http.MethodPost, "/registry/endpoints/nope/targets/"+host+"/drain", ""), http.StatusNotFound, "not-found")
	// A config-owned endpoint's one target (the url shorthand) can be
	// drained too: an override is not subject to ownership.
	ordersHost := strings.TrimPrefix(f.backend.URL, "http://")
	got = decode[orchestrator.RegisteredEndpoint](t, call(f.h, http.MethodPost, "/registry/endpoints/orders/targets/"+ordersHost+"/drain", ""), http.StatusOK)
	assert.Equal(t, orchestrator.StatusUnhealthy, got.Status)
	assert.Empty(t, got.Targets, "the url shorthand's view lists no targets")
}

// TestRegisterTargetsThroughTheAPI: a JSON endpoint with targets registers,
// and a bad target is named in the problem.
func TestRegisterTargetsThroughTheAPI(t *testing.T) {
	f := newFixture(t)
	body := `{"name":"multi","targets":[{"url":"http://127.0.0.1:1/a","weight":2},{"url":"ftp://127.0.0.1:2"}]}`
	res := call(f.h, http.MethodPost, "/registry/endpoints", body)
	p := requireProblem(t, res, http.StatusBadRequest, "validation-failed")
	assert.Contains(t, p.Errors[0].Field, "targets[1].url")

	body = `{"name":"multi","targets":[{"url":"http://127.0.0.1:1/a","weight":2},{"id":"b","url":"http://127.0.0.1:2"}],"load_balancing":{"policy":"least_requests"}}`
	got := decode[orchestrator.RegisteredEndpoint](t, call(f.h, http.MethodPost, "/registry/endpoints", body), http.StatusCreated)
	require.Len(t, got.Targets, 2)
	assert.Equal(t, "127.0.0.1:1", got.Targets[0].ID)
	assert.Equal(t, 2, got.Targets[0].Weight)
	assert.Equal(t, "b", got.Targets[1].ID)
}

// TestStatusPageShowsTargets: an endpoint with a targets list has a row per
// target under its own, with the target's state.
func TestStatusPageShowsTargets(t *testing.T) {
	f := newFixture(t)
	_, err := f.o.Register(context.Background(), orchestrator.Endpoint{Name: "multi", Targets: []orchestrator.Target{
		{ID: "a", URL: f.backend.URL + "/a", Weight: intp(3)},
		{ID: "b", URL: f.backend.URL + "/b"},
	}})
	require.NoError(t, err)
	require.NoError(t, f.o.DrainTarget("multi", "b"))
	page := statusPage(t, f)
	assertCell(t, requireRow(t, page, "multi"), "upstream", "2 targets")
	rows := regexp.MustCompile(`(?s)<tr class="target" data-endpoint="multi" data-target="([^"]*)">(.*?)</tr>`).FindAllStringSubmatch(page, -1)
	require.Len(t, rows, 2)
	assert.Equal(t, "a", rows[0][1])
	assert.Contains(t, rows[0][2], "weight 3")
	assert.Contains(t, rows[0][2], f.backend.URL+"/a")
	assert.Equal(t, "b", rows[1][1])
	assert.Contains(t, rows[1][2], `st-drained`)
	assert.NotContains(t, page, `data-endpoint="orders" data-target`, "the url shorthand has no target rows")
}

func intp(n int) *int { return &n }
