package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Sentinel errors returned by registries and by the Orchestrator's
// registration methods. The admin API maps them to HTTP statuses in one
// place: ErrNotFound 404, ErrConflict 409, ErrRevisionMismatch 412,
// ErrInvalid 400.
var (
	// ErrNotFound: no endpoint has that id (or no override that key).
	ErrNotFound = errors.New("orchestrator: endpoint not found")
	// ErrConflict: the id or route is taken, or the endpoint is owned by
	// another source (a config-file endpoint cannot be edited through the
	// API). A registry returns it when a create-only write (IfAbsent) finds
	// the record already there.
	ErrConflict = errors.New("orchestrator: conflict")
	// ErrRevisionMismatch: a conditional change found the record at another
	// revision, or gone. The registry itself makes this check, in the same
	// atomic step as the change, so two gateways sharing a store cannot
	// overwrite each other's edits. The admin API answers 412.
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
	// Revision is the store revision of the write that produced this
	// registration (see Registry). The store sets it; what a caller puts
	// in is ignored. It is the admin API's ETag, and the gateway compares
	// revisions to tell a newer state of an id from an older one.
	Revision uint64 `json:"revision"`
	// RegisteredAt is when the id was first stored; a replacement keeps it.
	RegisteredAt time.Time `json:"registered_at"`
}

// OverrideKind names what an operator override instructs.
type OverrideKind string

// The override kinds.
const (
	// OverrideBreakerOpen holds an endpoint's circuit breaker open: the
	// operator's emergency lever, allowed on config-owned endpoints too.
	OverrideBreakerOpen OverrideKind = "breaker_open"
	// OverrideTargetDrained takes one upstream target of an endpoint out of
	// rotation (Target names it): see DrainTarget.
	OverrideTargetDrained OverrideKind = "target_drained"
)

// Override is an operator's instruction about a running endpoint, such as
// a manual breaker trip. It is desired state, so it is stored in the
// Registry beside registrations (and applies to every gateway sharing the
// store), but it is a record of its own: it is not part of an endpoint's
// config, it is not subject to source ownership (an operator may trip the
// breaker of an endpoint the config file owns), and a config reload that
// rewrites the endpoint leaves it in place. Automatic breaker and health
// state stay observed state and are never stored.
type Override struct {
	// Kind says what the override does.
	Kind OverrideKind `json:"kind"`
	// EndpointID is the endpoint it applies to. The endpoint need not
	// exist: an override outlives a reload that drops and re-adds its
	// endpoint.
	EndpointID string `json:"endpoint_id"`
	// Target names one upstream target for per-target kinds; empty for
	// endpoint-wide ones.
	Target string `json:"target,omitempty"`
	// Reason is the operator's note (who, why), shown back by the admin API.
	Reason string `json:"reason,omitempty"`
	// Revision is the store revision of the write that produced it; set by
	// the store.
	Revision uint64 `json:"revision"`
	// CreatedAt is when the key was first stored; set by the store.
	CreatedAt time.Time `json:"created_at"`
}

// Key identifies the override in the store: its kind, endpoint and target
// joined by "/" ("breaker_open/users_v1"). Endpoint ids and target ids
// never contain "/", so keys never collide.
func (ov Override) Key() string {
	k := string(ov.Kind) + "/" + ov.EndpointID
	if ov.Target != "" {
		k += "/" + ov.Target
	}
	return k
}

// Precondition is what a conditional write (Put, Delete, an Op of Commit)
// requires of the record it changes. The store checks it and makes the
// change in one atomic step (etcd: a transaction comparing the key's
// revision), which is what makes compare-and-swap safe between gateways.
//
// Any revision a store returned is a valid Precondition, meaning "the
// record is still at that revision" (IfRevision says so explicitly); the
// constants below cover the other cases.
type Precondition uint64

// The preconditions that are not a revision.
const (
	// IfAbsent: the record must not exist (create only). It is revision 0,
	// which no stored record has. A Put that finds the record fails with
	// ErrConflict.
	IfAbsent Precondition = 0
	// IfExists: the record must exist, at any revision. Failure is
	// ErrNotFound.
	IfExists Precondition = math.MaxUint64 - 1
	// IfAny: no condition. Put creates or replaces; Delete of a missing
	// record still fails with ErrNotFound.
	IfAny Precondition = math.MaxUint64
)

