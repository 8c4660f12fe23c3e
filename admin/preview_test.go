package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

// POST /config/validate previews what applying the config would do.
func TestConfigValidatePreviewsTheChange(t *testing.T) {
	f := newFixture(t)
	b := f.backend.URL
	body := fmt.Sprintf(`server:
  port: 9999
admin:
  token: %s
endpoints:
  - name: users
    version: v1
    url: %s/api
    health_check_path: /health
    timeout: 5s
  - name: orders
    targets:
      - url: %s/orders
      - url: http://127.0.0.1:1/orders
  - name: fresh
    url: %s/fresh
`, testToken, b, b, b)

	rec := call(f.h, http.MethodPost, "/config/validate", body, contentType("application/yaml"))
	got := decode[validateAnswer](t, rec, http.StatusOK)

	t.Run("endpoints added, removed and changed, field by field", func(t *testing.T) {
		assert.Equal(t, []string{"fresh"}, plannedIDs(got.Plan.Added))
		assert.Equal(t, []string{"legacy"}, plannedIDs(got.Plan.Removed))
		require.Len(t, got.Plan.Changed, 2)
		users := got.Plan.Changed[0]
		assert.Equal(t, "users_v1", users.ID)
		assert.Equal(t, []orchestrator.FieldChange{{Field: "timeout", Old: nil, New: float64(5)}}, users.Fields)
		orders := got.Plan.Changed[1]
		assert.Equal(t, "orders", orders.ID)
		assert.Equal(t, []orchestrator.PlannedTarget{{ID: "127.0.0.1:1", URL: "http://127.0.0.1:1/orders"}}, orders.TargetsAdded)
	})
	t.Run("settings a reload does not apply are listed for a restart, the token never echoed", func(t *testing.T) {
		assert.Equal(t, []orchestrator.FieldChange{{Field: "server.port", Old: nil, New: float64(9999)}}, got.RestartRequired)
		assert.NotContains(t, rec.Body.String(), testToken)
	})
	t.Run("nothing is applied", func(t *testing.T) {
		_, err := f.o.Endpoint("fresh")
		assert.ErrorIs(t, err, orchestrator.ErrNotFound)
		_, err = f.o.Endpoint("legacy")
		assert.NoError(t, err)
	})
	t.Run("a config whose id the admin API owns is refused as a reload would be", func(t *testing.T) {
		_, err := f.o.Register(context.Background(), orchestrator.Endpoint{Name: "byapi", URL: b + "/x"})
		require.NoError(t, err)
		rec := call(f.h, http.MethodPost, "/config/validate", "endpoints:\n  - name: byapi\n    url: "+b+"/y\n", contentType("application/yaml"))
		p := requireProblem(t, rec, http.StatusBadRequest, "invalid-config")
		require.Len(t, p.Errors, 1)
		assert.Equal(t, "endpoints[0].id", p.Errors[0].Field)
	})
}
