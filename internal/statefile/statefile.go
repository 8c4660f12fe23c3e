// Package statefile keeps endpoints registered through the admin API across
// restarts. Registry wraps the in-memory registry and, after every change to
// an API-owned endpoint, rewrites the state file atomically: a temporary
// file in the same directory is written, fsynced and renamed over the old
// one, then the directory is fsynced, so a crash at any moment leaves either
// the old or the new file, never a torn one.
package statefile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/orchestrator-go/orchestrator"
)

// fileFormat is the state file's JSON shape.
type fileFormat struct {
	Version   int                         `json:"version"`
	Endpoints []orchestrator.Registration `json:"endpoints"`
}

// Registry is an orchestrator.Registry that persists API-owned
// registrations to a file. Config-owned ones are not written: the config
// file is their source of truth. Safe for concurrent use.
type Registry struct {
	*orchestrator.MemoryRegistry
	path string
	mu   sync.Mutex // serialises change + write, so the file follows the order of changes
}

// Open loads the state file at path (a missing file is an empty state) and
// returns a registry holding its endpoints.
func Open(path string) (*Registry, error) {
	r := &Registry{MemoryRegistry: orchestrator.NewMemoryRegistry(), path: path}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return r, nil
	case err != nil:
		return nil, fmt.Errorf("reading state file: %w", err)
	}
	var f fileFormat
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("state file %s is not valid JSON: %w", path, err)
	}
	for i, reg := range f.Endpoints {
		reg.Endpoint = reg.Endpoint.Normalized()
		reg.Source = orchestrator.SourceAPI
		if err := reg.Endpoint.Validate(); err != nil {
			return nil, fmt.Errorf("state file %s: endpoints[%d]: %w", path, i, err)
		}
		if _, err := r.MemoryRegistry.Put(context.Background(), reg, orchestrator.PutUpsert); err != nil {
			return nil, fmt.Errorf("state file %s: endpoints[%d]: %w", path, i, err)
		}
	}
	return r, nil
}

// Path returns the state file's path.
func (r *Registry) Path() string { return r.path }

// Put stores reg and, for an API-owned endpoint, rewrites the file. When the
// write fails the change is undone and the error returned.
func (r *Registry) Put(ctx context.Context, reg orchestrator.Registration, mode orchestrator.PutMode) (orchestrator.Registration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev, prevErr := r.MemoryRegistry.Get(ctx, reg.Endpoint.ID)
	stored, err := r.MemoryRegistry.Put(ctx, reg, mode)
	if err != nil {
		return stored, err
	}
	if reg.Source != orchestrator.SourceAPI && (prevErr != nil || prev.Source != orchestrator.SourceAPI) {
		return stored, nil
	}
	if err := r.writeLocked(ctx); err != nil {
		if prevErr == nil {
			r.MemoryRegistry.Put(ctx, prev, orchestrator.PutUpsert)
		} else {
			r.MemoryRegistry.Delete(ctx, reg.Endpoint.ID)
		}
		return orchestrator.Registration{}, err
	}
	return stored, nil
}

// Delete removes the registration and rewrites the file when it was
// API-owned.
func (r *Registry) Delete(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev, err := r.MemoryRegistry.Get(ctx, id)
	if err != nil {
		return err
	}
	if err := r.MemoryRegistry.Delete(ctx, id); err != nil {
		return err
	}
	if prev.Source != orchestrator.SourceAPI {
		return nil
	}
	if err := r.writeLocked(ctx); err != nil {
		r.MemoryRegistry.Put(ctx, prev, orchestrator.PutUpsert)
		return err
	}
	return nil
}

func (r *Registry) writeLocked(ctx context.Context) error {
	all, err := r.MemoryRegistry.List(ctx)
	if err != nil {
		return err
	}
	f := fileFormat{Version: 1, Endpoints: []orchestrator.Registration{}}
	for _, reg := range all {
		if reg.Source == orchestrator.SourceAPI {
			f.Endpoints = append(f.Endpoints, reg)
		}
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return WriteAtomic(r.path, append(data, '\n'))
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
