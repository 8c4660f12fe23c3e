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
// Loading a config takes several times the memory the gateway then keeps,
// all of it short-lived: at 10,000 endpoints, about 20 MB to decode and
// apply (BenchmarkReload10000) against about 13 MB kept; with the goccy
// decoder alone, which still decodes what the fast one does not accept, it
// was over a hundred times the file's size (about 150 MB). The Go runtime
// keeps freed memory for reuse and returns it to the operating system only
// gradually, if at all (after a reload of 10,000 endpoints through goccy,
// orchestratord stayed above 200 MiB RSS for as long as it was watched), so
// a server that loaded a large file would sit at that peak long after it
// needed it. One forced collection and release (tens of milliseconds of
// one core) brings RSS down to what is in use: at start-up right after the
// gateway is built, before serving; after a reload once reloads have
// stopped coming (reloadReleaseDelay). Small files are not worth it.
//
// The price: whatever is allocated after a release faults its pages back
// in one by one. The next load of a large file does (a few tens of
// milliseconds at 10,000 endpoints; about half a second when goccy decodes
// it), and so does the headroom the heap grows into before its next
// collection. That used to make the registrations after a release a few
// milliseconds slower each, when a registration copied the whole route
// table (about 1 MB); it now copies the index shards it touches (tens of
// kilobytes).
const largeConfig = 256 << 10

// reloadReleaseDelay is how long the config must stay unchanged after a
// large reload before the memory its decoding used goes back to the
// operating system. Edits come in bursts (an editor's saves, a rollout
// pushing several changes), and each decoding needs that memory again:
// released right away, every reload of the burst would fault it back in.
// Start-up releases at once, before serving.
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
