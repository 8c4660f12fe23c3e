package orchestrator

import "github.com/orchestrator-go/orchestrator/internal/balance"

// Selector chooses the target of a request among an endpoint's targets.
// The built-in policies (round_robin, least_requests, random, hash, first)
// are Selectors; an embedder sets its own in LoadBalancingConfig.Selector.
//
// Select returns the index in targets of the target r goes to, or -1 when
// none is usable: a usable target has Eligible true, a Weight above zero
// and an index not in exclude (the targets a retry has already tried).
// Select must not modify r or targets and must be safe for concurrent use;
// it runs on every request, so it should not allocate.
type Selector = balance.Selector

// Candidate is one target as a Selector sees it: its ID, Weight (0 when
// drained), requests InFlight, and whether it is Eligible (not unhealthy
// by probes, not ejected, breaker not open; every target in panic mode).
type Candidate = balance.Candidate

// Exclude is the set of target indexes a Selector must skip: those a retry
// has already tried. Has(i) tests one.
type Exclude = balance.Exclude
