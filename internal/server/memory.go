package server

import (
	"runtime/debug"
	"sync"
	"time"
)

// largeConfig is the size from which a config file's load ends by handing
// the memory its decoding used back to the operating system: about 2,500
// endpoints.
//
// Decoding YAML takes over a hundred times the file's size in short-lived
// memory (about 150 MB for 10,000 endpoints), several times what the
// gateway then keeps. The Go runtime keeps freed memory for reuse and
// returns it to the operating system only gradually, if at all (after a
// reload of 10,000 endpoints orchestratord stayed above 200 MiB RSS for as
// long as it was watched), so a server that loaded a large file would sit at
// that peak long after it needed it. One forced collection and release
// (tens of milliseconds of one core) brings RSS down to what is in use: at
// start-up right after the gateway is built, before serving; after a reload
// once reloads have stopped coming (reloadReleaseDelay). Small files are
// not worth it.
//
// The price: whatever is allocated after a release faults its pages back
// in one by one. The next decoding of a large file does (about half a
// second for 10,000 endpoints on a busy VM, with today's decoder), and so
// does the headroom the heap grows into before its next collection: at
// 10,000 endpoints an admin registration copies the route table (about
// 1 MB, some 200 page faults), which made the two dozen registrations after
// a release a few milliseconds slower each on a busy VM. Keeping the
// headroom resident instead (reserving it across the release) did not
// survive the runtime's own scavenging; a decoder that allocates less and a
// route table that a registration does not copy whole are the lasting
// fixes.
const largeConfig = 256 << 10

// reloadReleaseDelay is how long the config must stay unchanged after a
// large reload before the memory its decoding used goes back to the
// operating system. Edits come in bursts (an editor's saves, a rollout
// pushing several changes), and each decoding needs that memory again:
// released right away, every reload of the burst would fault it back in
// (about half a second per reload of 10,000 endpoints on a busy VM, with
// today's decoder). Start-up releases at once, before serving.
const reloadReleaseDelay = 10 * time.Second

// memoryReleaser returns freed memory to the operating system in the
// background once large reloads have stopped coming for a while, so that
// neither a reload's caller nor the next reload of a burst waits for it.
// Safe for concurrent use.
type memoryReleaser struct {
	free func() // debug.FreeOSMemory; tests count calls instead

	mu     sync.Mutex
	timer  *time.Timer
	closed bool
	wg     sync.WaitGroup // a release under way
}

// releaseAfter schedules a release d from now, replacing any scheduled.
func (r *memoryReleaser) releaseAfter(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if r.timer == nil {
		r.timer = time.AfterFunc(d, r.fire)
		return
	}
	r.timer.Reset(d)
}

func (r *memoryReleaser) fire() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.wg.Add(1)
	r.mu.Unlock()
	defer r.wg.Done()
	if r.free != nil {
		r.free()
	} else {
		debug.FreeOSMemory()
	}
}

// close cancels a scheduled release and waits for one under way.
func (r *memoryReleaser) close() {
	r.mu.Lock()
	r.closed = true
	if r.timer != nil {
		r.timer.Stop()
	}
	r.mu.Unlock()
	r.wg.Wait()
}
