package orchestrator_test

import (
	"testing"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/registrytest"
)

// TestMemoryRegistryConformance runs the registry contract's conformance
// suite against the default registry.
func TestMemoryRegistryConformance(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) orchestrator.Registry { return orchestrator.NewMemoryRegistry() })
}
