// Package replay makes a request body replayable for retries without
// reading it whole first: a bounded tee keeps the first max_replay_bytes
// that an attempt reads from the client, and a retry's body yields those
// bytes again and then goes on reading from the client.
//
// Two things of Go's http.Transport shape it:
//
//   - RoundTrip closes the request body even when it sent nothing (a dial
//     error, a refused connection). So an attempt's body is a wrapper whose
//     Close does not close the client's body; the caller closes that once,
//     at the end, with Body.Close.
//   - RoundTrip may return while its write goroutine still reads the body
//     (it closes the body "possibly in a separate goroutine even after
//     RoundTrip returns", says http.RoundTripper). A retry asked for while
//     an attempt is inside a Read of the client's body is refused: the
//     bytes of that read would belong to two attempts.
package replay

import (
	"errors"
	"io"
	"sync"
)

// ErrNotReplayable is GetBody's error when the body cannot be replayed:
// more than the limit was read, an attempt is still reading, or the Body
// was closed.
var ErrNotReplayable = errors.New("replay: request body cannot be replayed")

// errSuperseded is what an attempt's body returns once a later attempt
// has started: the transport of an abandoned attempt must not take bytes
// from the client that belong to the retry.
var errSuperseded = errors.New("replay: request body was handed to a later attempt")

// errAttemptClosed is a Read after the attempt's own Close.
var errAttemptClosed = errors.New("replay: read on closed request body")

// minGrow is the first buffer size when a body starts being kept: small
// bodies cost little, large ones double up to the limit.
const minGrow = 512

// Body wraps a client's request body for one request's attempts. Each
// attempt's body comes from Replay; the first call is always ok. Body is
// safe for concurrent use (the transport reads and closes from its own
// goroutines) and must not be copied.
type Body struct {
	src   io.ReadCloser
	limit int64

	mu       sync.Mutex
	buf      []byte // the first bytes read from src, while read <= limit
	read     int64  // bytes read from src so far
	over     bool   // more than limit read: buf is gone, no more replays
	reading  bool   // an attempt is inside src.Read
	srcErr   error  // src's terminal error (io.EOF at the end)
	gen      uint64 // the current attempt; older ones are superseded
	closed   bool   // Close was called
	closeErr error
}

// New wraps src, keeping up to limit bytes for replays (max_replay_bytes;
// a negative limit is 0). Nothing is read until an attempt reads, and the
// buffer grows with what was read, never to limit up front.
func New(src io.ReadCloser, limit int64) *Body {
	return &Body{src: src, limit: max(limit, 0)}
}

// Replay returns the body for the next attempt, which yields the request's
// bytes from the first. ok is false, and there must be no retry, when more
// than the limit has been read from the client (a body never read can be
// replayed whatever its size), when an attempt is inside a read of the
// client's body (still streaming), or after Close. A new attempt's body
// supersedes the previous one's: its reads fail from then on.
func (b *Body) Replay() (io.ReadCloser, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.over || b.reading || b.closed {
		return nil, false
	}
	b.gen++
	return &attempt{b: b, gen: b.gen}, true
}

// GetBody is Replay in the shape of http.Request.GetBody, so that the
// transport's own retry of a request on a reused connection that died
// before sending works too.
func (b *Body) GetBody() (io.ReadCloser, error) {
	rc, ok := b.Replay()
	if !ok {
		return nil, ErrNotReplayable
	}
	return rc, nil
}

// Replayable reports whether Replay would give a body now.
func (b *Body) Replayable() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.over && !b.reading && !b.closed
}

// BytesRead is how many bytes were read from the client so far.
func (b *Body) BytesRead() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.read
}

// Close closes the client's body, once, however often it is called and
// from however many goroutines, and drops the kept bytes. Every attempt's
// body fails from then on. It returns the client body's Close error.
func (b *Body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return b.closeErr
	}
	b.closed = true
	b.buf = nil
	// Closed under the lock, so a second Close waits for its error. An
	// attempt inside src.Read does not hold the lock; the server's request
	// body allows Close during Read.
	b.closeErr = b.src.Close()
	return b.closeErr
}

// attempt is one attempt's view of the body: it yields the kept bytes from
// pos, then reads on from the client, keeping what it reads.
type attempt struct {
	b      *Body
	gen    uint64
	pos    int64 // bytes of the body this attempt has yielded
	closed bool  // guarded by b.mu
}

// Read yields the kept bytes first, then the client's.
func (a *attempt) Read(p []byte) (int, error) {
	b := a.b
	b.mu.Lock()
	if err := a.usableLocked(); err != nil {
		b.mu.Unlock()
		return 0, err
	}
	if a.pos < b.read {
		// Kept bytes. (pos < read means the attempt is behind the client's
		// position, which only a replay allows, and a replay needs buf.)
		n := copy(p, b.buf[a.pos:])
		a.pos += int64(n)
		b.mu.Unlock()
		return n, nil
	}
	if b.srcErr != nil {
		b.mu.Unlock()
		return 0, b.srcErr
	}
	if len(p) == 0 {
		b.mu.Unlock()
		return 0, nil
	}
	b.reading = true
	b.mu.Unlock()

	// Not under the lock: a read may block for as long as the client takes,
	// and Close, Replay (to refuse) and the attempt's Close must not wait.
	n, err := b.src.Read(p)

	b.mu.Lock()
	defer b.mu.Unlock()
	b.reading = false
	b.keepLocked(p[:n])
	a.pos += int64(n)
	if err != nil {
		b.srcErr = err
	}
	return n, err
}

// usableLocked is the error a read on a must return before anything else.
func (a *attempt) usableLocked() error {
	switch {
	case a.closed:
		return errAttemptClosed
	case a.b.closed:
		return ErrNotReplayable
	case a.gen != a.b.gen:
		return errSuperseded
	}
	return nil
}

// keepLocked counts p as read from the client and keeps it while the body
// is within the limit. The buffer grows by doubling from minGrow, never
// beyond the limit.
func (b *Body) keepLocked(p []byte) {
	b.read += int64(len(p))
	if b.over || b.closed {
		return
	}
	if b.read > b.limit {
		b.over, b.buf = true, nil
		return
	}
	if need := len(b.buf) + len(p); need > cap(b.buf) {
		c := min(max(need, 2*cap(b.buf), minGrow), int(b.limit))
		grown := make([]byte, len(b.buf), c)
		copy(grown, b.buf)
		b.buf = grown
	}
	b.buf = append(b.buf, p...)
}

// Close ends this attempt's use of the body. It does not close the
// client's body: the transport closes the body of an attempt that failed
// to dial, and the retry still needs it.
func (a *attempt) Close() error {
	a.b.mu.Lock()
	a.closed = true
	a.b.mu.Unlock()
	return nil
}
