package orchestrator

import (
	"context"
	"sync"
	"time"
)

// headerTimeout cancels a forwarded request whose upstream has not sent
// response headers within the endpoint's timeout. Unlike a context
// deadline it stops counting once headers arrive, so a long stream
// (server-sent events, a WebSocket, a big download) is never cut, and it
// restarts on every chunk of request body sent, so a big upload is not
// mistaken for a silent upstream.
//
// Guards are pooled with their timer: a timer and its callback closure would
// otherwise cost two allocations per request. A guard goes back to the pool
// only when its callback can no longer run (every Stop succeeded).
type headerTimeout struct {
	timer *time.Timer

	mu       sync.Mutex
	phase    timeoutPhase
	timeout  time.Duration
	cancel   context.CancelCauseFunc
	reusable bool // false once the callback may have started
}

type timeoutPhase uint8

const (
	phaseWaiting    timeoutPhase = iota // request sent, no response headers yet
	phaseResponding                     // headers arrived (or the request ended)
	phaseTimedOut                       // the timeout fired first
)

var headerTimeouts = sync.Pool{New: func() any {
	g := &headerTimeout{}
	g.timer = time.AfterFunc(time.Hour, g.fire)
	g.timer.Stop()
	return g
}}

// startHeaderTimeout arms a guard that calls cancel(errUpstreamTimeout) after d.
func startHeaderTimeout(d time.Duration, cancel context.CancelCauseFunc) *headerTimeout {
	g := headerTimeouts.Get().(*headerTimeout)
	g.mu.Lock()
	g.phase = phaseWaiting
	g.timeout = d
	g.cancel = cancel
	g.reusable = true
	g.timer.Reset(d)
	g.mu.Unlock()
	return g
}

func (g *headerTimeout) fire() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.phase == phaseWaiting {
		g.phase = phaseTimedOut
		g.cancel(errUpstreamTimeout)
	}
}

// stopLocked stops the timer and notes whether the callback may still run.
func (g *headerTimeout) stopLocked() {
	if !g.timer.Stop() && g.phase == phaseWaiting {
		// The timer expired and its callback is waiting for g.mu.
		g.reusable = false
	}
}

// gotHeaders stops the countdown; it reports false when the timeout won.
func (g *headerTimeout) gotHeaders() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.phase == phaseTimedOut {
		return false
	}
	if g.phase == phaseWaiting {
		g.stopLocked()
		g.phase = phaseResponding
	}
	return true
}

// progress restarts the countdown while the request body streams upstream.
func (g *headerTimeout) progress() {
	g.mu.Lock()
	if g.phase == phaseWaiting {
		if !g.timer.Reset(g.timeout) {
			// It had expired: its callback is waiting for g.mu and will
			// time the request out, which is right, and the re-armed timer
			// will fire once more into a finished phase.
			g.reusable = false
		}
	}
	g.mu.Unlock()
}

func (g *headerTimeout) timedOut() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.phase == phaseTimedOut
}

// release stops the guard for good and recycles it when that is safe.
func (g *headerTimeout) release() {
	g.mu.Lock()
	if g.phase == phaseWaiting {
		g.stopLocked()
		g.phase = phaseResponding
	}
	reusable := g.reusable && g.phase != phaseTimedOut
	g.cancel = nil
	g.mu.Unlock()
	if reusable {
		headerTimeouts.Put(g)
	}
}
