package replay_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator/internal/replay"
)

// clientBody stands for the client's request body: it counts its Closes.
type clientBody struct {
	io.Reader
	closes atomic.Int32
}

func (c *clientBody) Close() error { c.closes.Add(1); return nil }

func newClientBody(s string) *clientBody { return &clientBody{Reader: strings.NewReader(s)} }

func readN(t *testing.T, r io.Reader, n int) string {
	t.Helper()
	buf := make([]byte, n)
	_, err := io.ReadFull(r, buf)
	require.NoError(t, err)
	return string(buf)
}

func replayOK(t *testing.T, b *replay.Body) io.ReadCloser {
	t.Helper()
	rc, ok := b.Replay()
	require.True(t, ok, "Replay")
	return rc
}

func TestReplayYieldsTheSameBytes(t *testing.T) {
	t.Run("after a partial read the retry gets the whole body and the old attempt is cut off", func(t *testing.T) {
		src := newClientBody("hello, replayed world")
		b := replay.New(src, 64)
		first := replayOK(t, b)
		assert.Equal(t, "hello", readN(t, first, 5))

		second := replayOK(t, b)
		got, err := io.ReadAll(second)
		require.NoError(t, err)
		assert.Equal(t, "hello, replayed world", string(got))

		_, err = first.Read(make([]byte, 8))
		assert.Error(t, err, "the superseded attempt must not take the retry's bytes")

		third := replayOK(t, b)
		got, err = io.ReadAll(third)
		require.NoError(t, err)
		assert.Equal(t, "hello, replayed world", string(got), "a body read to the end replays from the kept bytes")
		assert.Equal(t, int64(21), b.BytesRead(), "the client's body was read once")
	})
	t.Run("a client read error comes again after the kept bytes", func(t *testing.T) {
		boom := errors.New("client went away")
		src := &clientBody{Reader: io.MultiReader(strings.NewReader("abc"), iotestErrReader{boom})}
		b := replay.New(src, 64)
		_, err := io.ReadAll(replayOK(t, b))
		require.ErrorIs(t, err, boom)
		got, err := io.ReadAll(replayOK(t, b))
		assert.ErrorIs(t, err, boom)
		assert.Equal(t, "abc", string(got))
	})
	t.Run("an empty body replays as empty", func(t *testing.T) {
		b := replay.New(newClientBody(""), 8)
		got, err := io.ReadAll(replayOK(t, b))
		require.NoError(t, err)
		assert.Empty(t, got)
		got, err = io.ReadAll(replayOK(t, b))
		require.NoError(t, err)
		assert.Empty(t, got)
	})
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

func TestReplayLimit(t *testing.T) {
	t.Run("more than the limit read: no replay", func(t *testing.T) {
		b := replay.New(newClientBody("0123456789"), 4)
		first := replayOK(t, b)
		assert.Equal(t, "01234", readN(t, first, 5))
		_, ok := b.Replay()
		assert.False(t, ok)
		assert.False(t, b.Replayable())
		_, err := b.GetBody()
		assert.ErrorIs(t, err, replay.ErrNotReplayable)
		rest, err := io.ReadAll(first)
		require.NoError(t, err)
		assert.Equal(t, "56789", string(rest), "the attempt under way still gets the rest")
	})
	t.Run("exactly the limit read: replayable", func(t *testing.T) {
		b := replay.New(newClientBody("0123"), 4)
		_, err := io.ReadAll(replayOK(t, b))
		require.NoError(t, err)
		got, err := io.ReadAll(replayOK(t, b))
		require.NoError(t, err)
		assert.Equal(t, "0123", string(got))
	})
	t.Run("a body never read is replayed whole whatever its size", func(t *testing.T) {
		big := strings.Repeat("x", 1<<20)
		b := replay.New(newClientBody(big), 16)
		require.NoError(t, replayOK(t, b).Close()) // the transport closes it unread
		got, err := io.ReadAll(replayOK(t, b))
		require.NoError(t, err)
		assert.Equal(t, len(big), len(got))
		_, ok := b.Replay()
		assert.False(t, ok, "now that 1 MiB went by, it is over the limit")
	})
	t.Run("a zero limit replays only an unread body", func(t *testing.T) {
		b := replay.New(newClientBody("ab"), 0)
		_, ok := b.Replay()
		require.True(t, ok)
		_, ok = b.Replay()
		require.True(t, ok)
		readN(t, replayOK(t, b), 1)
		_, ok = b.Replay()
		assert.False(t, ok)
	})
}

func TestCloseDoesNotReachTheClientBody(t *testing.T) {
	t.Run("an attempt's Close leaves the client's body open; Body.Close closes it once", func(t *testing.T) {
		src := newClientBody("data")
		b := replay.New(src, 64)
		a := replayOK(t, b)
		require.NoError(t, a.Close())
		require.NoError(t, a.Close())
		assert.Zero(t, src.closes.Load())
		_, err := a.Read(make([]byte, 4))
		assert.Error(t, err, "a closed attempt reads nothing")

		require.NoError(t, b.Close())
		require.NoError(t, b.Close())
		assert.Equal(t, int32(1), src.closes.Load())
		_, ok := b.Replay()
		assert.False(t, ok, "no replay after Close")
	})
	t.Run("concurrent Closes of the attempts and the body close the client's body once", func(t *testing.T) {
		src := newClientBody(strings.Repeat("y", 4096))
		b := replay.New(src, 1<<16)
		attempts := []io.ReadCloser{replayOK(t, b)}
		readN(t, attempts[0], 100)
		attempts = append(attempts, replayOK(t, b))
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				a := attempts[i%2]
				_, _ = a.Read(make([]byte, 64))
				_ = a.Close()
				_ = b.Close()
				_, _ = b.Replay()
			})
		}
		wg.Wait()
		assert.Equal(t, int32(1), src.closes.Load())
	})
}

