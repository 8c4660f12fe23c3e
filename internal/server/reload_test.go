package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/internal/server"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

func TestHotReload(t *testing.T) {
	t.Run("an editor's rename-write is applied", func(t *testing.T) {
		a, b := backend(t, "a"), backend(t, "b")
		path := testutil.ConfigFile(t, "endpoints:\n"+endpointYAML("svc", a.URL))
		s := startServer(t, server.Options{ConfigPath: path, Watch: true})
		s.waitBody("/orchestrator/svc/x", "a /x")
		before := s.status()

		testutil.ReplaceFile(t, path, "endpoints:\n"+endpointYAML("svc", b.URL)+endpointYAML("added", b.URL))
		st := s.waitReloads(1)
		assert.NotEqual(t, before.Version, st.Version, "got the same version; want the new content's")
		assert.Nil(t, st.LastError)
		code, body := s.mustGet("/orchestrator/svc/x")
		assert.Equal(t, "200 b /x", fmt.Sprint(code, " ", body))
		code, body = s.mustGet("/orchestrator/added/y")
		assert.Equal(t, "200 b /y", fmt.Sprint(code, " ", body))
	})
	t.Run("an in-place write is applied", func(t *testing.T) {
		a, b := backend(t, "a"), backend(t, "b")
		path := testutil.ConfigFile(t, "endpoints:\n"+endpointYAML("svc", a.URL))
		s := startServer(t, server.Options{ConfigPath: path, Watch: true})
		require.NoError(t, os.WriteFile(path, []byte("endpoints:\n"+endpointYAML("svc", b.URL)), 0o600))
		s.waitReloads(1)
		code, body := s.mustGet("/orchestrator/svc/x")
		assert.Equal(t, "200 b /x", fmt.Sprint(code, " ", body))
	})
	t.Run("a removed endpoint stops being routed", func(t *testing.T) {
		a := backend(t, "a")
		path := testutil.ConfigFile(t, "endpoints:\n"+endpointYAML("keep", a.URL)+endpointYAML("drop", a.URL))
		s := startServer(t, server.Options{ConfigPath: path, Watch: true})
		s.waitBody("/orchestrator/drop/x", "a /x")
		testutil.ReplaceFile(t, path, "endpoints:\n"+endpointYAML("keep", a.URL))
		s.waitReloads(1)
		code, _ := s.mustGet("/orchestrator/drop/x")
		assert.Equal(t, http.StatusNotFound, code)
		code, _ = s.mustGet("/orchestrator/keep/x")
		assert.Equal(t, http.StatusOK, code)
	})
	t.Run("global sections are applied too", func(t *testing.T) {
		failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
		}))
		defer failing.Close()
		path := testutil.ConfigFile(t, "endpoints:\n"+endpointYAML("svc", failing.URL))
		s := startServer(t, server.Options{ConfigPath: path, Watch: true})
		breaker := func() string {
			code, body := s.mustGet("/circuit-breaker/endpoints/svc")
			require.Equal(t, http.StatusOK, code, body)
			var b struct {
				State string `json:"state"`
			}
			require.NoError(t, json.Unmarshal([]byte(body), &b))
			return b.State
		}
		code, _ := s.mustGet("/orchestrator/svc/x")
		require.Equal(t, http.StatusInternalServerError, code)
		require.Equal(t, "closed", breaker(), "got the breaker open after one failure; want the default threshold of 5")

		testutil.ReplaceFile(t, path, "circuit_breaker:\n  failure_threshold: 1\nendpoints:\n"+endpointYAML("svc", failing.URL))
		s.waitReloads(1)
		code, _ = s.mustGet("/orchestrator/svc/x")
		require.Equal(t, http.StatusInternalServerError, code)
		assert.Equal(t, "open", breaker(), "got the breaker closed after one failure; want the reloaded threshold of 1")
	})
	t.Run("a burst of writes is debounced into fewer reloads ending on the last content", func(t *testing.T) {
		a := backend(t, "a")
		path := testutil.ConfigFile(t, "endpoints:\n"+endpointYAML("svc", a.URL))
		s := startServer(t, server.Options{ConfigPath: path, Watch: true})
		const writes = 10
		for i := 1; i <= writes; i++ {
			require.NoError(t, os.WriteFile(path, []byte("endpoints:\n"+endpointYAML("svc", fmt.Sprintf("%s/v%d", a.URL, i))), 0o600))
		}
		s.waitBody("/orchestrator/svc/x", fmt.Sprintf("a /v%d/x", writes))
		st := s.status()
		assert.Less(t, st.ReloadCount, int64(writes), "got %d reloads for %d quick writes; want them debounced", st.ReloadCount, writes)
		assert.Positive(t, st.ReloadCount)
	})
}

