package config_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/orchestrator-go/orchestrator/config"
)

// scaleConfigYAML is the config of BenchmarkParse10000: n endpoints,
// each with durations of both forms.
func scaleConfigYAML(n int) []byte {
	var sb strings.Builder
	sb.WriteString("endpoints:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "  - name: svc%d\n    version: v1\n    url: http://127.0.0.1:%d/api\n    timeout: 30\n    circuit_breaker:\n      reset_timeout: \"1m\"\n", i, 10000+i%50000)
	}
	return []byte(sb.String())
}

// BenchmarkParse10000 decodes a config of 10,000 endpoints, each with
// durations of both forms. It guards against the YAML library's quadratic
// TextUnmarshaler path (minutes at this size before Duration.UnmarshalYAML).
func BenchmarkParse10000(b *testing.B) {
	data := scaleConfigYAML(10000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := config.Parse(data, "big.yaml"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseJSON10000 decodes the same config written as indented
// JSON, which config files may be too.
func BenchmarkParseJSON10000(b *testing.B) {
	cfg, err := config.Parse(scaleConfigYAML(10000), "big.yaml")
	if err != nil {
		b.Fatal(err)
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := config.Parse(data, "big.json"); err != nil {
			b.Fatal(err)
		}
	}
}
