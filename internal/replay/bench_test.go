package replay_test

import (
	"io"
	"strings"
	"testing"

	"github.com/orchestrator-go/orchestrator/internal/replay"
)

// BenchmarkFirstAttempt is the cost the tee adds to a request that is not
// retried: wrap a 1 KiB body, read it through one attempt, close.
func BenchmarkFirstAttempt(b *testing.B) {
	payload := strings.Repeat("p", 1024)
	src := strings.NewReader(payload)
	buf := make([]byte, 32<<10)
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(payload)
		body := replay.New(io.NopCloser(src), 64<<10)
		a, _ := body.Replay()
		for {
			if _, err := a.Read(buf); err != nil {
				break
			}
		}
		_ = a.Close()
		_ = body.Close()
	}
}