// k8sConfigMap builds the layout Kubernetes gives a mounted ConfigMap:
//
//	dir/..2026_a/config.yaml
//	dir/..data -> ..2026_a
//	dir/config.yaml -> ..data/config.yaml
//
// and returns dir and a function that publishes new content the way the
// kubelet does: a new timestamped directory, a "..data_tmp" symlink to it
// renamed atomically over "..data", then the old directory removed.
func k8sConfigMap(t *testing.T, content string) (path string, publish func(content string)) {
	t.Helper()
	dir := t.TempDir()
	gen := 0
	current := ""
	write := func(content string) {
		gen++
		name := fmt.Sprintf("..2026_%02d", gen)
		require.NoError(t, os.Mkdir(filepath.Join(dir, name), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name, "config.yaml"), []byte(content), 0o644))
		tmp := filepath.Join(dir, "..data_tmp")
		require.NoError(t, os.Symlink(name, tmp))
		require.NoError(t, os.Rename(tmp, filepath.Join(dir, "..data")))
		if current != "" {
			require.NoError(t, os.RemoveAll(filepath.Join(dir, current)))
		}
		current = name
	}
	write(content)
	path = filepath.Join(dir, "config.yaml")
	require.NoError(t, os.Symlink(filepath.Join("..data", "config.yaml"), path))
	return path, write
}

func TestHotReloadKubernetesConfigMap(t *testing.T) {
	a, b, c := backend(t, "a"), backend(t, "b"), backend(t, "c")
	path, publish := k8sConfigMap(t, "endpoints:\n"+endpointYAML("svc", a.URL))
	s := startServer(t, server.Options{ConfigPath: path, Watch: true})

	t.Run("the first config is served through the symlinks", func(t *testing.T) {
		code, body := s.mustGet("/orchestrator/svc/x")
		assert.Equal(t, "200 a /x", fmt.Sprint(code, " ", body))
	})
	t.Run("a ..data symlink swap is applied", func(t *testing.T) {
		publish("endpoints:\n" + endpointYAML("svc", b.URL))
		s.waitReloads(1)
		code, body := s.mustGet("/orchestrator/svc/x")
		assert.Equal(t, "200 b /x", fmt.Sprint(code, " ", body))
	})
	t.Run("a second swap, after the first directory is gone, is applied", func(t *testing.T) {
		publish("endpoints:\n" + endpointYAML("svc", c.URL))
		s.waitReloads(2)
		code, body := s.mustGet("/orchestrator/svc/x")
		assert.Equal(t, "200 c /x", fmt.Sprint(code, " ", body))
		assert.True(t, s.status().Watching, "got watching false; want the watch alive")
	})
}

