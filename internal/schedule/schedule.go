// Package schedule runs a periodic job per key on a bounded pool of workers,
// so that checking 10,000 endpoints costs a fixed number of goroutines and
// one timer, not one goroutine and ticker per endpoint.
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
// twice at once. It is safe for concurrent use; Close stops it.
type Scheduler[K comparable] struct {
	run     RunFunc[K]
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	wake    chan struct{}
	jobs    chan *entry[K]
	onPanic func(key K, v any)

	mu      sync.Mutex
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

// New starts a scheduler with the given number of workers. onPanic, when not
// nil, is told about a run that panicked; the key stays scheduled.
func New[K comparable](workers int, run RunFunc[K], onPanic func(key K, v any)) *Scheduler[K] {
	if workers < 1 {
		workers = 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Scheduler[K]{
		run:     run,
		ctx:     ctx,
		cancel:  cancel,
		wake:    make(chan struct{}, 1),
		jobs:    make(chan *entry[K]),
		onPanic: onPanic,
		entries: make(map[K]*entry[K]),
		busy:    make(map[K]bool),
	}
	s.wg.Add(workers + 1)
	go s.loop()
	for range workers {
		go s.work()
	}
	return s
}

// Add schedules key to run after delay, replacing any schedule it had. A run
// already under way finishes; its result no longer reschedules the key, and
// the new schedule starts no run before it has ended.
func (s *Scheduler[K]) Add(key K, delay time.Duration) {
	s.mu.Lock()
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

// Close stops the scheduler and waits for running jobs to return; their
// context is cancelled.
func (s *Scheduler[K]) Close() {
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
			select {
			case s.jobs <- e:
			case <-s.ctx.Done():
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

func (s *Scheduler[K]) work() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case e := <-s.jobs:
			next := s.runOne(e.key)
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
	}
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
