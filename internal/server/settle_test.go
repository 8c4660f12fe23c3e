package server

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

// TestSettleAppliesOnlyWhatReadsTheSameTwice drives the watched reload step
// by step: a file read once is not applied until a second read, a
// debounce later, finds the same content. A file caught half written (here:
// the first of two endpoints) and then finished is applied only whole.
func TestSettleAppliesOnlyWhatReadsTheSameTwice(t *testing.T) {
	gw, err := orchestrator.New(orchestrator.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	require.NoError(t, err)
	t.Cleanup(func() { gw.Close() })
	path := filepath.Join(t.TempDir(), "config.yaml")
	m := newConfigManager(path, gw, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	write := func(s string) { require.NoError(t, os.WriteFile(path, []byte(s), 0o600)) }
	ids := func() []string {
		var out []string
		for _, e := range gw.Endpoints() {
			out = append(out, e.ID)
		}
		return out
	}

	one := "endpoints:\n  - name: a\n    url: http://127.0.0.1:9/\n"
	two := one + "  - name: b\n    url: http://127.0.0.1:9/\n"
	write(one)
	pending := m.settle(ctx, "")
	assert.NotEmpty(t, pending, "a first read waits for a second")
	assert.Empty(t, ids(), "nothing is applied after one read")

	write(two) // the writer was not done
	pending = m.settle(ctx, pending)
	assert.NotEmpty(t, pending, "content that changed between reads waits again")
	assert.Empty(t, ids())

	pending = m.settle(ctx, pending)
	assert.Empty(t, pending, "two equal reads apply")
	assert.ElementsMatch(t, []string{"a", "b"}, ids())
	assert.Equal(t, int64(1), m.Status().ReloadCount)

	// An event that changed nothing costs one read and applies nothing.
	assert.Empty(t, m.settle(ctx, ""))
	assert.Equal(t, int64(1), m.Status().ReloadCount)
}