func TestInvalidConfigChangesNothing(t *testing.T) {
	a, b := backend(t, "a"), backend(t, "b")
	path := testutil.ConfigFile(t, "endpoints:\n"+endpointYAML("svc", a.URL))
	s := startServer(t, server.Options{ConfigPath: path, Watch: true})
	good := s.status()

	t.Run("an invalid file keeps the last good config serving and shows the located error", func(t *testing.T) {
		testutil.ReplaceFile(t, path, "endpoints:\n"+endpointYAML("svc", b.URL)+"    timout: 3\n"+endpointYAML("other", "ftp://x"))
		st := s.waitError()
		assert.Equal(t, good.Version, st.Version, "got a new version; want the last good one kept")
		assert.Zero(t, st.ReloadCount)
		assert.NotNil(t, st.LastErrorAt)
		assert.Contains(t, *st.LastError, path+`:4:5: endpoints[0].timout: unknown field "timout"`)
		code, body := s.mustGet("/orchestrator/svc/x")
		assert.Equal(t, "200 a /x", fmt.Sprint(code, " ", body), "got the invalid file's upstream; want the last good one")
		code, _ = s.mustGet("/orchestrator/other/x")
		assert.Equal(t, http.StatusNotFound, code)
		assert.Contains(t, s.stderr.String(), "config rejected")
	})
	t.Run("a file with only semantic errors changes nothing either", func(t *testing.T) {
		testutil.ReplaceFile(t, path, "endpoints:\n"+endpointYAML("svc", b.URL)+endpointYAML("svc", b.URL))
		eventually(t, "the duplicate-route error in /config/status", func() bool {
			st := s.status()
			return st.LastError != nil && strings.Contains(*st.LastError, "already served")
		})
		code, body := s.mustGet("/orchestrator/svc/x")
		assert.Equal(t, "200 a /x", fmt.Sprint(code, " ", body))
	})
	t.Run("POST /config/reload answers 400 listing the errors", func(t *testing.T) {
		code, body := s.do(http.MethodPost, "/config/reload", "")
		assert.Equal(t, http.StatusBadRequest, code, body)
		assert.Contains(t, body, "already served")
	})
	t.Run("fixing the file applies it and clears the error", func(t *testing.T) {
		testutil.ReplaceFile(t, path, "endpoints:\n"+endpointYAML("svc", b.URL))
		st := s.waitReloads(1)
		assert.Nil(t, st.LastError)
		assert.Nil(t, st.LastErrorAt)
		code, body := s.mustGet("/orchestrator/svc/x")
		assert.Equal(t, "200 b /x", fmt.Sprint(code, " ", body))
	})
	t.Run("a deleted file changes nothing and is reported", func(t *testing.T) {
		require.NoError(t, os.Remove(path))
		st := s.waitError()
		assert.Contains(t, *st.LastError, "config.yaml")
		code, body := s.mustGet("/orchestrator/svc/x")
		assert.Equal(t, "200 b /x", fmt.Sprint(code, " ", body))
	})
}

func TestReloadWithoutWatching(t *testing.T) {
	a, b, c := backend(t, "a"), backend(t, "b"), backend(t, "c")
	path := testutil.ConfigFile(t, "endpoints:\n"+endpointYAML("svc", a.URL))
	s := startServer(t, server.Options{ConfigPath: path, Watch: false})

	t.Run("config status says the file is not watched", func(t *testing.T) {
		assert.False(t, s.status().Watching)
		assert.Contains(t, s.stdout.String(), "(watching: false)")
	})
	t.Run("POST /config/reload applies the changed file", func(t *testing.T) {
		testutil.ReplaceFile(t, path, "endpoints:\n"+endpointYAML("svc", b.URL))
		code, body := s.do(http.MethodPost, "/config/reload", "")
		require.Equal(t, http.StatusOK, code, body)
		assert.Contains(t, body, `"reload_count":1`)
		code, body = s.mustGet("/orchestrator/svc/x")
		assert.Equal(t, "200 b /x", fmt.Sprint(code, " ", body))
	})
	t.Run("POST /registry/sync re-applies the file", func(t *testing.T) {
		testutil.ReplaceFile(t, path, "endpoints:\n"+endpointYAML("svc", c.URL))
		code, body := s.do(http.MethodPost, "/registry/sync", "")
		require.Equal(t, http.StatusOK, code, body)
		assert.Contains(t, body, `"count":1`)
		code, body = s.mustGet("/orchestrator/svc/x")
		assert.Equal(t, "200 c /x", fmt.Sprint(code, " ", body))
		assert.EqualValues(t, 2, s.status().ReloadCount)
	})
}

