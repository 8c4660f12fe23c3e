package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/admin"
	"github.com/orchestrator-go/orchestrator/config"
)

// reloadDebounce gathers the burst of events one save produces (editors
// write, rename and chmod; Kubernetes swaps two symlinks) into one reload.
const reloadDebounce = 150 * time.Millisecond

// configManager owns the config file: it parses, validates and applies it,
// remembers the last good version, and watches the file for changes. It
// implements admin.ConfigManager. Safe for concurrent use.
type configManager struct {
	path   string
	o      *orchestrator.Orchestrator
	log    *slog.Logger
	onLoad func(ok bool) // counts reloads by result; may be nil

	// maxBytes caps what a reload reads (server.max_config_bytes, as the
	// server started with); 0 means the default.
	maxBytes int64

	// memory hands back what decoding a large file used (see largeConfig).
	memory memoryReleaser

	mu          sync.Mutex // serialises reloads and guards the fields below
	applied     config.Config
	version     string
	lastSeen    string // version of the last content read, good or bad
	loadedAt    time.Time
	reloadCount int64
	lastErr     string
	lastErrAt   time.Time

	watching atomic.Bool
}

func newConfigManager(path string, o *orchestrator.Orchestrator, log *slog.Logger) *configManager {
	return &configManager{path: path, o: o, log: log}
}

// initial records the config the server started with.
func (m *configManager) initial(cfg config.Config, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.applied = cfg
	m.version = contentVersion(data)
	m.lastSeen = m.version
	m.loadedAt = time.Now().UTC()
}

func contentVersion(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:6])
}

// Status reports the config file's state for GET /config/status.
func (m *configManager) Status() admin.ConfigStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := admin.ConfigStatus{
		Path:        m.path,
		Version:     m.version,
		ReloadCount: m.reloadCount,
		Watching:    m.watching.Load(),
	}
	if !m.loadedAt.IsZero() {
		t := m.loadedAt
		st.LoadedAt = &t
	}
	if m.lastErr != "" {
		e, t := m.lastErr, m.lastErrAt
		st.LastError, st.LastErrorAt = &e, &t
	}
	return st
}

// Config returns the applied configuration.
func (m *configManager) Config() config.Config {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.applied
}

// Reload re-reads the file and applies it, changed or not: an operator who
// asks for a reload (POST /config/reload) gets one, and reload_count says
// so. The watcher is what skips content that did not change.
func (m *configManager) Reload(ctx context.Context) error { return m.load(ctx, true, "api") }

// Sync re-applies the file even when its content did not change, restoring
// config-owned endpoints to what the file says.
func (m *configManager) Sync(ctx context.Context) error { return m.load(ctx, true, "sync") }

// ValidateFile reads and parses the file as a reload does, under the same
// size cap, and applies nothing (POST /config/validate with no body). It
// takes no lock: it changes nothing a reload reads, and a slow check must
// not hold up the watcher.
func (m *configManager) ValidateFile(ctx context.Context) (*config.Config, error) {
	if m.path == "" {
		return nil, fmt.Errorf("the server runs on its embedded default config: %w", admin.ErrNoConfigFile)
	}
	data, err := m.read()
	if err != nil {
		return nil, err
	}
	if len(data) >= largeConfig {
		defer m.memory.releaseAfter(reloadReleaseDelay)
	}
	return config.Parse(data, m.path)
}

var _ admin.ConfigFileValidator = (*configManager)(nil)

