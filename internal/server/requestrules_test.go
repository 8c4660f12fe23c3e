package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator/internal/server"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

// TestAdminRoutesKeepTheRequestRules: the admin API shares the main
// listener, so a request smuggled behind an admin request would reach the
// gateway's routes. The framing and header-count rules of the gateway hold
// for admin paths too.
func TestAdminRoutesKeepTheRequestRules(t *testing.T) {
	var hits atomic.Int64
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(b.Close)
	path := testutil.ConfigFile(t, fmt.Sprintf("server:\n  max_header_count: 20\nendpoints:\n  - name: svc\n    url: %s\n", b.URL))
	s := startServer(t, server.Options{ConfigPath: path})

	roundTrip := func(t *testing.T, raw string) (*http.Response, *bufio.Reader) {
		conn, err := net.Dial("tcp", s.addr)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		conn.SetDeadline(time.Now().Add(waitFor))
		go io.WriteString(conn, raw)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, br
	}

	t.Run("an HTTP/1.0 body behind an admin request closes the connection", func(t *testing.T) {
		resp, br := roundTrip(t, "POST /config/validate HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n"+
			"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"+
			"GET /orchestrator/svc/smuggled HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n")
		assert.True(t, resp.Close, "status %d, Connection: %q", resp.StatusCode, resp.Header.Get("Connection"))
		_, err := http.ReadResponse(br, nil)
		assert.Error(t, err, "a second request was served on the connection")
		assert.EqualValues(t, 0, hits.Load(), "the smuggled request reached the backend")
	})
	t.Run("too many header lines on an admin path get 431", func(t *testing.T) {
		resp, _ := roundTrip(t, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"+strings.Repeat("X-A: 1\r\n", 20)+"\r\n")
		assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
		assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
		assert.True(t, resp.Close)
		resp, _ = roundTrip(t, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"+strings.Repeat("X-A: 1\r\n", 19)+"\r\n")
		assert.Equal(t, http.StatusOK, resp.StatusCode, "20 lines, Host included, are within the limit")
	})
	t.Run("the gateway takes server.max_header_count from the file", func(t *testing.T) {
		resp, _ := roundTrip(t, "GET /orchestrator/svc/x HTTP/1.1\r\nHost: 127.0.0.1\r\n"+strings.Repeat("X-A: 1\r\n", 20)+"\r\n")
		assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
		assert.EqualValues(t, 0, hits.Load())
	})
}