func TestAPIEndpointsSurviveReloads(t *testing.T) {
	a, b, api := backend(t, "a"), backend(t, "b"), backend(t, "api")
	path := testutil.ConfigFile(t, "endpoints:\n"+endpointYAML("svc", a.URL))
	s := startServer(t, server.Options{ConfigPath: path, Watch: true})

	code, body := s.do(http.MethodPost, "/registry/endpoints", fmt.Sprintf(`{"name":"dyn","url":%q}`, api.URL))
	require.Equal(t, http.StatusCreated, code, body)

	t.Run("a reload of the file keeps the API endpoint", func(t *testing.T) {
		testutil.ReplaceFile(t, path, "endpoints:\n"+endpointYAML("svc", b.URL))
		s.waitReloads(1)
		code, body := s.mustGet("/orchestrator/dyn/x")
		assert.Equal(t, "200 api /x", fmt.Sprint(code, " ", body))
		code, body = s.mustGet("/orchestrator/svc/x")
		assert.Equal(t, "200 b /x", fmt.Sprint(code, " ", body))
	})
	t.Run("a sync keeps the API endpoint", func(t *testing.T) {
		code, body := s.do(http.MethodPost, "/registry/sync", "")
		require.Equal(t, http.StatusOK, code, body)
		code, body = s.mustGet("/orchestrator/dyn/x")
		assert.Equal(t, "200 api /x", fmt.Sprint(code, " ", body))
	})
	t.Run("config endpoints cannot be changed through the API", func(t *testing.T) {
		code, body := s.do(http.MethodDelete, "/registry/endpoints/svc", "")
		assert.Equal(t, http.StatusConflict, code, body)
	})
	t.Run("a file that takes the API endpoint's route is refused and changes nothing", func(t *testing.T) {
		testutil.ReplaceFile(t, path, "endpoints:\n"+endpointYAML("svc", a.URL)+endpointYAML("dyn", a.URL))
		st := s.waitError()
		assert.Contains(t, *st.LastError, "dyn")
		code, body := s.mustGet("/orchestrator/svc/x")
		assert.Equal(t, "200 b /x", fmt.Sprint(code, " ", body))
		code, body = s.mustGet("/orchestrator/dyn/x")
		assert.Equal(t, "200 api /x", fmt.Sprint(code, " ", body))
	})
}

// TestReloadsUnderLoad rewrites the file 20 times while clients send
// requests without pause to an endpoint that stays in the file: not one
// request may fail.
func TestReloadsUnderLoad(t *testing.T) {
	stable, other := backend(t, "stable"), backend(t, "other")
	content := func(i int) string {
		// Even rounds change a field of the stable endpoint (its route is
		// rebuilt), odd rounds change another endpoint.
		return "endpoints:\n" +
			endpointYAML("stable", stable.URL, fmt.Sprintf("timeout: %d", 30+i/2)) +
			endpointYAML("other", fmt.Sprintf("%s/r%d", other.URL, (i+1)/2))
	}
	path := testutil.ConfigFile(t, content(0))
	s := startServer(t, server.Options{ConfigPath: path, Watch: true})

	l := startLoad(t, 4, s.base+"/orchestrator/stable/ping", func(status int, body string) bool {
		return status == http.StatusOK && body == "stable /ping"
	})

	const reloads = 20
	for i := 1; i <= reloads; i++ {
		testutil.ReplaceFile(t, path, content(i))
		st := s.waitReloads(int64(i))
		require.Nil(t, st.LastError, "reload %d failed: %v", i, st.LastError)
		// Requests keep flowing across every reload.
		l.servedMore(t, fmt.Sprintf("requests served after reload %d", i))
	}
	code, body := s.mustGet("/orchestrator/other/x")
	assert.Equal(t, fmt.Sprintf("200 other /r%d/x", (reloads+1)/2), fmt.Sprint(code, " ", body), "got the wrong final config")

	l.stop()
	assert.Zero(t, l.failed.Load(), "got %d failed requests (first: %v) out of %d; want none", l.failed.Load(), l.firstErr.Load(), l.ok.Load()+l.failed.Load())
	assert.Greater(t, l.ok.Load(), int64(reloads), "got %d successful requests; want traffic throughout", l.ok.Load())
}

