package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

// Issue 13 point 9: POST /registry/endpoints takes a JSON array too, and
// registers it all or nothing.
func TestRegistryCreateMany(t *testing.T) {
	t.Run("three valid endpoints: 201, listed in order, all routable", func(t *testing.T) {
		f := newFixture(t)
		body := fmt.Sprintf(`[
			{"name":"billing","version":"v2","url":"%[1]s/bill","methods":["get"]},
			{"name":"search","url":"%[1]s/search"},
			{"id":"inv","name":"invoices","url":"%[1]s/inv"}
		]`, f.backend.URL)
		rec := call(f.h, http.MethodPost, "/registry/endpoints", body)
		got := decode[endpointList](t, rec, http.StatusCreated)
		assert.Equal(t, 3, got.Count)
		assert.Equal(t, []string{"billing_v2", "search", "inv"}, got.ids(), "the endpoints, in the order sent")
		for _, ep := range got.Endpoints {
			assert.Equal(t, orchestrator.SourceAPI, ep.Source, "%s: source", ep.ID)
			assert.Equal(t, got.Endpoints[0].Revision, ep.Revision, "%s: one registry revision for the batch", ep.ID)
		}
		assert.Empty(t, rec.Header().Get("Location"), "no single Location for several resources")
		assert.NotEmpty(t, rec.Header().Get("X-Request-Id"))

		for path, want := range map[string]string{
			"/orchestrator/billing/v2/1": "backend GET /bill/1",
			"/orchestrator/search/2":     "backend GET /search/2",
			"/orchestrator/invoices/3":   "backend GET /inv/3",
		} {
			proxied := f.proxied(t, path)
			assert.Equal(t, http.StatusOK, proxied.Code, "GET %s", path)
			assert.Equal(t, want, proxied.Body.String(), "GET %s", path)
		}
		list := decode[endpointList](t, call(f.h, http.MethodGet, "/registry/endpoints?source=api", ""), http.StatusOK)
		assert.ElementsMatch(t, []string{"billing_v2", "search", "inv"}, list.ids())
	})

	t.Run("one invalid among three: 400 naming it by index, none registered", func(t *testing.T) {
		f := newFixture(t)
		body := fmt.Sprintf(`[{"name":"a","url":"%[1]s"},{"name":"b","url":"ftp://nowhere","auth_type":"magic"},{"name":"c","url":"%[1]s"}]`, f.backend.URL)
		p := requireProblem(t, call(f.h, http.MethodPost, "/registry/endpoints", body), http.StatusBadRequest, "validation-failed")
		var fields []string
		for _, fe := range p.Errors {
			fields = append(fields, fe.Field)
			assert.NotEmpty(t, fe.Message, "%s has a message", fe.Field)
		}
		assert.Equal(t, []string{"[1].url", "[1].auth_type"}, fields)
		assert.Contains(t, p.Detail, "nothing was changed")
		requireNoneOf(t, f, "a", "b", "c")
	})

	t.Run("an id already present: 409 naming it by index, none registered", func(t *testing.T) {
		f := newFixture(t)
		body := fmt.Sprintf(`[{"name":"a","url":"%[1]s"},{"name":"b","url":"%[1]s"},{"name":"orders","url":"%[1]s/x"}]`, f.backend.URL)
		p := requireProblem(t, call(f.h, http.MethodPost, "/registry/endpoints", body), http.StatusConflict, "conflict")
		assert.Contains(t, p.Detail, `[2].id: endpoint "orders" already exists (source config)`)
		assert.Contains(t, p.Detail, "nothing was registered")
		requireNoneOf(t, f, "a", "b")
		proxied := f.proxied(t, "/orchestrator/orders/1")
		assert.Equal(t, "backend GET /orders/1", proxied.Body.String(), "the config endpoint is untouched")
	})

	t.Run("an id registered through the API before: 409, none registered", func(t *testing.T) {
		f := newFixture(t)
		first := fmt.Sprintf(`{"name":"a","url":"%s"}`, f.backend.URL)
		require.Equal(t, http.StatusCreated, call(f.h, http.MethodPost, "/registry/endpoints", first).Code)
		body := fmt.Sprintf(`[{"name":"b","url":"%[1]s"},{"name":"a","url":"%[1]s/other"}]`, f.backend.URL)
		p := requireProblem(t, call(f.h, http.MethodPost, "/registry/endpoints", body), http.StatusConflict, "conflict")
		assert.Contains(t, p.Detail, `[1].id: endpoint "a" already exists (source api)`)
		requireNoneOf(t, f, "b")
	})

	t.Run("the same id twice in the array: 400, none registered", func(t *testing.T) {
		f := newFixture(t)
		body := fmt.Sprintf(`[{"name":"a","url":"%[1]s"},{"name":"b","url":"%[1]s"},{"name":"a","url":"%[1]s/again"}]`, f.backend.URL)
		p := requireProblem(t, call(f.h, http.MethodPost, "/registry/endpoints", body), http.StatusBadRequest, "validation-failed")
		require.NotEmpty(t, p.Errors)
		assert.Equal(t, "[2].id", p.Errors[0].Field)
		assert.Contains(t, p.Errors[0].Message, `duplicate id "a" (also [0])`)
		requireNoneOf(t, f, "a", "b")
	})

	t.Run("an unknown field in one element: 400 located by index, none registered", func(t *testing.T) {
		f := newFixture(t)
		body := fmt.Sprintf(`[{"name":"a","url":"%[1]s"},{"name":"b","url":"%[1]s","colour":"red"}]`, f.backend.URL)
		p := requireProblem(t, call(f.h, http.MethodPost, "/registry/endpoints", body), http.StatusBadRequest, "invalid-json")
		require.Len(t, p.Errors, 1)
		assert.Equal(t, "[1].colour", p.Errors[0].Field)
		requireNoneOf(t, f, "a", "b")
	})

	t.Run("decoding and validation problems of several elements: all at once, by index", func(t *testing.T) {
		f := newFixture(t)
		body := fmt.Sprintf(`[{"name":"a","url":"%[1]s"},
{"name":"","url":"ftp://nowhere","colour":"red"},
{"name":"c","url":"%[1]s","timeout":"soon"}]`, f.backend.URL)
		p := requireProblem(t, call(f.h, http.MethodPost, "/registry/endpoints", body), http.StatusBadRequest, "invalid-json")
		var fields []string
		for _, e := range p.Errors {
			fields = append(fields, e.Field)
			assert.Positive(t, e.Line, "%s is located", e.Field)
		}
		assert.Equal(t, []string{"[1].name", "[1].url", "[1].colour", "[2].timeout"}, fields)
		requireNoneOf(t, f, "a", "c")
	})

	t.Run("an empty array: 400 naming the body", func(t *testing.T) {
		f := newFixture(t)
		p := requireProblem(t, call(f.h, http.MethodPost, "/registry/endpoints", " [ ]\n"), http.StatusBadRequest, "invalid-json")
		assert.Contains(t, p.Detail, "the request body is an empty array")
		assert.Len(t, f.o.Endpoints(), 3, "nothing was registered")
	})

	t.Run("a concurrent reader of the list never sees part of the array", func(t *testing.T) {
		f := newFixture(t)
		const size = 5
		stop := make(chan struct{})
		bad := make(chan string, 1)
		// The reader offers a tick per list and each POST waits for one, so
		// lists are taken all through the POSTs.
		ticks := make(chan struct{}, 1)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				rec := call(f.h, http.MethodGet, "/registry/endpoints?source=api", "")
				var list endpointList
				if err := json.Unmarshal(rec.Body.Bytes(), &list); rec.Code != http.StatusOK || err != nil {
					bad <- fmt.Sprintf("GET /registry/endpoints: %d %s", rec.Code, rec.Body)
					return
				}
				if list.Count%size != 0 {
					bad <- fmt.Sprintf("a reader listed %d API endpoints; want a multiple of %d, whole arrays only", list.Count, size)
					return
				}
				select {
				case ticks <- struct{}{}:
				default:
				}
			}
		}()
		for batch := range 20 {
			select {
			case <-ticks:
			case msg := <-bad:
				t.Fatal(msg)
			}
			var eps []string
			for i := range size {
				eps = append(eps, fmt.Sprintf(`{"name":"b%d-%d","url":"%s"}`, batch, i, f.backend.URL))
			}
			rec := call(f.h, http.MethodPost, "/registry/endpoints", "["+strings.Join(eps, ",")+"]")
			require.Equal(t, http.StatusCreated, rec.Code, "%s", rec.Body)
		}
		close(stop)
		wg.Wait()
		select {
		case msg := <-bad:
			t.Fatal(msg)
		default:
		}
		assert.Len(t, f.o.Endpoints(), 3+20*size)
	})
}

// requireNoneOf asserts that none of the ids is registered, in the gateway
// or in its registry.
func requireNoneOf(t *testing.T, f *fixture, ids ...string) {
	t.Helper()
	snap, err := f.o.Registry().List(context.Background())
	require.NoError(t, err)
	for _, id := range ids {
		_, err := f.o.Endpoint(id)
		assert.ErrorIs(t, err, orchestrator.ErrNotFound, "%s is registered; want none of the array", id)
		for _, reg := range snap.Registrations {
			assert.NotEqual(t, id, reg.Endpoint.ID, "%s is in the registry; want none of the array", id)
		}
	}
}
