package orchestrator

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// Sentinel errors returned by registries and by the Orchestrator's
// registration methods. The admin API maps them to HTTP statuses in one
// place: ErrNotFound 404, ErrConflict 409, ErrInvalid 400.
var (
	// ErrNotFound: no endpoint has that id.
	ErrNotFound = errors.New("orchestrator: endpoint not found")
	// ErrConflict: the id or route is taken, or the endpoint is owned by
	// another source (a config-file endpoint cannot be edited through the API).
	ErrConflict = errors.New("orchestrator: conflict")
	// ErrRevisionMismatch: a conditional change (UpdateIf, DeregisterIf)
	// found the endpoint at another revision. The admin API answers 412.
	ErrRevisionMismatch = errors.New("orchestrator: revision mismatch")
)

// Source says who owns a registration.
type Source string

// The sources.
const (
	// SourceConfig endpoints come from configuration (the YAML file, or
	// WithEndpoints); they follow it and the API cannot change them.
	SourceConfig Source = "config"
	// SourceAPI endpoints were registered at run time (admin API or
	// Orchestrator.Register) and survive config reloads.
	SourceAPI Source = "api"
)

// Registration is one endpoint as a Registry stores it: the desired state
// only. Observed state (health, breakers) never lives in the registry, so
// gateways sharing one registry each keep their own.
type Registration struct {
	// Endpoint is the normalized configuration (ID always set).
	Endpoint Endpoint `json:"endpoint"`
	// Source is the owner.
	Source Source `json:"source"`
	// Revision increases on every change the registry stores; it is opaque
	// to the gateway except for equality, and fit for an HTTP ETag.
	Revision uint64 `json:"revision"`
	// RegisteredAt is when the id was first stored.
	RegisteredAt time.Time `json:"registered_at"`
}

// PutMode is the precondition of Registry.Put.
type PutMode int

// The put modes.
const (
	// PutUpsert creates or replaces.
	PutUpsert PutMode = iota
	// PutCreate fails with ErrConflict when the id exists.
	PutCreate
	// PutUpdate fails with ErrNotFound when the id does not exist.
	PutUpdate
)

// EventKind says what happened to a registration.
type EventKind int

// The event kinds.
const (
	// EventPut: the registration was created or replaced.
	EventPut EventKind = iota
	// EventDelete: the registration was removed.
	EventDelete
	// EventResync: the watcher may have missed changes; list everything again.
	EventResync
)

// Event tells a watcher that a registration changed. Watchers re-read the
// registration with Get, so an implementation may coalesce events for one id.
type Event struct {
	// Kind says what happened.
	Kind EventKind
	// ID of the changed registration (empty for EventResync).
	ID string
}

// Registry stores endpoint configurations: the desired state. It is small
// on purpose so that it can be backed by etcd, Consul or a database. All
// methods must be safe for concurrent use.
//
// Put validates nothing beyond its precondition: the Orchestrator validates
// endpoints before it stores them. An implementation sets Revision (and
// RegisteredAt on creation) and returns the stored registration.
type Registry interface {
	// List returns every registration, in any order.
	List(ctx context.Context) ([]Registration, error)
	// Get returns the registration with the id, or ErrNotFound.
	Get(ctx context.Context, id string) (Registration, error)
	// Put stores reg under reg.Endpoint.ID subject to mode.
	Put(ctx context.Context, reg Registration, mode PutMode) (Registration, error)
	// Delete removes the registration, or returns ErrNotFound.
	Delete(ctx context.Context, id string) error
	// Watch delivers change events until ctx ends, then closes the channel.
	Watch(ctx context.Context) (<-chan Event, error)
}

// MemoryRegistry is the default Registry: a map guarded by a mutex. It is
// safe for concurrent use; the zero value is not usable, call
// NewMemoryRegistry.
type MemoryRegistry struct {
	mu       sync.Mutex
	regs     map[string]Registration
	revision uint64
	watchers map[*memoryWatcher]struct{}
	now      func() time.Time
}

