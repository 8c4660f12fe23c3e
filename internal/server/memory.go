package server

import (
	"runtime/debug"
	"sync"
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
// right after the load (tens of milliseconds of one core, once per load of
// a large file) brings RSS down to what is in use at once. Small files are
// not worth it.
//
// The price: the release also hands back the headroom the heap grows into
// before its next collection, so the next few tens of megabytes allocated
// fault their pages back in one by one. At 10,000 endpoints an admin
// registration copies the route table (about 1 MB, some 200 page faults),
// which made the two dozen registrations after a release a few
// milliseconds slower each on a busy virtual machine. Keeping the headroom
// resident instead (reserving it across the release) did not survive the
// runtime's own scavenging; a route table that a registration does not copy
// whole is the lasting fix.
const largeConfig = 256 << 10

// memoryReleaser returns freed memory to the operating system in the
// background after a large reload, so that the reload's caller does not
// wait for it. Releases never run two at a time: one asked for while one
// runs is done once more after it. Safe for concurrent use.
type memoryReleaser struct {
	mu      sync.Mutex
	running bool
	again   bool
	wg      sync.WaitGroup
}

// release starts a release, or asks the running one to go once more.
func (r *memoryReleaser) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running {
		r.again = true
		return
	}
	r.running = true
	r.wg.Add(1)
	go r.loop()
}

func (r *memoryReleaser) loop() {
	defer r.wg.Done()
	for {
		debug.FreeOSMemory()
		r.mu.Lock()
		if !r.again {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.again = false
		r.mu.Unlock()
	}
}

// wait returns once no release runs.
func (r *memoryReleaser) wait() { r.wg.Wait() }
