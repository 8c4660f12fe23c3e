package statefile_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/internal/statefile"
)

// stateDoc is the state file's shape as a reader sees it.
type stateDoc struct {
	Version   int                         `json:"version"`
	Endpoints []orchestrator.Registration `json:"endpoints"`
}

func apiReg(name string) orchestrator.Registration {
	return orchestrator.Registration{
		Endpoint: orchestrator.Endpoint{Name: name, URL: "http://127.0.0.1:1/" + name}.Normalized(),
		Source:   orchestrator.SourceAPI,
	}
}

func configReg(name string) orchestrator.Registration {
	r := apiReg(name)
	r.Source = orchestrator.SourceConfig
	return r
}

func readState(t *testing.T, path string) stateDoc {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err, "reading the state file")
	var d stateDoc
	require.NoError(t, json.Unmarshal(data, &d), "got a state file that is not JSON: %q", data)
	return d
}

func stateIDs(d stateDoc) []string {
	ids := []string{}
	for _, r := range d.Endpoints {
		ids = append(ids, r.Endpoint.ID)
	}
	return ids
}

func openState(t *testing.T, path string) *statefile.Registry {
	t.Helper()
	r, err := statefile.Open(path)
	require.NoError(t, err, "statefile.Open(%s)", path)
	return r
}

func mustDelete(t *testing.T, r *statefile.Registry, id string) {
	t.Helper()
	_, err := r.Delete(context.Background(), id, orchestrator.IfAny)
	require.NoError(t, err, "Delete(%s)", id)
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	t.Run("a missing file is an empty state and is not created", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.json")
		r := openState(t, path)
		assert.Equal(t, path, r.Path())
		all, err := r.List(ctx)
		require.NoError(t, err)
		assert.Empty(t, all.Registrations)
		_, err = os.Stat(path)
		assert.True(t, errors.Is(err, os.ErrNotExist), "got %v; want the file not created by Open", err)
	})
	t.Run("a file that is not JSON is an error naming the file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.json")
		require.NoError(t, os.WriteFile(path, []byte(`{"version":1,"endpoints":[`), 0o600))
		_, err := statefile.Open(path)
		require.Error(t, err)
		assert.Contains(t, err.Error(), path)
	})
	t.Run("an invalid endpoint in the file is an error naming its index", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.json")
		body := `{"version":1,"endpoints":[{"endpoint":{"name":"ok","url":"http://127.0.0.1:1"}},{"endpoint":{"name":"bad","url":"ftp://x"}}]}`
		require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
		_, err := statefile.Open(path)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "endpoints[1]")
	})
	t.Run("a path that cannot be read is an error", func(t *testing.T) {
		_, err := statefile.Open(t.TempDir()) // a directory
		require.Error(t, err)
	})
	t.Run("restored endpoints are API-owned, normalized and keep their registration time", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.json")
		at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
		// Written by hand: id missing, methods lower case, source claims config.
		body := fmt.Sprintf(`{"version":1,"endpoints":[{"endpoint":{"name":"users","version":"v2","url":"http://127.0.0.1:1","methods":["get"]},"source":"config","registered_at":%q}]}`, at.Format(time.RFC3339))
		require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
		r := openState(t, path)
		got, err := r.Get(ctx, "users_v2")
		require.NoError(t, err, "got no users_v2; want the id filled in on restore")
		assert.Equal(t, orchestrator.SourceAPI, got.Source, "got source %q; want api", got.Source)
		assert.Equal(t, []string{"GET"}, got.Endpoint.Methods)
		assert.True(t, at.Equal(got.RegisteredAt), "got registered_at %v; want %v", got.RegisteredAt, at)
	})
}

