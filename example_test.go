package orchestrator_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/orchestrator-go/orchestrator"
)

// A backend for the examples: it answers with the path and query it got.
func newBackend() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend got %s", r.URL.RequestURI())
	}))
}

func get(h http.Handler, target string) string {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	body, _ := io.ReadAll(rec.Body)
	return fmt.Sprintf("%d %s", rec.Code, body)
}

func ExampleNew() {
	backend := newBackend()
	defer backend.Close()

	o, err := orchestrator.New(
		orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "users", Version: "v1", URL: backend.URL + "/api"}),
	)
	if err != nil {
		panic(err)
	}
	defer o.Close()

	fmt.Println(get(o, "/orchestrator/users/v1/42?fields=name"))
	// Output: 200 backend got /api/42?fields=name
}

func ExampleOrchestrator_Middleware() {
	backend := newBackend()
	defer backend.Close()

	o, err := orchestrator.New(
		orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "billing", URL: backend.URL}),
	)
	if err != nil {
		panic(err)
	}
	defer o.Close()

	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "the application served "+r.URL.Path)
	})
	handler := o.Middleware(app)

	fmt.Println(get(handler, "/orchestrator/billing/invoices"))
	fmt.Println(get(handler, "/dashboard"))
	// Output:
	// 200 backend got /invoices
	// 200 the application served /dashboard
}

func ExampleOrchestrator_Register() {
	backend := newBackend()
	defer backend.Close()

	o, err := orchestrator.New()
	if err != nil {
		panic(err)
	}
	defer o.Close()

	ep, err := o.Register(context.Background(), orchestrator.Endpoint{Name: "orders", Version: "v2", URL: backend.URL})
	if err != nil {
		panic(err)
	}
	fmt.Println(ep.ID, ep.Source, ep.Status, ep.CircuitBreakerState)
	fmt.Println(get(o, "/orchestrator/orders/v2/open"))
	// Output:
	// orders_v2 api healthy closed
	// 200 backend got /open
}

// staticRegistry is a read-only Registry: the smallest custom registry. A
// real one would be backed by etcd, Consul or a database, check each write's
// Precondition in the store, and send an Event with the changed records on
// its Watch channel for every revision it commits (registrytest checks
// all of it).
type staticRegistry struct {
	mu   sync.Mutex
	regs map[string]orchestrator.Registration
}

// staticRevision is the only revision a read-only registry ever has.
const staticRevision = 1

func (s *staticRegistry) List(ctx context.Context) (orchestrator.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := orchestrator.Snapshot{Revision: staticRevision}
	for _, r := range s.regs {
		out.Registrations = append(out.Registrations, r)
	}
	return out, nil
}

func (s *staticRegistry) Get(ctx context.Context, id string) (orchestrator.Registration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.regs[id]
	if !ok {
		return orchestrator.Registration{}, orchestrator.ErrNotFound
	}
	return r, nil
}

func (s *staticRegistry) Put(ctx context.Context, reg orchestrator.Registration, expect orchestrator.Precondition) (orchestrator.Registration, error) {
	return orchestrator.Registration{}, fmt.Errorf("%w: this registry is read-only", orchestrator.ErrConflict)
}

func (s *staticRegistry) Delete(ctx context.Context, id string, expect orchestrator.Precondition) (uint64, error) {
	return 0, fmt.Errorf("%w: this registry is read-only", orchestrator.ErrConflict)
}

func (s *staticRegistry) Commit(ctx context.Context, ops []orchestrator.Op) (orchestrator.Event, error) {
	if len(ops) == 0 {
		return orchestrator.Event{Revision: staticRevision}, nil
	}
	return orchestrator.Event{}, fmt.Errorf("%w: this registry is read-only", orchestrator.ErrConflict)
}

func (s *staticRegistry) Watch(ctx context.Context, after uint64) (<-chan orchestrator.Event, error) {
	ch := make(chan orchestrator.Event)
	go func() { <-ctx.Done(); close(ch) }()
	return ch, nil
}

func ExampleRegistry() {
	backend := newBackend()
	defer backend.Close()

	reg := &staticRegistry{regs: map[string]orchestrator.Registration{
		"inventory": {
			Endpoint: orchestrator.Endpoint{ID: "inventory", Name: "inventory", URL: backend.URL + "/stock"},
			Source:   orchestrator.SourceAPI,
			Revision: 1,
		},
	}}
	o, err := orchestrator.New(orchestrator.WithRegistry(reg))
	if err != nil {
		panic(err)
	}
	defer o.Close()

	fmt.Println(get(o, "/orchestrator/inventory/sku-1"))
	// Output: 200 backend got /stock/sku-1
}

// Two gateways in one process, told apart by a constant label on every
// series; each family is described by # HELP and # TYPE lines.
func ExampleWithMetricsLabels() {
	for _, name := range []string{"eu-1", "us-1"} {
		o, err := orchestrator.New(
			orchestrator.WithMetricsLabels(map[string]string{"gateway": name}),
			orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "users", URL: "http://127.0.0.1:9/"}),
		)
		if err != nil {
			fmt.Println(err)
			return
		}
		var b strings.Builder
		o.WritePrometheus(&b)
		for _, line := range strings.Split(b.String(), "\n") {
			if strings.Contains(line, "orchestrator_registry_endpoints") && (name == "eu-1" || !strings.HasPrefix(line, "#")) {
				fmt.Println(line)
			}
		}
		o.Close()
	}
	_, err := orchestrator.New(orchestrator.WithMetricsLabels(map[string]string{"endpoint": "x"}))
	fmt.Println(err)
	// Output:
	// # HELP orchestrator_registry_endpoints Endpoints registered, by source (config or api).
	// # TYPE orchestrator_registry_endpoints gauge
	// orchestrator_registry_endpoints{gateway="eu-1",source="api"} 0
	// orchestrator_registry_endpoints{gateway="eu-1",source="config"} 1
	// orchestrator_registry_endpoints{gateway="us-1",source="api"} 0
	// orchestrator_registry_endpoints{gateway="us-1",source="config"} 1
	// orchestrator: WithMetricsLabels({"endpoint":"x"}): invalid configuration: metrics.labels.endpoint: label name "endpoint" is taken: the gateway's series use endpoint, method, status, kind, source, result, target, le, quantile, vmrange
}
