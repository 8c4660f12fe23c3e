//go:build race

package e2e_test

// raceEnabled builds orchestratord with the race detector when the tests
// themselves run with -race: a data race in the server then makes it exit
// 66 instead of 0 at shutdown, which the story test catches.
const raceEnabled = true
