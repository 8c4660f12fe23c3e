package replay

import (
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBufferIsSizedToWhatWasRead(t *testing.T) {
	t.Run("a small body under a large limit keeps a small buffer", func(t *testing.T) {
		b := New(io.NopCloser(strings.NewReader("tiny")), 1<<20)
		a, ok := b.Replay()
		require.True(t, ok)
		_, err := io.ReadAll(a)
		require.NoError(t, err)
		assert.Equal(t, minGrow, cap(b.buf), "not max_replay_bytes up front")
	})
	t.Run("the buffer doubles but never past the limit", func(t *testing.T) {
		b := New(io.NopCloser(strings.NewReader(strings.Repeat("z", 3000))), 3000)
		a, ok := b.Replay()
		require.True(t, ok)
		_, err := io.ReadAll(a)
		require.NoError(t, err)
		assert.Equal(t, 3000, len(b.buf))
		assert.LessOrEqual(t, cap(b.buf), 3000)
	})
	t.Run("going over the limit drops the buffer", func(t *testing.T) {
		b := New(io.NopCloser(strings.NewReader(strings.Repeat("z", 3000))), 1000)
		a, ok := b.Replay()
		require.True(t, ok)
		_, err := io.ReadAll(a)
		require.NoError(t, err)
		assert.Nil(t, b.buf)
	})
}
