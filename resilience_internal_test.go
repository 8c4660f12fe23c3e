package orchestrator

import (
	"io"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOnCloseRunsOnceAndKeepsAnUpgradedConnectionWritable(t *testing.T) {
	// A plain body: fn runs on the first Close only.
	var calls int
	body := onClose(io.NopCloser(strings.NewReader("x")), func() { calls++ })
	_, isConn := body.(io.ReadWriteCloser)
	assert.False(t, isConn, "a plain body must not claim to be writable")
	require.NoError(t, body.Close())
	require.NoError(t, body.Close())
	assert.Equal(t, 1, calls)

	// An upgraded connection (what httputil finds in a 101's body) stays an
	// io.ReadWriteCloser, or httputil refuses the upgrade.
	client, server := net.Pipe()
	defer server.Close()
	calls = 0
	wrapped := onClose(client, func() { calls++ })
	conn, isConn := wrapped.(io.ReadWriteCloser)
	require.True(t, isConn, "an upgraded connection must stay writable")
	go io.WriteString(conn, "ping")
	buf := make([]byte, 4)
	_, err := io.ReadFull(server, buf)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(buf))
	conn.Close()
	conn.Close()
	assert.Equal(t, 1, calls)
}
