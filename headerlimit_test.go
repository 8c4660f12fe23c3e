package orchestrator_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/orchestrator-go/orchestrator"
)

// TestMaxHeaderCount: Go's server bounds header bytes, not header lines, so
// without a count ten thousand tiny headers were forwarded. Past the limit
// (100 field lines by default, Host included, as Envoy counts) the gateway
// answers 431 and closes the connection; the backend sees nothing.
func TestMaxHeaderCount(t *testing.T) {
	b := rtNewBackend(t, "b")
	ep := orchestrator.Endpoint{Name: "svc", Version: "v1", URL: b.URL}

	// lines builds n header field lines in all (Host, which the recorder's
	// request carries, is one), half of them repeating one name: a count
	// of distinct names alone would miss those.
	lines := func(n int) http.Header {
		h := http.Header{}
		for i := 0; i < n-1; i++ {
			if i%2 == 0 {
				h.Add("X-Same", "v")
			} else {
				h.Add(fmt.Sprintf("X-H%d", i), "v")
			}
		}
		return h
	}
	for _, tc := range []struct {
		name  string
		opts  []orchestrator.Option
		limit int
	}{
		{"default", nil, orchestrator.DefaultMaxHeaderCount},
		{"option", []orchestrator.Option{orchestrator.WithMaxHeaderCount(10)}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := rtNew(t, append(tc.opts, orchestrator.WithEndpoints(ep))...)
			b.hits.Store(0)
			rec := rtServe(o, http.MethodGet, "/orchestrator/svc/v1/x", lines(tc.limit))
			assert.Equal(t, http.StatusOK, rec.Code, "%d field lines are within the limit", tc.limit)
			assert.EqualValues(t, 1, b.hits.Load())

			rec = rtServe(o, http.MethodGet, "/orchestrator/svc/v1/x", lines(tc.limit+1))
			p := rtCheckProblem(t, rec, http.StatusRequestHeaderFieldsTooLarge, "")
			assert.Equal(t, "urn:orchestrator:problem:too-many-headers", p.Type)
			assert.Contains(t, p.Detail, fmt.Sprintf("%d header field lines", tc.limit+1))
			assert.Equal(t, "close", rec.Header().Get("Connection"))
			assert.EqualValues(t, 1, b.hits.Load(), "the backend must not see a request past the limit")
		})
	}
	t.Run("off", func(t *testing.T) {
		o := rtNew(t, orchestrator.WithMaxHeaderCount(0), orchestrator.WithEndpoints(ep))
		rec := rtServe(o, http.MethodGet, "/orchestrator/svc/v1/x", lines(10_000))
		assert.Equal(t, http.StatusOK, rec.Code)
	})
	_, err := orchestrator.New(orchestrator.WithMaxHeaderCount(-1))
	assert.ErrorContains(t, err, "max header count")
}

// TestMaxHeaderCountOverTheWire sends 10,000 one-byte headers on a real
// connection, as the hostile test did: 431, and the connection is closed.
func TestMaxHeaderCountOverTheWire(t *testing.T) {
	b := rtNewBackend(t, "b")
	o := rtNew(t, orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "svc", URL: b.URL}))
	gw := httptest.NewServer(o)
	t.Cleanup(gw.Close)
	conn, br := rawConn(t, gw.Listener.Addr().String())
	var req strings.Builder
	req.WriteString("GET /orchestrator/svc/x HTTP/1.1\r\nHost: gw\r\n")
	for i := 0; i < 10_000; i++ {
		fmt.Fprintf(&req, "X-%d: a\r\n", i)
	}
	req.WriteString("\r\n")
	go io.WriteString(conn, req.String())
	resp, _ := readResponse(t, br)
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
	assert.True(t, resp.Close)
	assert.EqualValues(t, 0, b.hits.Load())
}