func TestPersistence(t *testing.T) {
	ctx := context.Background()
	t.Run("an API registration is written and restored by the next Open", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.json")
		r := openState(t, path)
		stored, err := r.Put(ctx, apiReg("users"), orchestrator.IfAbsent)
		require.NoError(t, err)
		d := readState(t, path)
		assert.Equal(t, 1, d.Version)
		assert.Equal(t, []string{"users"}, stateIDs(d))

		again := openState(t, path)
		got, err := again.Get(ctx, "users")
		require.NoError(t, err, "got no endpoint after reopening; want it restored")
		assert.Equal(t, stored.Endpoint, got.Endpoint)
		assert.Equal(t, orchestrator.SourceAPI, got.Source)
		assert.True(t, stored.RegisteredAt.Equal(got.RegisteredAt), "got registered_at %v; want %v", got.RegisteredAt, stored.RegisteredAt)
	})
	t.Run("config-owned registrations are never written", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.json")
		r := openState(t, path)
		_, err := r.Put(ctx, configReg("fromfile"), orchestrator.IfAny)
		require.NoError(t, err)
		_, err = os.Stat(path)
		assert.True(t, errors.Is(err, os.ErrNotExist), "got %v; want no state file for a config endpoint", err)

		_, err = r.Put(ctx, apiReg("api"), orchestrator.IfAbsent)
		require.NoError(t, err)
		assert.Equal(t, []string{"api"}, stateIDs(readState(t, path)))

		mustDelete(t, r, "fromfile")
		assert.Equal(t, []string{"api"}, stateIDs(readState(t, path)))
		again := openState(t, path)
		_, err = again.Get(ctx, "fromfile")
		assert.True(t, errors.Is(err, orchestrator.ErrNotFound), "got %v; want the config endpoint not restored", err)
	})
	t.Run("update and delete rewrite the file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.json")
		r := openState(t, path)
		for _, n := range []string{"a", "b", "c"} {
			_, err := r.Put(ctx, apiReg(n), orchestrator.IfAbsent)
			require.NoError(t, err)
		}
		upd := apiReg("b")
		upd.Endpoint.URL = "http://127.0.0.1:2/new"
		_, err := r.Put(ctx, upd, orchestrator.IfExists)
		require.NoError(t, err)
		mustDelete(t, r, "a")

		d := readState(t, path)
		assert.Equal(t, []string{"b", "c"}, stateIDs(d))
		assert.Equal(t, "http://127.0.0.1:2/new", d.Endpoints[0].Endpoint.URL)
		mustDelete(t, r, "b")
		mustDelete(t, r, "c")
		d = readState(t, path)
		assert.NotNil(t, d.Endpoints, "got endpoints null; want an empty list")
		assert.Empty(t, d.Endpoints)
	})
	t.Run("a refused put leaves the file alone", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.json")
		r := openState(t, path)
		_, err := r.Put(ctx, apiReg("a"), orchestrator.IfAbsent)
		require.NoError(t, err)
		before, err := os.ReadFile(path)
		require.NoError(t, err)
		_, err = r.Put(ctx, apiReg("a"), orchestrator.IfAbsent)
		assert.True(t, errors.Is(err, orchestrator.ErrConflict), "got %v; want ErrConflict", err)
		_, err = r.Put(ctx, apiReg("ghost"), orchestrator.IfExists)
		assert.True(t, errors.Is(err, orchestrator.ErrNotFound), "got %v; want ErrNotFound", err)
		_, err = r.Delete(ctx, "ghost", orchestrator.IfAny)
		assert.ErrorIs(t, err, orchestrator.ErrNotFound, "deleting an unknown id")
		after, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, string(before), string(after))
	})
	t.Run("the file is private and no temporary file is left behind", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "state.json")
		r := openState(t, path)
		for i := range 5 {
			_, err := r.Put(ctx, apiReg(fmt.Sprintf("e%d", i)), orchestrator.IfAbsent)
			require.NoError(t, err)
		}
		st, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "got mode %v; want 0600", st.Mode().Perm())
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		assert.Equal(t, []string{"state.json"}, names)
	})
}