// TestReloadNeverCutsARequestInFlight holds a request open in the upstream
// while a reload changes and another removes its endpoint: it completes.
func TestReloadNeverCutsARequestInFlight(t *testing.T) {
	entered := make(chan struct{}, 2)
	release := make(chan struct{})
	held := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "held done")
	}))
	defer held.Close()
	b := backend(t, "b")
	path := testutil.ConfigFile(t, "endpoints:\n"+endpointYAML("svc", held.URL)+endpointYAML("gone", held.URL))
	s := startServer(t, server.Options{ConfigPath: path, Watch: true})

	type result struct {
		code int
		body string
		err  error
	}
	results := make(chan result, 2)
	for _, p := range []string{"/orchestrator/svc/x", "/orchestrator/gone/x"} {
		go func() {
			code, body, err := s.get(p)
			results <- result{code, body, err}
		}()
	}
	for range 2 {
		select {
		case <-entered:
		case <-time.After(waitFor):
			t.Fatal("the requests never reached the upstream")
		}
	}

	testutil.ReplaceFile(t, path, "endpoints:\n"+endpointYAML("svc", b.URL, "timeout: 5"))
	s.waitReloads(1)
	code, body := s.mustGet("/orchestrator/svc/x")
	require.Equal(t, "200 b /x", fmt.Sprint(code, " ", body), "got the old upstream after the reload")
	close(release)
	for range 2 {
		select {
		case r := <-results:
			require.NoError(t, r.err)
			assert.Equal(t, "200 held done", fmt.Sprint(r.code, " ", r.body), "got a request in flight cut by the reload")
		case <-time.After(waitFor):
			t.Fatal("a request in flight never completed")
		}
	}
}

// TestStartingOnABrokenFileFails: a bad file at start is fatal, watched or
// not, with every problem as file:line:column: message, so a bad deploy
// fails its start instead of passing readiness and answering 404.
func TestStartingOnABrokenFileFails(t *testing.T) {
	path := testutil.ConfigFile(t, "server:\n  prefix: /gw\nendpoints:\n  - name: svc\n    url: ftp://nowhere\n  - name: \"\"\n    url: http://127.0.0.1:1\n")
	for _, watch := range []bool{true, false} {
		err := server.Run(context.Background(), server.Options{ConfigPath: path, Watch: watch, Port: "0", Stdout: io.Discard, Stderr: io.Discard})
		require.Error(t, err, "watch=%v", watch)
		assert.ErrorIs(t, err, orchestrator.ErrInvalid)
		lines := strings.Split(err.Error(), "\n")
		require.Len(t, lines, 2, "every problem, a line each: %s", err)
		assert.True(t, strings.HasPrefix(lines[0], path+":5:10: endpoints[0].url: "), "got %q", lines[0])
		assert.True(t, strings.HasPrefix(lines[1], path+":6:11: endpoints[1].name: "), "got %q", lines[1])
	}
	syntax := testutil.ConfigFile(t, "endpoints:\n  - name: svc\n    url: [\n")
	err := server.Run(context.Background(), server.Options{ConfigPath: syntax, Watch: true, Port: "0", Stdout: io.Discard, Stderr: io.Discard})
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), syntax+":"), "got %q; want it located in %s", err, syntax)
}

// TestTruncatedFileKeepsEndpoints: a tool that truncates the file and then
// writes it (a shell's ">") leaves it empty for a moment. An empty file,
// one of only comments or "---", and "endpoints:" with nothing after it
// are errors, so the last good config keeps serving whatever the moment
// the watcher reads; "endpoints: []" written on purpose still applies.
func TestTruncatedFileKeepsEndpoints(t *testing.T) {
	a := backend(t, "a")
	good := "endpoints:\n" + endpointYAML("svc", a.URL)
	path := testutil.ConfigFile(t, good)
	s := startServer(t, server.Options{ConfigPath: path, Watch: true})
	var reloads int64
	for _, content := range []string{"", "# being rewritten\n", "---\n", "endpoints: ~\n", "endpoints:\n"} {
		t.Run(fmt.Sprintf("%q", content), func(t *testing.T) {
			require.NoError(t, os.WriteFile(path, []byte(content), 0o600)) // truncate in place, as ">" does
			st := s.waitError()
			assert.Equal(t, reloads, st.ReloadCount, "the broken file was applied")
			code, body := s.mustGet("/orchestrator/svc/x")
			assert.Equal(t, "200 a /x", fmt.Sprint(code, " ", body))
			require.NoError(t, os.WriteFile(path, []byte(good), 0o600))
			reloads++
			st = s.waitReloads(reloads)
			assert.Nil(t, st.LastError, "the good file clears the error")
		})
	}
	t.Run("endpoints: [] applies", func(t *testing.T) {
		testutil.ReplaceFile(t, path, "endpoints: []\n")
		s.waitReloads(reloads + 1)
		code, _ := s.mustGet("/orchestrator/svc/x")
		assert.Equal(t, http.StatusNotFound, code)
	})
}

