// Package statefile keeps endpoints registered through the admin API, and
// operator overrides, across restarts. Registry is the in-memory registry
// with a persistence hook: before a change that touches what the file
// holds becomes visible, the whole state file is rewritten atomically (a
// temporary file in the same directory is written, fsynced and renamed
// over the old one, then the directory is fsynced), so a crash at any
// moment leaves either the old or the new file, never a torn one. A write
// that fails refuses the change: nothing is stored and no watcher hears of
// it, so the file and the registry never disagree.
package statefile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/orchestrator-go/orchestrator"
)

// fileFormat is the state file's JSON shape. Version 1 files written before
// overrides and the store revision existed read the same.
type fileFormat struct {
	Version int `json:"version"`
	// Revision is the store revision of the last write, so that revisions
	// (the admin API's ETags) never repeat across a restart: an ETag held
	// from before the restart can never match a different state.
	Revision  uint64                      `json:"revision,omitempty"`
	Endpoints []orchestrator.Registration `json:"endpoints"`
	Overrides []orchestrator.Override     `json:"overrides,omitempty"`
}

// Registry is an orchestrator.Registry that persists API-owned
// registrations and every override to a file. Config-owned registrations
// are not written: the config file is their source of truth. Safe for
// concurrent use.
type Registry struct {
	*orchestrator.MemoryRegistry
	path string
	// last is what the file holds (records only, not the revision), to skip
	// the write of a change that does not touch it (a config reload). Used
	// only by persist, which the memory registry serialises.
	last []byte
}

// Open loads the state file at path (a missing file is an empty state) and
// returns a registry holding its endpoints and overrides, at the revisions
// they were stored with.
func Open(path string) (*Registry, error) {
	r := &Registry{path: path}
	var f fileFormat
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("reading state file: %w", err)
	default:
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("state file %s is not valid JSON: %w", path, err)
		}
	}
	for i := range f.Endpoints {
		reg := &f.Endpoints[i]
		reg.Endpoint = reg.Endpoint.Normalized()
		reg.Source = orchestrator.SourceAPI
		if err := reg.Endpoint.Validate(); err != nil {
			return nil, fmt.Errorf("state file %s: endpoints[%d]: %w", path, i, err)
		}
	}
	initial := orchestrator.Snapshot{Revision: f.Revision, Registrations: f.Endpoints, Overrides: f.Overrides}
	mem, err := orchestrator.NewMemoryRegistryFrom(initial, r.persist)
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	r.MemoryRegistry = mem
	// What the file holds now, as persist will compare it: listed back, so
	// that records given a revision on load count as changed content only
	// when they change.
	snap, err := mem.List(context.Background())
	if err != nil {
		return nil, err
	}
	if data != nil {
		r.last = recordsOf(snap)
	} else {
		r.last = recordsOf(orchestrator.Snapshot{})
	}
	return r, nil
}

// Path returns the state file's path.
func (r *Registry) Path() string { return r.path }

// persist is the memory registry's hook: it writes next to the file when
// the records the file keeps changed.
func (r *Registry) persist(ctx context.Context, next orchestrator.Snapshot) error {
	records := recordsOf(next)
	if bytes.Equal(records, r.last) {
		return nil
	}
	f := fileFormat{Version: 1, Revision: next.Revision, Endpoints: persisted(next), Overrides: next.Overrides}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := WriteAtomic(r.path, append(data, '\n')); err != nil {
		return err
	}
	r.last = records
	return nil
}

// persisted returns the registrations the file keeps: the API-owned ones.
func persisted(s orchestrator.Snapshot) []orchestrator.Registration {
	out := []orchestrator.Registration{}
	for _, reg := range s.Registrations {
		if reg.Source == orchestrator.SourceAPI {
			out = append(out, reg)
		}
	}
	return out
}

// recordsOf encodes what the file keeps of s, without the revision, for
// comparison. Snapshots list records sorted, so equal content encodes
// equal.
func recordsOf(s orchestrator.Snapshot) []byte {
	ovs := s.Overrides
	if len(ovs) == 0 {
		ovs = nil
	}
	data, err := json.Marshal(fileFormat{Endpoints: persisted(s), Overrides: ovs})
	if err != nil {
		return nil // never equal to anything: the next change writes
	}
	return data
}

// WriteAtomic replaces path with data so that readers (and a crash at any
// moment) see either the old content or the new, never a mix.
func WriteAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing state file: %w", err)
	}
	cleanup := func() { os.Remove(tmp.Name()) }
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		cleanup()
		return fmt.Errorf("writing state file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		cleanup()
		return fmt.Errorf("syncing state file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		cleanup()
		return fmt.Errorf("writing state file: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		cleanup()
		return fmt.Errorf("writing state file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		cleanup()
		return fmt.Errorf("replacing state file: %w", err)
	}
	// Make the rename itself durable.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

var _ orchestrator.Registry = (*Registry)(nil)