// TestFailedWritesChangeNothing: a change whose file write fails is refused
// whole. It is not stored, not undone after the fact, and no watcher hears
// of it, so the registry never shows (or sends) a state the file does not
// hold.
func TestFailedWritesChangeNothing(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "state")
	require.NoError(t, os.Mkdir(dir, 0o700))
	path := filepath.Join(dir, "state.json")
	r := openState(t, path)
	b, err := r.Put(ctx, apiReg("b"), orchestrator.IfAbsent)
	require.NoError(t, err)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := r.Watch(wctx, b.Revision)
	require.NoError(t, err)

	// Every write fails from here: the file's directory is gone.
	require.NoError(t, os.Rename(dir, dir+"-away"))

	t.Run("a failed create stores nothing", func(t *testing.T) {
		_, err := r.Put(ctx, apiReg("a"), orchestrator.IfAbsent)
		require.Error(t, err)
		_, err = r.Get(ctx, "a")
		assert.ErrorIs(t, err, orchestrator.ErrNotFound)
	})
	t.Run("a config registration needs no write and succeeds", func(t *testing.T) {
		_, err := r.Put(ctx, configReg("c"), orchestrator.IfAny)
		require.NoError(t, err)
	})
	t.Run("a failed update keeps the previous registration", func(t *testing.T) {
		upd := apiReg("b")
		upd.Endpoint.URL = "http://127.0.0.1:9/changed"
		_, err := r.Put(ctx, upd, orchestrator.IfExists)
		require.Error(t, err)
		got, err := r.Get(ctx, "b")
		require.NoError(t, err)
		assert.Equal(t, b, got, "got %s; want the registration unchanged", got.Endpoint.URL)
	})
	t.Run("a failed delete keeps the registration", func(t *testing.T) {
		_, err := r.Delete(ctx, "b", orchestrator.IfAny)
		require.Error(t, err)
		_, err = r.Get(ctx, "b")
		assert.NoError(t, err, "got the registration gone; want it kept after the failed write")
	})
	t.Run("a failed commit changes nothing of it", func(t *testing.T) {
		_, err := r.Commit(ctx, []orchestrator.Op{
			orchestrator.PutOp(configReg("c2"), orchestrator.IfAbsent),
			orchestrator.DeleteOp("b", orchestrator.IfRevision(b.Revision)),
		})
		require.Error(t, err)
		_, err = r.Get(ctx, "c2")
		assert.ErrorIs(t, err, orchestrator.ErrNotFound, "the config half of a failed commit was stored")
	})
	t.Run("watchers saw only the change that was made", func(t *testing.T) {
		require.NoError(t, os.Rename(dir+"-away", dir))
		last, err := r.Put(ctx, apiReg("d"), orchestrator.IfAbsent)
		require.NoError(t, err)
		var kinds []string
		for {
			var ev orchestrator.Event
			select {
			case ev = <-events:
			case <-time.After(10 * time.Second):
				t.Fatal("no event within 10s")
			}
			for _, c := range ev.Changes {
				kinds = append(kinds, c.Kind.String()+" "+c.Key)
			}
			if ev.Revision == last.Revision {
				break
			}
		}
		assert.Equal(t, []string{"put c", "put d"}, kinds, "events after refused changes")
		assert.Equal(t, []string{"b", "d"}, stateIDs(readState(t, path)))
	})
}

func TestRevisionsAndOverridesSurviveARestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.json")
	r := openState(t, path)
	a, err := r.Put(ctx, apiReg("a"), orchestrator.IfAbsent)
	require.NoError(t, err)
	_, err = r.Put(ctx, apiReg("gone"), orchestrator.IfAbsent)
	require.NoError(t, err)
	trip, err := r.Commit(ctx, []orchestrator.Op{orchestrator.PutOverrideOp(orchestrator.Override{
		Kind: orchestrator.OverrideBreakerOpen, EndpointID: "cfg", Reason: "incident 42"}, orchestrator.IfAbsent)})
	require.NoError(t, err)
	deleted, err := r.Delete(ctx, "gone", orchestrator.IfAny)
	require.NoError(t, err)

	again := openState(t, path)
	got, err := again.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, a.Revision, got.Revision, "a's revision (its ETag) after a restart")
	snap, err := again.List(ctx)
	require.NoError(t, err)
	assert.Equal(t, deleted, snap.Revision, "store revision after a restart; want the last write's, even a delete's")
	require.Len(t, snap.Overrides, 1, "overrides after a restart")
	assert.Equal(t, trip.Changes[0].Override, snap.Overrides[0], "an override on a config-owned endpoint is kept, with its revision")

	// A revision handed out before the restart is never handed out again,
	// so an ETag from then cannot match a new state.
	recreated, err := again.Put(ctx, apiReg("gone"), orchestrator.IfAbsent)
	require.NoError(t, err)
	assert.Greater(t, recreated.Revision, deleted)
	_, err = again.Put(ctx, apiReg("a"), orchestrator.IfRevision(a.Revision))
	require.NoError(t, err, "a conditional write with the revision from before the restart")
}

