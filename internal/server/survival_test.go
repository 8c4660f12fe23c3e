package server_test

// Hot reload survival: connections that live across many reloads, and
// rejected files that leave the last good config serving. The helpers
// (startServer, endpointYAML, backend, eventually) are in helpers_test.go,
// the file writers (ConfigFile, ReplaceFile) in internal/testutil.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator/internal/server"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

// survivalBackend serves two long-lived exchanges:
//
//   - /long answers 200 with the first half of its body at once, holds the
//     response until release is closed, then sends the second half;
//   - /ws switches protocols (101) and echoes every byte until the client
//     closes.
type survivalBackend struct {
	*httptest.Server
	entered chan struct{} // one value per /long request holding
	release chan struct{}
	once    sync.Once
}

// letGo releases the held /long response; it may be called more than once.
func (b *survivalBackend) letGo() { b.once.Do(func() { close(b.release) }) }

const (
	survivalFirstHalf  = "first half of the long response\n"
	survivalSecondHalf = "second half, sent after every reload\n"
)

func newSurvivalBackend(t *testing.T) *survivalBackend {
	t.Helper()
	b := &survivalBackend{entered: make(chan struct{}, 1), release: make(chan struct{})}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/long":
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, survivalFirstHalf)
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Errorf("backend flush: %v", err)
				return
			}
			b.entered <- struct{}{}
			select {
			case <-b.release:
			case <-r.Context().Done():
				t.Errorf("the long request was cut while held: %v", context.Cause(r.Context()))
				return
			}
			io.WriteString(w, survivalSecondHalf)
		case "/ws":
			if !strings.EqualFold(r.Header.Get("Upgrade"), "echo") {
				http.Error(w, "want Upgrade: echo", http.StatusBadRequest)
				return
			}
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("backend hijack: %v", err)
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(6 * waitFor))
			if _, err := io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"); err != nil {
				return
			}
			// Echo until the client closes; what brw buffered comes first.
			io.Copy(c, brw)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(b.Close)
	t.Cleanup(b.letGo) // runs before b.Close: cleanups run last-in first-out
	return b
}

// TestSurvivalLongRequestAndUpgradedConnectionOutliveReloads holds a
// response half sent and a switched-protocol connection open through 20
// reloads, each of which rebuilds the very route they went through (its
// timeout changes) and changes another endpoint. After the last reload the
// held response completes with its whole body and the upgraded connection
// still echoes.
func TestSurvivalLongRequestAndUpgradedConnectionOutliveReloads(t *testing.T) {
	const reloads = 20
	long := newSurvivalBackend(t)
	other := backend(t, "other")
	content := func(i int) string {
		return "endpoints:\n" +
			endpointYAML("svc", long.URL, fmt.Sprintf("timeout: %d", 60+i)) +
			endpointYAML("other", fmt.Sprintf("%s/r%d", other.URL, i))
	}
	path := testutil.ConfigFile(t, content(0))
	s := startServer(t, server.Options{ConfigPath: path, Watch: true})
	// Deferred calls run before the cleanups that stop the server, so a
	// failing test does not leave the server draining a held request.
	defer long.letGo()

	// The long request: status, headers and the first half are in.
	ctx, cancel := context.WithTimeout(context.Background(), 6*waitFor)
	defer cancel()
	longClient := &http.Client{Transport: &http.Transport{}}
	defer longClient.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/orchestrator/svc/long", nil)
	require.NoError(t, err)
	resp, err := longClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "long request: got %d; want 200", resp.StatusCode)
	longBody := bufio.NewReader(resp.Body)
	first := make([]byte, len(survivalFirstHalf))
	_, err = io.ReadFull(longBody, first)
	require.NoError(t, err, "reading the first half of the long response")
	require.Equal(t, survivalFirstHalf, string(first))
	select {
	case <-long.entered:
	case <-time.After(waitFor):
		t.Fatal("the long request never reached the backend")
	}

	// The upgraded connection.
	ws, err := net.Dial("tcp", s.addr)
	require.NoError(t, err)
	defer ws.Close()
	require.NoError(t, ws.SetDeadline(time.Now().Add(6*waitFor)))
	_, err = io.WriteString(ws, "GET /orchestrator/svc/ws HTTP/1.1\r\nHost: "+s.addr+"\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	require.NoError(t, err)
	wsr := bufio.NewReader(ws)
	switched, err := http.ReadResponse(wsr, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, switched.StatusCode, "upgrade: got %s; want 101", switched.Status)
	echo := func(msg string) {
		t.Helper()
		_, err := io.WriteString(ws, msg+"\n")
		require.NoError(t, err, "writing %q to the upgraded connection", msg)
		line, err := wsr.ReadString('\n')
		require.NoError(t, err, "reading the echo of %q from the upgraded connection", msg)
		require.Equal(t, msg+"\n", line, "echo: got %q; want %q", line, msg+"\n")
	}
	echo("before any reload")

	for i := 1; i <= reloads; i++ {
		testutil.ReplaceFile(t, path, content(i))
		st := s.waitReloads(int64(i))
		require.Nil(t, st.LastError, "reload %d failed: %v", i, st.LastError)
		// The reload is in force, and the upgraded connection lives on.
		code, body := s.mustGet("/orchestrator/other/x")
		require.Equal(t, fmt.Sprintf("200 other /r%d/x", i), fmt.Sprint(code, " ", body), "after reload %d", i)
		echo(fmt.Sprintf("after reload %d", i))
	}

	long.letGo()
	rest, err := io.ReadAll(longBody)
	require.NoError(t, err, "the long response broke after %d reloads", reloads)
	assert.Equal(t, survivalSecondHalf, string(rest), "rest of the long response: got %q; want %q", rest, survivalSecondHalf)
	echo("after the long request completed")

	// New requests on the route go through the last config.
	code, body := s.mustGet("/orchestrator/svc/unknown")
	assert.Equal(t, http.StatusNotFound, code, "backend answer after the reloads: got %d %q; want its 404", code, body)
}

