package balance_test

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"

	"github.com/orchestrator-go/orchestrator/internal/balance"
)

// target is how a caller keeps per-target state: the Selector reads it
// through the Candidate methods.
type target struct {
	id       string
	weight   int
	inFlight atomic.Int64
	down     atomic.Bool
}

func (t *target) ID() string      { return t.id }
func (t *target) Weight() int     { return t.weight }
func (t *target) InFlight() int64 { return t.inFlight.Load() }
func (t *target) Eligible() bool  { return !t.down.Load() }

// A retry passes the targets already tried in an Exclude, to reach another.
func Example() {
	sel, err := balance.New("round_robin", "")
	if err != nil {
		panic(err)
	}
	a, b, c := &target{id: "a", weight: 5}, &target{id: "b", weight: 1}, &target{id: "c", weight: 1}
	targets := []balance.Candidate{a, b, c}
	r := httptest.NewRequest("GET", "/users", nil)

	var order []string
	for range 7 {
		order = append(order, targets[sel.Select(r, targets, balance.Exclude{})].ID())
	}
	fmt.Println(strings.Join(order, " "))

	var tried balance.Exclude
	for {
		i := sel.Select(r, targets, tried)
		if i < 0 {
			break
		}
		fmt.Print("try ", targets[i].ID(), "; ")
		tried.Add(i)
	}
	fmt.Println("no target left")

	_, err = balance.New("hash", "header:")
	fmt.Println(err)
	// Output:
	// a a b a c a a
	// try a; try b; try c; no target left
	// load_balancing.hash_key: "header:": the header name is empty; want header:NAME, cookie:NAME, query:NAME or client_ip
}