// TestRestoredFileClearsLastError: a file deleted and then restored with
// the content that is being served reads back good, so /config/status
// stops showing the deletion's error (its hash was unchanged, so it used
// to stay).
func TestRestoredFileClearsLastError(t *testing.T) {
	a := backend(t, "a")
	content := "endpoints:\n" + endpointYAML("svc", a.URL)
	path := testutil.ConfigFile(t, content)
	s := startServer(t, server.Options{ConfigPath: path, Watch: true})
	require.NoError(t, os.Remove(path))
	st := s.waitError()
	assert.Contains(t, *st.LastError, "config.yaml")
	testutil.ReplaceFile(t, path, content)
	eventually(t, "last_error cleared once the file reads back good", func() bool {
		return s.status().LastError == nil
	})
	st = s.status()
	assert.Nil(t, st.LastErrorAt)
	assert.Zero(t, st.ReloadCount, "the same content is not applied again")
	code, body := s.mustGet("/orchestrator/svc/x")
	assert.Equal(t, "200 a /x", fmt.Sprint(code, " ", body))
}

// TestOversizedConfigFileIsRefused: server.max_config_bytes caps what a
// reload reads; a larger file is refused before it is parsed and the last
// good config keeps serving.
func TestOversizedConfigFileIsRefused(t *testing.T) {
	a := backend(t, "a")
	content := "server:\n  max_config_bytes: 4096\nendpoints:\n" + endpointYAML("svc", a.URL)
	path := testutil.ConfigFile(t, content)
	s := startServer(t, server.Options{ConfigPath: path, Watch: true})
	testutil.ReplaceFile(t, path, content+"# "+strings.Repeat("x", 5000)+"\n")
	st := s.waitError()
	assert.Contains(t, *st.LastError, "server.max_config_bytes (4096 bytes)")
	code, body := s.mustGet("/orchestrator/svc/x")
	assert.Equal(t, "200 a /x", fmt.Sprint(code, " ", body))
}

// TestTruncateThenWriteUnderLoad replays the hostile case: under load, a
// tool truncates the file, the watcher reads it empty, and only then is the
// content written back. Each round waits until the server has judged the
// empty file (its error shows in /config/status), so the moment a
// half-written file is read is certain, not a race. Not one request may
// fail: before the fix the empty file was applied and the endpoint 404ed.
func TestTruncateThenWriteUnderLoad(t *testing.T) {
	a := backend(t, "a")
	good := "endpoints:\n" + endpointYAML("svc", a.URL)
	path := testutil.ConfigFile(t, good)
	s := startServer(t, server.Options{ConfigPath: path, Watch: true})

	l := startLoad(t, 4, s.base+"/orchestrator/svc/ping", func(status int, _ string) bool { return status == http.StatusOK })

	const rounds = 10
	for i := 0; i < rounds; i++ {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0o600) // a shell's ">"
		require.NoError(t, err)
		st := s.waitError()
		assert.Equal(t, int64(i), st.ReloadCount, "round %d: the empty file was applied", i)
		l.servedMore(t, "requests served while the file is empty")
		_, err = f.WriteString(good)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		st = s.waitReloads(int64(i + 1))
		assert.Nil(t, st.LastError, "the whole file clears the error")
	}
	l.stop()
	t.Logf("%d requests across %d truncate-then-write rounds, %d failed", l.ok.Load()+l.failed.Load(), rounds, l.failed.Load())
	assert.Zero(t, l.failed.Load(), "got %d failed requests (first: %v) out of %d; want none", l.failed.Load(), l.firstErr.Load(), l.ok.Load()+l.failed.Load())
}
