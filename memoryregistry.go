package orchestrator

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// MemoryRegistry is the default Registry: maps guarded by a mutex, with a
// bounded history of recent revisions so that a watch can resume. It is
// safe for concurrent use; the zero value is not usable, call
// NewMemoryRegistry or NewMemoryRegistryFrom.
type MemoryRegistry struct {
	mu        sync.Mutex
	regs      map[string]Registration
	overrides map[string]Override
	revision  uint64
	hist      memoryHistory
	watchers  map[*memoryWatcher]struct{}
	now       func() time.Time
	persist   PersistFunc
}

// PersistFunc makes a MemoryRegistry durable (internal/statefile writes a
// file with it). It is called with the registry's whole content as a
// change would leave it, before the change becomes visible, while the
// registry's lock is held (so calls follow the order of changes). An error
// refuses the change: nothing is stored and no event is sent.
type PersistFunc func(ctx context.Context, next Snapshot) error

// NewMemoryRegistry returns an empty in-memory registry.
func NewMemoryRegistry() *MemoryRegistry {
	return &MemoryRegistry{
		regs:      make(map[string]Registration),
		overrides: make(map[string]Override),
		watchers:  make(map[*memoryWatcher]struct{}),
		now:       time.Now,
	}
}

// NewMemoryRegistryFrom returns a registry holding initial, with the
// revisions it carries (so that ETags survive a restart), that calls
// persist (when not nil) before every change becomes visible. Its store
// revision starts at initial.Revision or the highest record revision,
// whichever is higher; a watch after an earlier revision gets Resync.
// Records without an id or with a duplicate key are an error.
func NewMemoryRegistryFrom(initial Snapshot, persist PersistFunc) (*MemoryRegistry, error) {
	m := NewMemoryRegistry()
	m.persist = persist
	m.revision = initial.Revision
	for _, reg := range initial.Registrations {
		m.revision = max(m.revision, reg.Revision)
	}
	for _, ov := range initial.Overrides {
		m.revision = max(m.revision, ov.Revision)
	}
	// A record without a revision (a file written by hand) gets one: a
	// stored record at revision 0 would read as absent to IfRevision.
	for i, reg := range initial.Registrations {
		id := reg.Endpoint.ID
		if id == "" {
			return nil, fmt.Errorf("registrations[%d]: the endpoint has no id", i)
		}
		if _, dup := m.regs[id]; dup {
			return nil, fmt.Errorf("registrations[%d]: %w: endpoint %q appears twice", i, ErrConflict, id)
		}
		if reg.Revision == 0 {
			m.revision++
			reg.Revision = m.revision
		}
		m.regs[id] = reg
	}
	for i, ov := range initial.Overrides {
		if err := ov.check(); err != nil {
			return nil, fmt.Errorf("overrides[%d]: %w", i, err)
		}
		key := ov.Key()
		if _, dup := m.overrides[key]; dup {
			return nil, fmt.Errorf("overrides[%d]: %w: override %q appears twice", i, ErrConflict, key)
		}
		if ov.Revision == 0 {
			m.revision++
			ov.Revision = m.revision
		}
		m.overrides[key] = ov
	}
	m.hist.compacted = m.revision
	return m, nil
}

func (ov Override) check() error {
	if ov.Kind == "" || ov.EndpointID == "" {
		return &ValidationError{Errors: []FieldError{{Field: "override", Message: "needs a kind and an endpoint id"}}}
	}
	return nil
}

// List returns every registration sorted by id, every override sorted by
// key, and the current revision.
func (m *MemoryRegistry) List(ctx context.Context) (Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.snapshotLocked(), nil
}

func (m *MemoryRegistry) snapshotLocked() Snapshot {
	s := Snapshot{
		Revision:      m.revision,
		Registrations: make([]Registration, 0, len(m.regs)),
		Overrides:     make([]Override, 0, len(m.overrides)),
	}
	for _, r := range m.regs {
		s.Registrations = append(s.Registrations, r)
	}
	for _, ov := range m.overrides {
		s.Overrides = append(s.Overrides, ov)
	}
	slices.SortFunc(s.Registrations, func(a, b Registration) int { return cmp.Compare(a.Endpoint.ID, b.Endpoint.ID) })
	slices.SortFunc(s.Overrides, func(a, b Override) int { return cmp.Compare(a.Key(), b.Key()) })
	return s
}

