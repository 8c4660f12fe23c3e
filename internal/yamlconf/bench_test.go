package yamlconf_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/orchestrator-go/orchestrator/config"
	"github.com/orchestrator-go/orchestrator/internal/yamlconf"
)

// endpointsYAML is a config of n endpoints as the root package's scale
// benchmarks write it: about 130 bytes and a dozen nodes per endpoint.
func endpointsYAML(n int) []byte {
	var b strings.Builder
	b.WriteString("endpoints:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - name: svc%d\n    version: v1\n    url: http://127.0.0.1:%d/api\n    timeout: 30\n    circuit_breaker:\n      reset_timeout: \"1m\"\n", i, 10000+i%50000)
	}
	return []byte(b.String())
}

// endpointsJSON is the same config as indented JSON.
func endpointsJSON(tb testing.TB, n int) []byte {
	var cfg config.Config
	if _, problems := yamlconf.Decode(endpointsYAML(n), &cfg); len(problems) > 0 {
		tb.Fatal(problems)
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// BenchmarkDecode10000 decodes a config of 10,000 endpoints: on the fast
// path as YAML and as JSON, and on goccy/go-yaml's path when one endpoint
// has a misspelt field (a config with a problem is always checked there).
func BenchmarkDecode10000(b *testing.B) {
	yamlDoc := endpointsYAML(10000)
	typo := append(append([]byte(nil), yamlDoc...), "  - nmae: x\n"...)
	for _, c := range []struct {
		name     string
		data     []byte
		problems bool
	}{
		{"yaml", yamlDoc, false},
		{"json", endpointsJSON(b, 10000), false},
		{"yaml-with-a-typo", typo, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.data)))
			b.ReportAllocs()
			for b.Loop() {
				var cfg config.Config
				_, problems := yamlconf.Decode(c.data, &cfg)
				if (len(problems) > 0) != c.problems {
					b.Fatalf("got problems %v; want problems: %v", problems, c.problems)
				}
			}
		})
	}
}

// BenchmarkPrescan10000 is prescan alone on the config of
// BenchmarkDecode10000, as YAML and as JSON: what Decode adds before
// goccy/go-yaml reads a file (the fast path does not run it).
func BenchmarkPrescan10000(b *testing.B) {
	for name, data := range map[string][]byte{"yaml": endpointsYAML(10000), "json": endpointsJSON(b, 10000)} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if problems := yamlconf.Prescan(data); problems != nil {
					b.Fatal(problems)
				}
			}
		})
	}
}

// BenchmarkHostileInputs decodes each hostile input of 1 MiB and 4 MiB
// (see hostileInputs), and inputs as large that stay within the limits but
// take goccy/go-yaml's path (goccyHeavy), and reports the allocation per
// byte of input. Run it with -benchtime=1x: an operation is one input.
func BenchmarkHostileInputs(b *testing.B) {
	for _, size := range []int{1 << 20, 4 << 20} {
		for _, h := range append(hostileInputs(size), goccyHeavy(size)...) {
			b.Run(fmt.Sprintf("%dMiB/%s", size>>20, h.name), func(b *testing.B) {
				b.SetBytes(int64(len(h.data)))
				b.ReportAllocs()
				var alloc uint64
				for b.Loop() {
					var cfg config.Config
					alloc += allocated(func() { yamlconf.Decode(h.data, &cfg) })
				}
				b.ReportMetric(float64(alloc)/float64(b.N)/float64(len(h.data)), "B-alloc/B-input")
			})
		}
	}
}

// BenchmarkReferencePath decodes the valid configs only the reference path
// reads (referenceShapes) at 32 KiB, at 63 KiB (the largest Decode gives
// it) and at 1 MiB, with the heap's peak per MiB of input: what the
// 64 KiB limit on that path rests on. At 1 MiB Decode refuses them, so
// the reference path (DecodeChecked) is run directly there.
func BenchmarkReferencePath(b *testing.B) {
	for _, size := range []int{32 << 10, 63 << 10, 1 << 20} {
		for _, h := range referenceShapes(size) {
			if size > 64<<10 && h.name == "an alias on every endpoint" {
				continue // past the limit on aliases at this size
			}
			b.Run(fmt.Sprintf("%dKiB/%s", size>>10, h.name), func(b *testing.B) {
				b.SetBytes(int64(len(h.data)))
				var peak uint64
				for b.Loop() {
					var cfg config.Config
					peak = max(peak, peakHeap(func() {
						if _, problems := yamlconf.DecodeChecked(h.data, &cfg); len(problems) > 0 {
							b.Fatal(problems)
						}
					}))
				}
				b.ReportMetric(float64(peak)/float64(len(h.data)), "peak-B/B-input")
			})
		}
	}
}
