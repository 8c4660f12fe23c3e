// Package schedule runs a periodic job per key on a bounded pool of workers,
// so that checking 10,000 endpoints costs a fixed number of goroutines and
// one timer, not one goroutine and ticker per endpoint. A scheduler that has
// nothing to run costs no goroutine at all: its goroutines start with the
// first Add and the workers only as jobs need them.
package schedule

import (
	"container/heap"
	"context"
	"fmt"
	"sync"
	"time"
)

// RunFunc does one job for key and returns how long to wait before the next
// run of that key.
type RunFunc[K comparable] func(ctx context.Context, key K) time.Duration

// Scheduler runs RunFunc for each added key, first after the delay given to
// Add, then after whatever delay the previous run returned. A key never runs
// twice at once, and no more than the workers given to New run at once.
//
// It starts no goroutine until the first Add: then one loop goroutine that
// waits for the next key due, and worker goroutines as due keys find every
// worker busy, up to the bound. Workers stay until Close. It is safe for
// concurrent use; Close stops it and waits for every goroutine it started.
type Scheduler[K comparable] struct {
	run     RunFunc[K]
	workers int // the most workers that may run
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	wake    chan struct{}
	jobs    chan *entry[K]
	onPanic func(key K, v any)

	// spawned counts the workers started; only the loop reads and writes it.
	spawned int

	mu      sync.Mutex
	started bool // the loop runs (or ran: Close ends it)
	closed  bool // Close was called: nothing starts any more
	entries map[K]*entry[K]
	busy    map[K]bool // keys with a run under way
	queue   entryHeap[K]
}

type entry[K comparable] struct {
	key     K
	at      time.Time
	index   int // in the heap; -1 when not queued
	running bool
	removed bool
	held    bool // not queued until the run under way of its key ends
}

// New returns a scheduler that runs at most workers jobs at once. It starts
// no goroutine: the first Add does. onPanic, when not nil, is told about a
// run that panicked; the key stays scheduled.
func New[K comparable](workers int, run RunFunc[K], onPanic func(key K, v any)) *Scheduler[K] {
	if workers < 1 {
		workers = 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Scheduler[K]{
		run:     run,
		workers: workers,
		ctx:     ctx,
		cancel:  cancel,
		wake:    make(chan struct{}, 1),
		jobs:    make(chan *entry[K]),
		onPanic: onPanic,
		entries: make(map[K]*entry[K]),
		busy:    make(map[K]bool),
	}
}

// startLocked starts the loop unless it runs or the scheduler is closed.
// Under s.mu, as Close sets closed: no goroutine starts once Close has begun
// to wait for them.
func (s *Scheduler[K]) startLocked() {
	if s.started || s.closed {
		return
	}
	s.started = true
	s.wg.Add(1)
	go s.loop()
}

// Add schedules key to run after delay, replacing any schedule it had. A run
// already under way finishes; its result no longer reschedules the key, and
// the new schedule starts no run before it has ended. The first Add starts
// the scheduler's goroutines; after Close, Add starts nothing and the key
// never runs.
func (s *Scheduler[K]) Add(key K, delay time.Duration) {
	s.mu.Lock()
	s.startLocked()
	if old, ok := s.entries[key]; ok {
		s.removeLocked(old)
	}
	e := &entry[K]{key: key, at: time.Now().Add(delay), index: -1}
	s.entries[key] = e
	if s.busy[key] {
		e.held = true // queued when the run under way ends: never two at once
	} else {
		heap.Push(&s.queue, e)
	}
	s.mu.Unlock()
	s.poke()
}

// Trigger moves key's next run to now. It reports false for an unknown key.
func (s *Scheduler[K]) Trigger(key K) bool {
	s.mu.Lock()
	e, ok := s.entries[key]
	if ok && (e.index >= 0 || e.held) {
		e.at = time.Now()
		if e.index >= 0 {
			heap.Fix(&s.queue, e.index)
		}
	}
	s.mu.Unlock()
	s.poke()
	return ok
}

// Remove stops scheduling key.
func (s *Scheduler[K]) Remove(key K) {
	s.mu.Lock()
	if e, ok := s.entries[key]; ok {
		s.removeLocked(e)
	}
	s.mu.Unlock()
}

// Len returns the number of scheduled keys.
func (s *Scheduler[K]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

func (s *Scheduler[K]) removeLocked(e *entry[K]) {
	e.removed = true
	if e.index >= 0 {
		heap.Remove(&s.queue, e.index)
	}
	delete(s.entries, e.key)
}

// Close stops the scheduler and waits for running jobs to return (their
// context is cancelled) and for every goroutine it started to end.
func (s *Scheduler[K]) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

func (s *Scheduler[K]) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Scheduler[K]) loop() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := time.Hour
		for {
			s.mu.Lock()
			if len(s.queue) == 0 {
				s.mu.Unlock()
				break
			}
			e := s.queue[0]
			if d := time.Until(e.at); d > 0 {
				wait = d
				s.mu.Unlock()
				break
			}
			heap.Pop(&s.queue)
			e.running = true
			s.busy[e.key] = true
			s.mu.Unlock()
			if !s.dispatch(e) {
				return
			}
		}
		timer.Reset(wait)
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// dispatch hands e to an idle worker, or to a new one while fewer than
// s.workers run, or else waits for a worker to be free. It reports false
// when the scheduler was closed meanwhile.
func (s *Scheduler[K]) dispatch(e *entry[K]) bool {
	select {
	case s.jobs <- e:
		return true
	default:
	}
	if s.spawned < s.workers {
		// The loop holds a count of s.wg, so Close's Wait has not
		// returned and this Add is not a race with it.
		s.spawned++
		s.wg.Add(1)
		go s.work(e)
		return true
	}
	select {
	case s.jobs <- e:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// work runs first, then every job handed to it until Close.
func (s *Scheduler[K]) work(first *entry[K]) {
	defer s.wg.Done()
	for e := first; ; {
		s.finish(e, s.runOne(e.key))
		select {
		case <-s.ctx.Done():
			return
		case e = <-s.jobs:
		}
	}
}

// finish records that e's run ended and reschedules its key next from now
// (or queues the schedule that replaced it while it ran).
func (s *Scheduler[K]) finish(e *entry[K], next time.Duration) {
	s.mu.Lock()
	e.running = false
	delete(s.busy, e.key)
	if !e.removed && s.ctx.Err() == nil {
		e.at = time.Now().Add(next)
		heap.Push(&s.queue, e)
	} else if h := s.entries[e.key]; h != nil && h.held {
		h.held = false
		heap.Push(&s.queue, h)
	}
	s.mu.Unlock()
	s.poke()
}

// runOne runs a job; a panicking job is reported and retried a second later
// rather than taking the process down.
func (s *Scheduler[K]) runOne(key K) (next time.Duration) {
	defer func() {
		if v := recover(); v != nil {
			if s.onPanic != nil {
				s.onPanic(key, fmt.Sprint(v))
			}
			next = time.Second
		}
	}()
	return s.run(s.ctx, key)
}

type entryHeap[K comparable] []*entry[K]

func (h entryHeap[K]) Len() int           { return len(h) }
func (h entryHeap[K]) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h entryHeap[K]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *entryHeap[K]) Push(x any) {
	e := x.(*entry[K])
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap[K]) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	e.index = -1
	*h = old[:n-1]
	return e
}