// Get returns the registration with the id, or ErrNotFound.
func (m *MemoryRegistry) Get(ctx context.Context, id string) (Registration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.regs[id]
	if !ok {
		return Registration{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return r, nil
}

// Put stores reg if expect holds; see Registry.
func (m *MemoryRegistry) Put(ctx context.Context, reg Registration, expect Precondition) (Registration, error) {
	ev, err := m.Commit(ctx, []Op{PutOp(reg, expect)})
	if err != nil {
		return Registration{}, err
	}
	return ev.Changes[0].Registration, nil
}

// Delete removes the registration if expect holds; see Registry.
func (m *MemoryRegistry) Delete(ctx context.Context, id string, expect Precondition) (uint64, error) {
	ev, err := m.Commit(ctx, []Op{DeleteOp(id, expect)})
	if err != nil {
		return 0, err
	}
	return ev.Revision, nil
}

// Commit applies ops atomically at one new revision; see Registry.
func (m *MemoryRegistry) Commit(ctx context.Context, ops []Op) (Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(ops) == 0 {
		return Event{Revision: m.revision}, nil
	}
	// Check everything first: a refused commit changes nothing.
	seen := make(map[string]struct{}, len(ops))
	for i, op := range ops {
		if err := m.checkLocked(op, seen); err != nil {
			if len(ops) > 1 {
				err = fmt.Errorf("op %d of %d: %w", i, len(ops), err)
			}
			return Event{}, err
		}
	}
	rev := m.revision + 1
	now := m.now().UTC()
	ev := Event{Revision: rev, Changes: make([]Change, len(ops))}
	for i, op := range ops {
		c := Change{Kind: op.Kind, Key: op.key()}
		switch op.Kind {
		case ChangePut:
			reg := op.Registration
			reg.Revision = rev
			if old, ok := m.regs[c.Key]; ok {
				reg.RegisteredAt = old.RegisteredAt
			} else if reg.RegisteredAt.IsZero() {
				reg.RegisteredAt = now
			}
			c.Registration = reg
		case ChangeOverridePut:
			ov := op.Override
			ov.Revision = rev
			if old, ok := m.overrides[c.Key]; ok {
				ov.CreatedAt = old.CreatedAt
			} else if ov.CreatedAt.IsZero() {
				ov.CreatedAt = now
			}
			c.Override = ov
		}
		ev.Changes[i] = c
	}
	if m.persist != nil {
		next := m.snapshotLocked()
		next = applyToSnapshot(next, ev)
		if err := m.persist(ctx, next); err != nil {
			return Event{}, err
		}
	}
	for _, c := range ev.Changes {
		switch c.Kind {
		case ChangePut:
			m.regs[c.Key] = c.Registration
		case ChangeDelete:
			delete(m.regs, c.Key)
		case ChangeOverridePut:
			m.overrides[c.Key] = c.Override
		case ChangeOverrideDelete:
			delete(m.overrides, c.Key)
		}
	}
	m.revision = rev
	m.hist.push(ev)
	for w := range m.watchers {
		w.wake()
	}
	return ev, nil
}

// key is the record an op changes.
func (op Op) key() string {
	switch op.Kind {
	case ChangePut:
		return op.Registration.Endpoint.ID
	case ChangeOverridePut:
		return op.Override.Key()
	}
	return op.Key
}

// checkLocked checks one op of a commit: a known kind, a key, the key once
// per commit, the precondition.
func (m *MemoryRegistry) checkLocked(op Op, seen map[string]struct{}) error {
	key := op.key()
	var (
		what    string
		exists  bool
		current uint64
	)
	switch op.Kind {
	case ChangePut, ChangeDelete:
		if key == "" {
			return &ValidationError{Errors: []FieldError{{Field: "id", Message: "is required"}}}
		}
		what = fmt.Sprintf("endpoint %q", key)
		var r Registration
		r, exists = m.regs[key]
		current = r.Revision
	case ChangeOverridePut, ChangeOverrideDelete:
		if op.Kind == ChangeOverridePut {
			if err := op.Override.check(); err != nil {
				return err
			}
		} else if key == "" {
			return &ValidationError{Errors: []FieldError{{Field: "key", Message: "is required"}}}
		}
		what = fmt.Sprintf("override %q", key)
		var ov Override
		ov, exists = m.overrides[key]
		current = ov.Revision
		key = "\x00" + key // overrides are a key space of their own
	default:
		return fmt.Errorf("%w: unknown op kind %v", ErrInvalid, op.Kind)
	}
	if _, dup := seen[key]; dup {
		return fmt.Errorf("%w: %s is changed twice in one commit", ErrInvalid, what)
	}
	seen[key] = struct{}{}
	if (op.Kind == ChangeDelete || op.Kind == ChangeOverrideDelete) && !exists && (op.Expect == IfAny || op.Expect == IfExists || op.Expect == IfAbsent) {
		return fmt.Errorf("%w: %s", ErrNotFound, what)
	}
	return op.Expect.Check(what, exists, current)
}

// applyToSnapshot returns s with ev's changes applied, records sorted as
// List sorts them.
func applyToSnapshot(s Snapshot, ev Event) Snapshot {
	regs := make(map[string]int, len(s.Registrations))
	for i, r := range s.Registrations {
		regs[r.Endpoint.ID] = i
	}
	ovs := make(map[string]int, len(s.Overrides))
	for i, ov := range s.Overrides {
		ovs[ov.Key()] = i
	}
	dropReg := map[string]bool{}
	dropOv := map[string]bool{}
	for _, c := range ev.Changes {
		switch c.Kind {
		case ChangePut:
			if i, ok := regs[c.Key]; ok {
				s.Registrations[i] = c.Registration
			} else {
				regs[c.Key] = len(s.Registrations)
				s.Registrations = append(s.Registrations, c.Registration)
			}
		case ChangeDelete:
			dropReg[c.Key] = true
		case ChangeOverridePut:
			if i, ok := ovs[c.Key]; ok {
				s.Overrides[i] = c.Override
			} else {
				ovs[c.Key] = len(s.Overrides)
				s.Overrides = append(s.Overrides, c.Override)
			}
		case ChangeOverrideDelete:
			dropOv[c.Key] = true
		}
	}
	s.Registrations = slices.DeleteFunc(s.Registrations, func(r Registration) bool { return dropReg[r.Endpoint.ID] })
	s.Overrides = slices.DeleteFunc(s.Overrides, func(ov Override) bool { return dropOv[ov.Key()] })
	slices.SortFunc(s.Registrations, func(a, b Registration) int { return cmp.Compare(a.Endpoint.ID, b.Endpoint.ID) })
	slices.SortFunc(s.Overrides, func(a, b Override) int { return cmp.Compare(a.Key(), b.Key()) })
	s.Revision = ev.Revision
	return s
}

// Watch delivers every revision after after, from the history it keeps;
// see Registry. Each watcher has its own goroutine and position, so a slow
// watcher never blocks writers: when it falls behind the history it gets
// Resync.
func (m *MemoryRegistry) Watch(ctx context.Context, after uint64) (<-chan Event, error) {
	w := &memoryWatcher{signal: make(chan struct{}, 1)}
	out := make(chan Event)
	m.mu.Lock()
	m.watchers[w] = struct{}{}
	m.mu.Unlock()
	go func() {
		defer func() {
			m.mu.Lock()
			delete(m.watchers, w)
			m.mu.Unlock()
			close(out)
		}()
		for {
			if ctx.Err() != nil {
				// Checked first: select picks at random between a ready send
				// and an ended context, and an ended watch sends nothing.
				return
			}
			m.mu.Lock()
			evs, ok := m.hist.after(after)
			m.mu.Unlock()
			if !ok {
				select {
				case out <- Event{Resync: true}:
				case <-ctx.Done():
				}
				return
			}
			for _, ev := range evs {
				if ctx.Err() != nil {
					return
				}
				select {
				case out <- ev:
					after = ev.Revision
				case <-ctx.Done():
					return
				}
			}
			if len(evs) > 0 {
				continue
			}
			select {
			case <-w.signal:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

type memoryWatcher struct {
	signal chan struct{} // one pending wake-up at most
}

func (w *memoryWatcher) wake() {
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

// memoryHistory is a ring of the latest committed events.
type memoryHistory struct {
	ring    []Event
	start   int // index of the oldest event
	n       int
	changes int // changes held in all
	// compacted is the highest revision no longer held: a watch after an
	// earlier revision cannot be served.
	compacted uint64
}

func (h *memoryHistory) push(ev Event) {
	if h.ring == nil {
		h.ring = make([]Event, memoryHistoryEvents)
	}
	if h.n == len(h.ring) {
		h.drop()
	}
	h.ring[(h.start+h.n)%len(h.ring)] = ev
	h.n++
	h.changes += len(ev.Changes)
	for h.n > 0 && h.changes > memoryHistoryChanges {
		h.drop()
	}
}

func (h *memoryHistory) drop() {
	old := &h.ring[h.start]
	h.compacted = old.Revision
	h.changes -= len(old.Changes)
	*old = Event{} // let go of its registrations
	h.start = (h.start + 1) % len(h.ring)
	h.n--
}

// after returns the events after rev (a copy of the ring's slots; their
// changes are shared and never modified), or false when some of them are
// no longer held.
func (h *memoryHistory) after(rev uint64) ([]Event, bool) {
	if rev < h.compacted {
		return nil, false
	}
	at := func(i int) *Event { return &h.ring[(h.start+i)%len(h.ring)] }
	first := sort.Search(h.n, func(i int) bool { return at(i).Revision > rev })
	if first == h.n {
		return nil, true
	}
	out := make([]Event, 0, h.n-first)
	for i := first; i < h.n; i++ {
		out = append(out, *at(i))
	}
	return out, true
}

// The history a MemoryRegistry keeps for watches that resume: this many
// recent revisions, and no more changes than memoryHistoryChanges in all
// (a reload of 10,000 endpoints is one revision; keeping it would hold a
// copy of the config per registry). A watcher behind what is kept gets
// Resync and lists again, which costs the same as the changes it missed.
const (
	memoryHistoryEvents  = 1024
	memoryHistoryChanges = 4096
)