// IfRevision returns the precondition that the record is still at
// revision rev. A record at another revision, or gone, fails the write with
// ErrRevisionMismatch. IfRevision(0) is IfAbsent.
func IfRevision(rev uint64) Precondition { return Precondition(rev) }

// String names the precondition for errors and logs.
func (p Precondition) String() string {
	switch p {
	case IfAbsent:
		return "absent"
	case IfExists:
		return "exists"
	case IfAny:
		return "any"
	}
	return fmt.Sprintf("revision %d", uint64(p))
}

// Check reports whether a record in the given state satisfies p, with the
// error a store returns when it does not. Registry implementations call it
// so that every store fails the same way; what names the record in the
// error.
func (p Precondition) Check(what string, exists bool, revision uint64) error {
	switch {
	case p == IfAny:
		return nil
	case p == IfExists:
		if !exists {
			return fmt.Errorf("%w: %s", ErrNotFound, what)
		}
	case p == IfAbsent:
		if exists {
			return fmt.Errorf("%w: %s already exists (revision %d)", ErrConflict, what, revision)
		}
	case !exists:
		return fmt.Errorf("%w: %s is gone, expected at revision %d", ErrRevisionMismatch, what, uint64(p))
	case revision != uint64(p):
		return fmt.Errorf("%w: %s is at revision %d, not %d", ErrRevisionMismatch, what, revision, uint64(p))
	}
	return nil
}

// ChangeKind says what one change (or one Op) does to one record.
type ChangeKind int

// The change kinds.
const (
	// ChangePut: a registration was created or replaced.
	ChangePut ChangeKind = iota
	// ChangeDelete: a registration was removed.
	ChangeDelete
	// ChangeOverridePut: an override was created or replaced.
	ChangeOverridePut
	// ChangeOverrideDelete: an override was removed.
	ChangeOverrideDelete
)

// String names the kind for logs and test failures.
func (k ChangeKind) String() string {
	switch k {
	case ChangePut:
		return "put"
	case ChangeDelete:
		return "delete"
	case ChangeOverridePut:
		return "override-put"
	case ChangeOverrideDelete:
		return "override-delete"
	}
	return fmt.Sprintf("ChangeKind(%d)", int(k))
}

// Change is one record a committed revision wrote or removed. It carries
// the record itself, so a watcher needs no read to apply it.
type Change struct {
	// Kind says what happened.
	Kind ChangeKind
	// Key is the endpoint id (ChangePut, ChangeDelete) or the override key
	// (ChangeOverridePut, ChangeOverrideDelete).
	Key string
	// Registration is the stored registration, for ChangePut; its Revision
	// is the event's.
	Registration Registration
	// Override is the stored override, for ChangeOverridePut; its Revision
	// is the event's.
	Override Override
}

// Event is one committed revision of a Registry as a watcher sees it: every
// change that revision made (one for Put and Delete, several for a
// Commit), or a request to list again.
type Event struct {
	// Revision is the store revision the changes were committed at; a
	// watcher that resumes after it sees none of them again.
	Revision uint64
	// Changes are the revision's changes, in the order of the Ops.
	Changes []Change
	// Resync says the store cannot deliver the changes after the watch's
	// revision (its history was compacted, or the watcher fell too far
	// behind): the watcher must List again and watch from the list's
	// revision. A Resync event is the last on its channel; it carries no
	// changes and no revision.
	Resync bool
}

// Op is one conditional change of a Commit. Build it with PutOp, DeleteOp,
// PutOverrideOp or DeleteOverrideOp.
type Op struct {
	// Kind says what the op does.
	Kind ChangeKind
	// Registration is the registration to store (ChangePut).
	Registration Registration
	// Override is the override to store (ChangeOverridePut).
	Override Override
	// Key is the endpoint id (ChangeDelete) or override key
	// (ChangeOverrideDelete) to remove.
	Key string
	// Expect is the precondition on the record the op changes.
	Expect Precondition
}

// PutOp stores reg under reg.Endpoint.ID if expect holds.
func PutOp(reg Registration, expect Precondition) Op {
	return Op{Kind: ChangePut, Registration: reg, Key: reg.Endpoint.ID, Expect: expect}
}