// NewMemoryRegistry returns an empty in-memory registry.
func NewMemoryRegistry() *MemoryRegistry {
	return &MemoryRegistry{
		regs:     make(map[string]Registration),
		watchers: make(map[*memoryWatcher]struct{}),
		now:      time.Now,
	}
}

// List returns every registration sorted by id.
func (m *MemoryRegistry) List(ctx context.Context) ([]Registration, error) {
	m.mu.Lock()
	out := make([]Registration, 0, len(m.regs))
	for _, r := range m.regs {
		out = append(out, r)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Registration) int {
		switch {
		case a.Endpoint.ID < b.Endpoint.ID:
			return -1
		case a.Endpoint.ID > b.Endpoint.ID:
			return 1
		}
		return 0
	})
	return out, nil
}

// Get returns the registration with the id, or ErrNotFound.
func (m *MemoryRegistry) Get(ctx context.Context, id string) (Registration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.regs[id]
	if !ok {
		return Registration{}, ErrNotFound
	}
	return r, nil
}

// Put stores reg subject to mode.
func (m *MemoryRegistry) Put(ctx context.Context, reg Registration, mode PutMode) (Registration, error) {
	id := reg.Endpoint.ID
	if id == "" {
		return Registration{}, &ValidationError{Errors: []FieldError{{Field: "id", Message: "is required"}}}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old, exists := m.regs[id]
	switch {
	case mode == PutCreate && exists:
		return Registration{}, ErrConflict
	case mode == PutUpdate && !exists:
		return Registration{}, ErrNotFound
	}
	m.revision++
	reg.Revision = m.revision
	if exists {
		reg.RegisteredAt = old.RegisteredAt
	} else if reg.RegisteredAt.IsZero() {
		reg.RegisteredAt = m.now().UTC()
	}
	m.regs[id] = reg
	m.notify(Event{Kind: EventPut, ID: id})
	return reg, nil
}

// Delete removes the registration, or returns ErrNotFound.
func (m *MemoryRegistry) Delete(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.regs[id]; !ok {
		return ErrNotFound
	}
	delete(m.regs, id)
	m.revision++
	m.notify(Event{Kind: EventDelete, ID: id})
	return nil
}

// Watch delivers change events until ctx ends. Events for one id that the
// watcher has not consumed yet are coalesced, so a slow watcher never blocks
// writers and never grows without bound beyond one entry per id.
func (m *MemoryRegistry) Watch(ctx context.Context) (<-chan Event, error) {
	w := &memoryWatcher{
		out:     make(chan Event),
		signal:  make(chan struct{}, 1),
		pending: make(map[string]EventKind),
	}
	m.mu.Lock()
	m.watchers[w] = struct{}{}
	m.mu.Unlock()
	go func() {
		defer func() {
			m.mu.Lock()
			delete(m.watchers, w)
			m.mu.Unlock()
			close(w.out)
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case <-w.signal:
			}
			for _, ev := range w.drain() {
				select {
				case w.out <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return w.out, nil
}

// notify requires m.mu.
func (m *MemoryRegistry) notify(ev Event) {
	for w := range m.watchers {
		w.enqueue(ev)
	}
}

type memoryWatcher struct {
	out    chan Event
	signal chan struct{}

	mu      sync.Mutex
	pending map[string]EventKind
	order   []string
}

func (w *memoryWatcher) enqueue(ev Event) {
	w.mu.Lock()
	if _, queued := w.pending[ev.ID]; !queued {
		w.order = append(w.order, ev.ID)
	}
	w.pending[ev.ID] = ev.Kind
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

func (w *memoryWatcher) drain() []Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	evs := make([]Event, len(w.order))
	for i, id := range w.order {
		evs[i] = Event{Kind: w.pending[id], ID: id}
	}
	if len(w.order) > 64 {
		// After a burst (a reload of 10,000 endpoints), start small again:
		// clear would keep room for the whole burst for good.
		w.order, w.pending = nil, make(map[string]EventKind)
	} else {
		w.order = w.order[:0]
		clear(w.pending)
	}
	return evs
}

var _ Registry = (*MemoryRegistry)(nil)
