package admin_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/admin"
)

// The admin API takes the token and the logger from the gateway, so that a
// host configures them once: the gateway's token is required (and is the
// one the gateway keeps from backends), and admin lines go to the
// gateway's logger under its component key.
func TestAdminReadsTokenAndLoggerFromTheGateway(t *testing.T) {
	var logs bytes.Buffer
	o, err := orchestrator.New(
		orchestrator.WithAdminToken("gateway-secret"),
		orchestrator.WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		orchestrator.WithLoggerKey("component"),
	)
	require.NoError(t, err)
	t.Cleanup(func() { o.Close() })
	h := admin.New(o, admin.Options{})

	requireProblem(t, call(h, http.MethodGet, "/registry/endpoints", "", remote("192.0.2.1:4000")), http.StatusUnauthorized, "unauthorized")
	rec := call(h, http.MethodGet, "/registry/endpoints", "", remote("192.0.2.1:4000"), bearer("gateway-secret"))
	assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Contains(t, logs.String(), `"component":"orchestrator.admin"`)
	assert.NotContains(t, logs.String(), `"logger":"orchestrator.admin"`)
	assert.False(t, strings.Contains(logs.String(), "gateway-secret"), "the token was logged")
}
