package orchestrator

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkRouteLookupFlatness answers "is lookup flat from 10 to 10,000
// endpoints?" on a noisy machine: it alternates short timed blocks of
// lookups, so that every case sees the same machine, and reports each
// case's median ns per lookup and its ratio to the 10-endpoint table
// (target: at most 1.10). The cases:
//
//   - 10: a table of 10 endpoints (svc0, svc1000, ... svc9000), requests
//     cycling over all 10;
//   - 10000: a table of 10,000 (svc0 ... svc9999), requests cycling over
//     the same 10 names: only the table's size differs;
//   - 10000-spread: the same table, requests cycling over 64 names spread
//     across it: the traffic also touches more memory.
func BenchmarkRouteLookupFlatness(b *testing.B) {
	const block = 1 << 16
	type table struct {
		t     *routeTable
		paths []string
		ns    []float64
	}
	cases := []struct {
		name      string
		endpoints int
		hot       int // distinct names the requests cycle over
	}{{"10", 10, 10}, {"10000", 10000, 10}, {"10000-spread", 10000, 64}}
	tables := make([]*table, len(cases))
	for i, c := range cases {
		eps := scaleEndpoints(10000)
		if c.endpoints == 10 {
			// The names the 10,000-endpoint case sends its requests to.
			for j := range 10 {
				eps[j] = eps[j*1000]
			}
			eps = eps[:10]
		}
		o, err := New(WithMetrics(false), WithHealthCheck(HealthCheckConfig{Enabled: new(bool)}), WithEndpoints(eps...))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { o.Close() })
		tb := &table{t: o.table.Load(), paths: make([]string, 64)}
		for j := range tb.paths {
			tb.paths[j] = fmt.Sprintf("/svc%d/v1/users/42", (j%c.hot)*(10000/c.hot))
		}
		tables[i] = tb
	}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		for _, tb := range tables {
			start := time.Now()
			for i := 0; i < block; i++ {
				if rt, _ := tb.t.lookup(tb.paths[i&63]); rt == nil {
					b.Fatal("no route")
				}
			}
			tb.ns = append(tb.ns, float64(time.Since(start).Nanoseconds())/block)
		}
		done += block
	}
	b.StopTimer()
	median := func(v []float64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		return v[len(v)/2]
	}
	base := median(tables[0].ns)
	for i, c := range cases {
		m := median(tables[i].ns)
		b.ReportMetric(m, "ns/lookup@"+c.name)
		if i > 0 {
			b.ReportMetric(m/base, "ratio@"+c.name)
		}
	}
}
