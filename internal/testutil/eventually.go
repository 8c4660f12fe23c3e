package testutil

import (
	"testing"
	"time"
)

// pollInterval is how often Eventually evaluates its condition.
const pollInterval = 10 * time.Millisecond

// Eventually evaluates cond at once and then every few milliseconds until
// it reports done, and fails the test (t.Fatalf) once timeout has passed
// without it. what names the awaited state for the failure message, which
// also carries the last description cond returned (may be empty) so that a
// timeout says what was seen instead.
//
// cond runs on the calling goroutine, so it may itself fail the test with
// t.Fatal, say when the server it waits for has exited.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (done bool, last string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		done, last := cond()
		if done {
			return
		}
		if time.Now().After(deadline) {
			if last == "" {
				t.Fatalf("gave up after %v waiting for %s", timeout, what)
			} else {
				t.Fatalf("gave up after %v waiting for %s; last: %s", timeout, what, last)
			}
			return
		}
		<-tick.C
	}
}
