package admin_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// A write to a gateway that is shutting down answers 503 gateway-closed, as
// the gateway's own requests do then, not 500: another instance may take
// it.
func TestWriteToAClosedGatewayAnswers503(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.o.Close())
	rec := call(f.h, http.MethodPost, "/registry/endpoints", `{"name":"late","url":"http://127.0.0.1:1"}`)
	requireProblem(t, rec, http.StatusServiceUnavailable, "gateway-closed")
}