func TestWriteAtomic(t *testing.T) {
	t.Run("it replaces the file's content whole", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "f.json")
		require.NoError(t, statefile.WriteAtomic(path, []byte("first, and rather long\n")))
		require.NoError(t, statefile.WriteAtomic(path, []byte("second\n")))
		got, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, "second\n", string(got))
	})
	t.Run("it fails in a directory that does not exist and creates nothing", func(t *testing.T) {
		dir := t.TempDir()
		err := statefile.WriteAtomic(filepath.Join(dir, "nope", "f.json"), []byte("x"))
		require.Error(t, err)
		entries, _ := os.ReadDir(dir)
		assert.Empty(t, entries)
	})
	t.Run("it fails when the target is a directory and removes its temporary file", func(t *testing.T) {
		dir := t.TempDir()
		target := filepath.Join(dir, "taken")
		require.NoError(t, os.Mkdir(target, 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(target, "keep"), nil, 0o600))
		require.Error(t, statefile.WriteAtomic(target, []byte("x")))
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Len(t, entries, 1, "got %v; want only the directory", entries)
		assert.Equal(t, "taken", entries[0].Name())
	})
}

// TestReadersNeverSeeAPartialFile rewrites the state file many times from
// several goroutines while readers read it in a loop: every read must be a
// complete document, and the final file must match the final registry.
func TestReadersNeverSeeAPartialFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.json")
	r := openState(t, path)
	// Big entries make a torn write likely to be seen if writes were not
	// atomic: the file is tens of kilobytes.
	padding := strings.Repeat("x", 2000)
	mk := func(w, i int) orchestrator.Registration {
		reg := apiReg(fmt.Sprintf("w%d-e%d", w, i))
		reg.Endpoint.Fallback = &orchestrator.FallbackConfig{Strategy: orchestrator.FallbackStaticResponse, Body: padding}
		return reg
	}
	_, err := r.Put(ctx, mk(99, 0), orchestrator.IfAbsent)
	require.NoError(t, err)

	const writers, rounds = 4, 20
	var (
		done    atomic.Bool
		reads   atomic.Int64
		readErr = make(chan error, 1)
		readers sync.WaitGroup
	)
	for range 3 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for !done.Load() {
				data, err := os.ReadFile(path)
				if err == nil {
					var d stateDoc
					err = json.Unmarshal(data, &d)
					if err == nil && (d.Version != 1 || !bytes.HasSuffix(data, []byte("}\n"))) {
						err = fmt.Errorf("version %d, %d bytes", d.Version, len(data))
					}
				}
				if err != nil {
					select {
					case readErr <- err:
					default:
					}
					return
				}
				reads.Add(1)
			}
		}()
	}

	var writersWG sync.WaitGroup
	writeErr := make(chan error, writers)
	for w := range writers {
		writersWG.Add(1)
		go func() {
			defer writersWG.Done()
			for i := range rounds {
				if _, err := r.Put(ctx, mk(w, i), orchestrator.IfAbsent); err != nil {
					writeErr <- err
					return
				}
				if i%2 == 1 {
					if _, err := r.Delete(ctx, mk(w, i-1).Endpoint.ID, orchestrator.IfAny); err != nil {
						writeErr <- err
						return
					}
				}
			}
		}()
	}
	writersWG.Wait()
	done.Store(true)
	readers.Wait()
	close(writeErr)
	for err := range writeErr {
		require.NoError(t, err, "a writer failed")
	}
	select {
	case err := <-readErr:
		t.Fatalf("got a partial or unreadable state file: %v; want every read complete", err)
	default:
	}
	assert.Positive(t, reads.Load(), "got no successful read; want readers to have run")

	all, err := r.List(ctx)
	require.NoError(t, err)
	var want []string
	for _, reg := range all.Registrations {
		want = append(want, reg.Endpoint.ID)
	}
	assert.Len(t, want, 1+writers*rounds/2)
	assert.Equal(t, want, stateIDs(readState(t, path)), "got a file that differs from the registry after the last change")
}