// TestSurvivalRejectedConfigsKeepTheLastGoodOne writes three broken files
// in turn: YAML that does not parse, an endpoint with a bad URL, and two
// endpoints with one id. Each is rejected with its file:line:column, the
// reload count does not move, and the last good config keeps serving
// unchanged; a good file afterwards is applied.
func TestSurvivalRejectedConfigsKeepTheLastGoodOne(t *testing.T) {
	a, b := backend(t, "a"), backend(t, "b")
	good := "endpoints:\n" + endpointYAML("svc", a.URL)
	path := testutil.ConfigFile(t, good)
	s := startServer(t, server.Options{ConfigPath: path, Watch: true})
	s.waitBody("/orchestrator/svc/x", "a /x")
	start := s.status()
	require.Nil(t, start.LastError)

	// Lines 2-3 are the good endpoint "svc" in every file; line 4 starts
	// the second endpoint, which is what is wrong.
	tests := []struct {
		name    string
		content string
		// want is the whole first line of last_error after the path.
		want string
	}{
		{
			"YAML that does not parse",
			good + "  - name: broken\n    url: [\n",
			":5:10: sequence end token ']' not found",
		},
		{
			"an endpoint with a bad URL",
			good + endpointYAML("bad", "ftp://"+strings.TrimPrefix(b.URL, "http://")),
			fmt.Sprintf(":5:10: endpoints[1].url: %q must use http or https", "ftp://"+strings.TrimPrefix(b.URL, "http://")),
		},
		{
			"an unparsable URL",
			good + endpointYAML("bad", "http://[::1"),
			`:5:10: endpoints[1].url: "http://[::1" is not a valid URL`,
		},
		{
			"two endpoints with one id",
			good + endpointYAML("other", b.URL, "id: svc"),
			`:6:9: endpoints[1].id: duplicate id "svc" (also endpoints[0])`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.ReplaceFile(t, path, tt.content)
			want := path + tt.want
			var got string
			eventually(t, fmt.Sprintf("last_error %q", want), func() bool {
				st := s.status()
				if st.LastError == nil {
					return false
				}
				got, _, _ = strings.Cut(*st.LastError, "\n")
				return got == want
			})
			st := s.status()
			assert.Equal(t, start.ReloadCount, st.ReloadCount, "reload_count: got %d; want %d (unchanged)", st.ReloadCount, start.ReloadCount)
			assert.Equal(t, start.Version, st.Version, "version: got %q; want the last good %q", st.Version, start.Version)
			assert.NotNil(t, st.LastErrorAt, "last_error_at: got nil; want the time of the rejection")
			code, body := s.mustGet("/orchestrator/svc/x")
			assert.Equal(t, "200 a /x", fmt.Sprint(code, " ", body), "the last good config stopped serving")
			for _, p := range []string{"/orchestrator/bad/x", "/orchestrator/broken/x", "/orchestrator/other/x"} {
				code, _ := s.mustGet(p)
				assert.Equal(t, http.StatusNotFound, code, "GET %s: got %d; want 404: nothing of the rejected file applies", p, code)
			}
		})
	}

	t.Run("a good file afterwards is applied", func(t *testing.T) {
		testutil.ReplaceFile(t, path, "endpoints:\n"+endpointYAML("svc", b.URL))
		st := s.waitReloads(start.ReloadCount + 1)
		assert.Nil(t, st.LastError, "last_error: got %v; want nil after a good file", st.LastError)
		code, body := s.mustGet("/orchestrator/svc/x")
		assert.Equal(t, "200 b /x", fmt.Sprint(code, " ", body))
	})
}