// DeleteOp removes the registration with the id if expect holds.
func DeleteOp(id string, expect Precondition) Op {
	return Op{Kind: ChangeDelete, Key: id, Expect: expect}
}

// PutOverrideOp stores ov under ov.Key() if expect holds.
func PutOverrideOp(ov Override, expect Precondition) Op {
	return Op{Kind: ChangeOverridePut, Override: ov, Key: ov.Key(), Expect: expect}
}

// DeleteOverrideOp removes the override with the key if expect holds.
func DeleteOverrideOp(key string, expect Precondition) Op {
	return Op{Kind: ChangeOverrideDelete, Key: key, Expect: expect}
}

// Snapshot is everything a Registry holds at one revision.
type Snapshot struct {
	// Revision is the store revision the snapshot reflects: a Watch after
	// it delivers exactly the changes the snapshot does not show.
	Revision uint64
	// Registrations, in any order.
	Registrations []Registration
	// Overrides, in any order.
	Overrides []Override
}

// Registry stores the desired state: endpoint registrations and operator
// overrides. It is the seam where a store shared by a fleet of gateways
// (etcd, Consul, a database) plugs in, so its contract is the one such a
// store can keep:
//
//   - The store has one revision counter. Every successful write (Put,
//     Delete or a whole Commit) is committed at a new revision, higher than
//     every earlier one, and every record it writes carries that revision.
//     Revisions need not be consecutive.
//   - Conditions are checked by the store, atomically with the write
//     (see Precondition): this is the only compare-and-swap the gateway
//     relies on.
//   - List returns a consistent snapshot and its revision; Watch after that
//     revision delivers exactly the later revisions, in order, each once,
//     each with its changes and their records. A watch that cannot do so
//     sends a Resync event instead; a store keeps enough history for a
//     watch to resume after a brief drop (registrytest expects the last
//     registrytest.MinHistory revisions). A watch may also just close (a
//     lost connection); the watcher resumes with Watch after the last
//     revision it saw and loses nothing.
//   - A write should not wait for a slow watcher: a store that cannot
//     keep up with one sends it Resync instead. A store may still deliver
//     synchronously (a Put that returns once its event is received, a
//     callback): the gateway keeps reading its watch and never calls the
//     registry while holding the lock its event handling needs, so such a
//     store does not deadlock it.
//
// The store validates nothing beyond preconditions and non-empty keys: the
// Orchestrator validates endpoints before it stores them, and leaves out
// (and logs) an invalid one written by someone else. All methods must be
// safe for concurrent use. The registrytest package checks an
// implementation against this contract.
type Registry interface {
	// List returns every registration and override and the revision they
	// reflect.
	List(ctx context.Context) (Snapshot, error)
	// Get returns the registration with the id, or ErrNotFound. Following
	// the store never reads (events carry their records); the gateway
	// calls Get only before a conditional write its own view may be too
	// far behind to decide.
	Get(ctx context.Context, id string) (Registration, error)
	// Put stores reg under reg.Endpoint.ID if expect holds and returns the
	// stored registration: Revision is the new store revision (the one its
	// event carries) and RegisteredAt is kept from the record it replaces.
	// IfAbsent fails with ErrConflict, a revision with ErrRevisionMismatch.
	Put(ctx context.Context, reg Registration, expect Precondition) (Registration, error)
	// Delete removes the registration with the id if expect holds and
	// returns the revision of the removal. A missing id is ErrNotFound
	// (ErrRevisionMismatch when expect is a revision); IfAbsent never lets
	// a Delete through.
	Delete(ctx context.Context, id string, expect Precondition) (uint64, error)
	// Commit applies ops atomically: every precondition holds and every op
	// is applied at one new revision, or none is and the first failure is
	// returned. It returns the Event its watchers see. An op's key may
	// appear once per commit. A store that cannot apply a batch atomically
	// (too many ops for one etcd transaction) must refuse it whole. An
	// empty commit changes nothing and returns an Event without changes at
	// the current revision.
	Commit(ctx context.Context, ops []Op) (Event, error)
	// Watch delivers an Event for every revision committed after the
	// revision after, in order, until ctx ends; then it closes the channel.
	// See Event.Resync for a watch that cannot resume.
	Watch(ctx context.Context, after uint64) (<-chan Event, error)
}

var _ Registry = (*MemoryRegistry)(nil)
