package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

// validate --diff asks the running gateway what applying a file would do.
func TestValidateDiff(t *testing.T) {
	clearEnv(t)
	const token = "diff-test-token"
	t.Setenv("ORCHESTRATOR_ADMIN_TOKEN", token) // the server's and the client's
	running := testutil.ConfigFile(t, `circuit_breaker:
  failure_threshold: 5
endpoints:
  - name: users
    version: v1
    url: http://127.0.0.1:9001/api
    timeout: 30
  - name: search
    targets:
      - {id: a, url: "http://127.0.0.1:9101"}
      - {id: b, url: "http://127.0.0.1:9102"}
  - name: old
    url: http://127.0.0.1:9003
`)
	s := serve(t, "--config", running, "--watch=false", "--host", "127.0.0.1", "--port", "0")
	admin := "http://127.0.0.1:" + s.port

	next := testutil.ConfigFile(t, `server:
  port: 9999
circuit_breaker:
  failure_threshold: 3
endpoints:
  - name: users
    version: v1
    url: http://127.0.0.1:9001/api
    timeout: 10
  - name: search
    targets:
      - {id: a, url: "http://127.0.0.1:9101", weight: 3}
      - {id: c, url: "http://127.0.0.1:9103"}
  - name: fresh
    url: http://127.0.0.1:9006
`)

	t.Run("prints the plan and exits 0", func(t *testing.T) {
		code, stdout, stderr := runSync("validate", "--diff", admin, next)
		require.Equal(t, 0, code, "stderr: %s", stderr)
		assert.Equal(t, next+`: ok
+ endpoint fresh (/orchestrator/fresh)
    + target 127.0.0.1:9006 http://127.0.0.1:9006
- endpoint old (/orchestrator/old)
~ endpoint users_v1
    ~ timeout: 30 -> 10
~ endpoint search
    + target c http://127.0.0.1:9103
    - target b http://127.0.0.1:9102
    ~ target a
        + weight: 3
~ global defaults (every endpoint's breaker and health state start afresh)
    ~ circuit_breaker.failure_threshold: 5 -> 3
! takes effect only at restart (a reload does not apply it)
    + server.port: 9999
Plan: 1 to add, 2 to change, 1 to remove; 0 unchanged.
`, stdout)
		assert.Empty(t, stderr)
	})

	t.Run("the running file against itself plans nothing", func(t *testing.T) {
		code, stdout, _ := runSync("validate", "--diff", admin, running)
		require.Equal(t, 0, code)
		assert.Contains(t, stdout, "No changes: the running gateway already serves this config (3 endpoints).\n")
	})

	t.Run("a file invalid on its own exits 1 without asking", func(t *testing.T) {
		bad := testutil.ConfigFile(t, "endpoints:\n  - name: a\n    url: ftp://x\n")
		code, stdout, stderr := runSync("validate", "--diff", "http://127.0.0.1:1", bad)
		assert.Equal(t, 1, code)
		assert.Empty(t, stdout)
		assert.Contains(t, stderr, bad+":3:10: endpoints[0].url")
	})

	t.Run("a wrong token is a clear error, exit 2", func(t *testing.T) {
		t.Setenv("ORCHESTRATOR_ADMIN_TOKEN", "wrong")
		code, _, stderr := runSync("validate", "--diff", admin, next)
		assert.Equal(t, 2, code)
		assert.Contains(t, stderr, "401")
	})

	t.Run("a gateway that is not there exits 2 saying so", func(t *testing.T) {
		closed := testutil.RefusedURL(t)
		code, _, stderr := runSync("validate", "--diff", closed, next)
		assert.Equal(t, 2, code)
		assert.Contains(t, stderr, "cannot reach the gateway at "+closed)
	})

	t.Run("--diff without a path is a usage error", func(t *testing.T) {
		code, _, stderr := runSync("validate", "--diff", admin)
		assert.Equal(t, 2, code)
		assert.Contains(t, stderr, "usage: orchestratord validate [--diff ADMIN_URL] PATH")
	})
}
