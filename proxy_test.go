package orchestrator_test

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An event stream is flushed event by event even when the upstream gave it
// a Content-Length, however the media type is spelled.
func TestProxyFlushesEventStreamOfKnownLength(t *testing.T) {
	const first, second = "data: one\n\n", "data: two\n\n"
	firstRead, release := pxOnce()
	t.Cleanup(release)
	backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "Text/Event-Stream ; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(first)+len(second)))
		io.WriteString(w, first)
		w.(http.Flusher).Flush()
		select {
		case <-firstRead:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, second)
	})
	gw := pxGateway(t, pxEndpoint(backend.URL))

	resp, err := gw.Client().Do(pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/events", nil))
	require.NoError(t, err)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	got := make([]byte, len(first))
	_, err = io.ReadFull(br, got)
	require.NoError(t, err, "the first event must arrive before the upstream sends the second")
	assert.Equal(t, first, string(got))
	release()
	rest, err := io.ReadAll(br)
	require.NoError(t, err)
	assert.Equal(t, second, string(rest))
}

// A 101 Switching Protocols to a request that asked for no upgrade is a bad
// upstream response: 502, and nothing of it reaches the client.
func TestProxyUnrequestedSwitchingProtocolsIs502(t *testing.T) {
	upstream := pxRawBackend(t, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	gw := pxGateway(t, pxEndpoint(upstream))

	resp, body := pxDo(t, gw.Client(), pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/x", nil))
	p := pxDecodeProblem(t, resp, body, http.StatusBadGateway)
	assert.Contains(t, p.Type, "upstream-unreachable")
	assert.Empty(t, resp.Header.Get("Upgrade"), "the upstream's Upgrade header must not reach the client")
}

// A response header set before the gateway runs (by a middleware) keeps its
// value, and the upstream's values for the same field are added after it,
// as http.Header.Add would.
func TestProxyMergesResponseHeadersSetBeforeIt(t *testing.T) {
	backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "Accept-Encoding")
		w.Header().Set("X-Upstream", "yes")
		io.WriteString(w, "ok")
	})
	gateway := pxNew(t, pxEndpoint(backend.URL))
	withVary := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "Origin")
		gateway.ServeHTTP(w, r)
	})
	gw := httptest.NewServer(withVary)
	t.Cleanup(gw.Close)

	resp, body := pxDo(t, gw.Client(), pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/x", nil))
	require.Equal(t, http.StatusOK, resp.StatusCode, "body %s", body)
	assert.Equal(t, []string{"Origin", "Accept-Encoding"}, resp.Header.Values("Vary"))
	assert.Equal(t, "yes", resp.Header.Get("X-Upstream"))
}

// Headers named by the client's Connection header are hop-by-hop whatever
// their case, and never reach the upstream; other headers do.
func TestProxyDropsHeadersNamedByConnectionInAnyCase(t *testing.T) {
	got := make(chan http.Header, 1)
	backend := pxBackend(t, func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	})
	gw := pxGateway(t, pxEndpoint(backend.URL))

	req := pxRequest(t, http.MethodGet, gw.URL+"/orchestrator/users/v1/x", nil)
	req.Header.Set("Connection", "x-HOP-only, keep-alive")
	req.Header.Set("X-Hop-Only", "secret")
	req.Header.Set("X-End-To-End", "kept")
	resp, _ := pxDo(t, gw.Client(), req)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	h := <-got
	assert.Empty(t, h.Values("X-Hop-Only"), "a header the client's Connection names must not be forwarded")
	assert.Equal(t, "kept", h.Get("X-End-To-End"))
	assert.Empty(t, h.Values("Connection"))
}
