package registrytest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/registrytest"
)

func TestMemoryRegistryPasses(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) orchestrator.Registry { return orchestrator.NewMemoryRegistry() })
}

// The broken registries below each break one rule of the contract, the
// way a hand-written store plausibly would. The suite must fail each in
// the subtest that checks the rule.

// lenient checks preconditions itself, against nothing: every write is
// unconditional, the lost update of two gateways sharing the store.
type lenient struct{ *orchestrator.MemoryRegistry }

func (r lenient) Put(ctx context.Context, reg orchestrator.Registration, _ orchestrator.Precondition) (orchestrator.Registration, error) {
	return r.MemoryRegistry.Put(ctx, reg, orchestrator.IfAny)
}

func (r lenient) Delete(ctx context.Context, id string, _ orchestrator.Precondition) (uint64, error) {
	return r.MemoryRegistry.Delete(ctx, id, orchestrator.IfAny)
}

// idOnly sends events without their records, as the old contract did.
type idOnly struct{ *orchestrator.MemoryRegistry }

func (r idOnly) Watch(ctx context.Context, after uint64) (<-chan orchestrator.Event, error) {
	in, err := r.MemoryRegistry.Watch(ctx, after)
	if err != nil {
		return nil, err
	}
	out := make(chan orchestrator.Event)
	go func() {
		defer close(out)
		for ev := range in {
			changes := make([]orchestrator.Change, len(ev.Changes))
			for i, c := range ev.Changes {
				changes[i] = orchestrator.Change{Kind: c.Kind, Key: c.Key}
			}
			ev.Changes = changes
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// fromNow ignores the revision a watch resumes after, losing what happened
// while the watcher was away.
type fromNow struct{ *orchestrator.MemoryRegistry }

func (r fromNow) Watch(ctx context.Context, _ uint64) (<-chan orchestrator.Event, error) {
	snap, err := r.MemoryRegistry.List(ctx)
	if err != nil {
		return nil, err
	}
	return r.MemoryRegistry.Watch(ctx, snap.Revision)
}

// oneByOne applies a commit's ops one at a time and stops at the first
// failure, leaving the earlier ones applied.
type oneByOne struct{ *orchestrator.MemoryRegistry }

func (r oneByOne) Commit(ctx context.Context, ops []orchestrator.Op) (orchestrator.Event, error) {
	var ev orchestrator.Event
	for _, op := range ops {
		one, err := r.MemoryRegistry.Commit(ctx, []orchestrator.Op{op})
		if err != nil {
			return orchestrator.Event{}, err
		}
		ev.Revision = one.Revision
		ev.Changes = append(ev.Changes, one.Changes...)
	}
	return ev, nil
}

// offByOne returns a revision from Put other than the one its event
// carries.
type offByOne struct{ *orchestrator.MemoryRegistry }

func (r offByOne) Put(ctx context.Context, reg orchestrator.Registration, expect orchestrator.Precondition) (orchestrator.Registration, error) {
	stored, err := r.MemoryRegistry.Put(ctx, reg, expect)
	stored.Revision++
	return stored, err
}

var broken = map[string]struct {
	make    func() orchestrator.Registry
	failing string // the subtest that must fail
}{
	"unconditional writes":      {func() orchestrator.Registry { return lenient{orchestrator.NewMemoryRegistry()} }, "Preconditions"},
	"events without records":    {func() orchestrator.Registry { return idOnly{orchestrator.NewMemoryRegistry()} }, "EventsCarryRecordsAndRevisions"},
	"resume ignores revision":   {func() orchestrator.Registry { return fromNow{orchestrator.NewMemoryRegistry()} }, "WatchResumesWithoutLossOrDuplicates"},
	"non-atomic commit":         {func() orchestrator.Registry { return oneByOne{orchestrator.NewMemoryRegistry()} }, "CommitIsAtomic"},
	"put revision is not event": {func() orchestrator.Registry { return offByOne{orchestrator.NewMemoryRegistry()} }, "EventsCarryRecordsAndRevisions"},
}

// TestBrokenRegistryChild runs the suite on one broken registry, in the
// child process TestSuiteCatchesBrokenRegistries starts (a failing suite
// fails its test, which must not fail this package).
func TestBrokenRegistryChild(t *testing.T) {
	kind := os.Getenv("REGISTRYTEST_BROKEN")
	if kind == "" {
		t.Skip("run by TestSuiteCatchesBrokenRegistries")
	}
	registrytest.Run(t, func(t *testing.T) orchestrator.Registry { return broken[kind].make() })
}

func TestSuiteCatchesBrokenRegistries(t *testing.T) {
	for kind, b := range broken {
		t.Run(strings.ReplaceAll(kind, " ", "_"), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenRegistryChild$/^"+b.failing+"$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), "REGISTRYTEST_BROKEN="+kind)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a registry with %s; want %s to fail:\n%s", kind, b.failing, out)
			}
			if want := "--- FAIL: TestBrokenRegistryChild/" + b.failing; !strings.Contains(string(out), want) {
				t.Fatalf("a registry with %s: want %q in the output:\n%s", kind, want, out)
			}
		})
	}
}
