package registrytest

import (
	"context"
	"sync"

	"github.com/orchestrator-go/orchestrator"
)

// Synchronous wraps r so that its watch events are delivered
// synchronously: a write returns only once every open watch of the wrapper
// has received the write's event, as with a blocking send on an unbuffered
// channel or a store that calls its watchers back. The gateway must work
// on such a registry (Run checks it); use it to check code of your own
// that watches a registry. Writes made while a watcher does not read block
// until it does (or its watch ends), so Run's store checks, which write
// before they read, cannot run on it.
func Synchronous(r orchestrator.Registry) orchestrator.Registry {
	s := &syncRegistry{Registry: r, watches: make(map[*syncWatch]struct{})}
	s.cond = sync.NewCond(&s.mu)
	return s
}

type syncRegistry struct {
	orchestrator.Registry
	mu      sync.Mutex
	cond    *sync.Cond // broadcast whenever a watch delivers or ends
	watches map[*syncWatch]struct{}
}

type syncWatch struct {
	delivered uint64 // the last revision handed over, under mu
}

func (s *syncRegistry) Put(ctx context.Context, reg orchestrator.Registration, expect orchestrator.Precondition) (orchestrator.Registration, error) {
	stored, err := s.Registry.Put(ctx, reg, expect)
	if err == nil {
		s.awaitDelivery(stored.Revision)
	}
	return stored, err
}

func (s *syncRegistry) Delete(ctx context.Context, id string, expect orchestrator.Precondition) (uint64, error) {
	rev, err := s.Registry.Delete(ctx, id, expect)
	if err == nil {
		s.awaitDelivery(rev)
	}
	return rev, err
}

func (s *syncRegistry) Commit(ctx context.Context, ops []orchestrator.Op) (orchestrator.Event, error) {
	ev, err := s.Registry.Commit(ctx, ops)
	if err == nil && len(ev.Changes) > 0 {
		s.awaitDelivery(ev.Revision)
	}
	return ev, err
}

// awaitDelivery blocks until every open watch has handed over rev.
func (s *syncRegistry) awaitDelivery(rev uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		pending := false
		for w := range s.watches {
			if w.delivered < rev {
				pending = true
			}
		}
		if !pending {
			return
		}
		s.cond.Wait()
	}
}

func (s *syncRegistry) Watch(ctx context.Context, after uint64) (<-chan orchestrator.Event, error) {
	in, err := s.Registry.Watch(ctx, after)
	if err != nil {
		return nil, err
	}
	w := &syncWatch{delivered: after}
	s.mu.Lock()
	s.watches[w] = struct{}{}
	s.mu.Unlock()
	out := make(chan orchestrator.Event) // unbuffered: a send is a hand-over
	go func() {
		defer func() {
			s.mu.Lock()
			delete(s.watches, w)
			s.cond.Broadcast()
			s.mu.Unlock()
			close(out)
			for range in {
				// Drain what the wrapped watch still sends until its
				// context ends, so that it is never left blocked.
			}
		}()
		for ev := range in {
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
			if ev.Resync {
				return
			}
			s.mu.Lock()
			w.delivered = ev.Revision
			s.cond.Broadcast()
			s.mu.Unlock()
		}
	}()
	return out, nil
}
