package statefile_test

import (
	"path/filepath"
	"testing"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/registrytest"
)

// TestConformance runs the registry contract's conformance suite against
// the file-backed registry: persisting must not change what watchers and
// writers see.
func TestConformance(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) orchestrator.Registry {
		return openState(t, filepath.Join(t.TempDir(), "state.json"))
	})
}