// gatedBody is a client body whose Read announces itself and then waits to
// be released: a client still streaming.
type gatedBody struct {
	entered chan struct{}
	release chan struct{}
	data    string
}

func (g *gatedBody) Read(p []byte) (int, error) {
	g.entered <- struct{}{}
	<-g.release
	if g.data == "" {
		return 0, io.EOF
	}
	n := copy(p, g.data)
	g.data = g.data[n:]
	return n, nil
}

func (g *gatedBody) Close() error { return nil }

func TestNoReplayWhileStreaming(t *testing.T) {
	// Given an attempt blocked in a read of the client's body
	g := &gatedBody{entered: make(chan struct{}), release: make(chan struct{}), data: "late bytes"}
	b := replay.New(g, 64)
	a := replayOK(t, b)
	done := make(chan string)
	go func() {
		buf := make([]byte, 64)
		n, _ := a.Read(buf)
		done <- string(buf[:n])
	}()
	<-g.entered
	// When a retry is asked, Then it is refused
	_, ok := b.Replay()
	assert.False(t, ok, "the body is still streaming into the first attempt")
	assert.False(t, b.Replayable())
	// When the read ends, Then the bytes it brought are kept and replayable
	close(g.release)
	assert.Equal(t, "late bytes", <-done)
	retry := replayOK(t, b)
	buf := make([]byte, 64)
	n, err := retry.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "late bytes", string(buf[:n]))
	go func() { <-g.entered }() // the retry's next read reaches the client's EOF
	rest, err := io.ReadAll(retry)
	require.NoError(t, err)
	assert.Empty(t, rest)
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func TestRetryAfterDialErrorSendsTheWholeBody(t *testing.T) {
	// Given a live backend that hands over the body it got, and a body 64
	// times the replay limit
	received := make(chan []byte, 1)
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ := io.ReadAll(r.Body)
		received <- got
		w.WriteHeader(http.StatusNoContent)
	}))
	defer live.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	payload := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	src := &clientBody{Reader: bytes.NewReader(payload)}
	b := replay.New(src, 1024)

	send := func(addr string, body io.ReadCloser) (*http.Response, error) {
		req, err := http.NewRequest(http.MethodPut, "http://"+addr+"/", body)
		require.NoError(t, err)
		req.ContentLength = int64(len(payload))
		req.GetBody = b.GetBody
		return tr.RoundTrip(req)
	}

	// When the first attempt goes to a closed port
	_, err := send(closedPort(t), replayOK(t, b))
	require.Error(t, err)
	// Then the client's body is still open and unread
	assert.Zero(t, src.closes.Load(), "the transport's Close must not reach the client's body")
	assert.Zero(t, b.BytesRead())

	// When the retry goes to the live backend
	resp, err := send(strings.TrimPrefix(live.URL, "http://"), replayOK(t, b))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	// Then the backend got every byte
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	got := <-received
	assert.True(t, bytes.Equal(payload, got), "got %d bytes; want %d", len(got), len(payload))
	// And a third attempt is refused: 64 KiB went by a 1 KiB limit
	require.Eventually(t, func() bool { return b.BytesRead() == int64(len(payload)) }, 5*time.Second, time.Millisecond)
	_, ok := b.Replay()
	assert.False(t, ok)
	require.NoError(t, b.Close())
	assert.Equal(t, int32(1), src.closes.Load())
}