func (m *configManager) load(ctx context.Context, force bool, trigger string) error {
	if m.path == "" {
		return fmt.Errorf("the server runs on its embedded default config: %w", admin.ErrNoConfigFile)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	data, err := m.read()
	if err != nil {
		return m.failLocked(err, trigger)
	}
	version := contentVersion(data)
	if !force && m.unchangedLocked(version) {
		return nil
	}
	return m.applyLocked(ctx, data, version, trigger)
}

// read reads the file, refusing one larger than the cap before it is
// parsed: a file being replaced by something huge must not balloon the
// running server.
func (m *configManager) read() ([]byte, error) {
	f, err := os.Open(m.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	limit := m.maxBytes
	if limit <= 0 {
		limit = config.DefaultMaxConfigBytes
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: the file is larger than server.max_config_bytes (%d bytes); it was not read further", m.path, limit)
	}
	return data, nil
}

// unchangedLocked reports whether content of this version needs no
// reload: it is what was read last (an event that changed nothing, such as
// a chmod, a touch or a sibling file). When it is also the applied
// version, an error left by a moment the file could not be read (deleted,
// then restored as it was) is cleared: the file reads back good. Content
// that differs from the last read, even if it is the applied version
// again, is applied as any change is.
func (m *configManager) unchangedLocked(version string) bool {
	if version != m.lastSeen {
		return false
	}
	if version == m.version && m.lastErr != "" {
		m.lastErr = ""
		m.lastErrAt = time.Time{}
		m.log.Info("config file reads back as the applied version; error cleared", slog.String("path", m.path), slog.String("version", version))
	}
	return true
}

// applyLocked parses, validates and applies data; on any problem the last
// good config keeps serving.
func (m *configManager) applyLocked(ctx context.Context, data []byte, version, trigger string) error {
	m.lastSeen = version
	if len(data) >= largeConfig {
		defer m.memory.releaseAfter(reloadReleaseDelay)
	}
	cfg, err := config.Parse(data, m.path)
	if err != nil {
		return m.failLocked(err, trigger)
	}
	if err := m.o.Apply(ctx, cfg.Desired()); err != nil {
		return m.failLocked(err, trigger)
	}
	m.applied = *cfg
	m.version = version
	m.loadedAt = time.Now().UTC()
	m.reloadCount++
	m.lastErr = ""
	m.lastErrAt = time.Time{}
	if m.onLoad != nil {
		m.onLoad(true)
	}
	m.log.Info("config applied", slog.String("path", m.path), slog.String("version", version),
		slog.Int("endpoints", len(cfg.Endpoints)), slog.String("trigger", trigger))
	return nil
}

// settle is one step of a watched reload. A change is applied only once
// two reads a debounce apart agree: a tool that truncates the file and then
// writes it (a shell's ">", some editors) leaves it empty or half written
// for a moment, and that moment must never be applied. It returns the
// version to compare the next read with, or "" when nothing is pending.
func (m *configManager) settle(ctx context.Context, pending string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	data, err := m.read()
	if err != nil {
		m.failLocked(err, "watch")
		return ""
	}
	version := contentVersion(data)
	if m.unchangedLocked(version) {
		return ""
	}
	if version != pending {
		return version // read again after a quiet debounce
	}
	m.applyLocked(ctx, data, version, "watch")
	return ""
}

func (m *configManager) failLocked(err error, trigger string) error {
	m.lastErr = err.Error()
	m.lastErrAt = time.Now().UTC()
	if m.onLoad != nil {
		m.onLoad(false)
	}
	m.log.Error("config rejected; the last good config keeps serving", slog.String("path", m.path),
		slog.String("error", err.Error()), slog.String("trigger", trigger))
	return err
}

// watch follows the file's directory until ctx ends. Watching the
// directory, not the file, is what sees editors' rename-writes (the old
// inode goes away) and Kubernetes ConfigMap updates (a "..data" symlink swap
// in the directory). When the path is a symlink to a file elsewhere, that
// file's directory is watched too. Every event only schedules a debounced
// read; content that hashes the same as the applied version is not applied
// again, so events from other files in the directory cost a read, nothing
// more.
//
// The returned channel is closed once the watch has stopped, so that the
// caller can wait for it before closing what a reload would touch.
func (m *configManager) watch(ctx context.Context) (<-chan struct{}, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	dirs := []string{filepath.Dir(m.path)}
	if real, err := filepath.EvalSymlinks(m.path); err == nil && filepath.Dir(real) != dirs[0] {
		dirs = append(dirs, filepath.Dir(real))
	}
	for _, dir := range dirs {
		if err := w.Add(dir); err != nil {
			w.Close()
			return nil, err
		}
	}
	m.watching.Store(true)
	fire := make(chan struct{}, 1)
	debounce := time.AfterFunc(time.Hour, func() {
		select {
		case fire <- struct{}{}:
		default:
		}
	})
	debounce.Stop()
	done := make(chan struct{})
	go func() {
		var pending string // version read once, waiting for a second read
		defer close(done)
		defer w.Close()
		defer m.watching.Store(false)
		defer debounce.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-w.Events:
				if !ok {
					return
				}
				debounce.Reset(reloadDebounce)
			case <-fire:
				if pending = m.settle(ctx, pending); pending != "" {
					debounce.Reset(reloadDebounce)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				m.log.Error("watching the config file failed", slog.String("error", err.Error()))
			}
		}
	}()
	return done, nil
}
