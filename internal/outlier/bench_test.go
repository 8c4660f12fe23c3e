package outlier_test

import (
	"testing"
	"time"

	"github.com/orchestrator-go/orchestrator/internal/outlier"
)

// BenchmarkRecordSuccess is the common case: a healthy target's request
// ends well. It only reads the target's count.
func BenchmarkRecordSuccess(b *testing.B) {
	d, _ := outlier.New(outlier.Config{}, 3, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d.Record(1, false)
		}
	})
}

// BenchmarkRecordFailure fails a target that is ejected on the first run:
// every later call is the ejected-target check.
func BenchmarkRecordFailure(b *testing.B) {
	d, _ := outlier.New(outlier.Config{MaxEjectionPercent: 100}, 3, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d.Record(2, true)
		}
	})
}

// BenchmarkEjected is the balancer's look at each target before choosing.
func BenchmarkEjected(b *testing.B) {
	d, _ := outlier.New(outlier.Config{ConsecutiveFailures: intp(1), MaxEjectionPercent: 100}, 3, nil)
	d.Record(0, true) // one target out, two in
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			for i := range 3 {
				d.Ejected(i, now)
			}
		}
	})
}
