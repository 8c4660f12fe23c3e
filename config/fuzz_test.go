package config_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/config"
	"github.com/orchestrator-go/orchestrator/internal/yamlconf"
)

// FuzzParse feeds arbitrary bytes to the config parser: it must never
// panic, every rejection must be a located *config.Error, and an accepted
// config must validate, survive a JSON round trip and build a gateway.
func FuzzParse(f *testing.F) {
	f.Add([]byte(cfSeed))
	f.Add([]byte("endpoints:\n  - name: a\n    url: http://127.0.0.1:1\n    timeout: 1.5\n"))
	f.Add([]byte("server: {port: 99999}\nendpoints: [{name: 'x y', url: 'ftp://h'}]\n"))
	f.Add([]byte("{\"endpoints\":[{\"name\":\"a\",\"url\":\"http://127.0.0.1:1\",\"fallback\":{\"strategy\":\"static_response\",\"status\":503}}]}"))
	f.Add([]byte("a: &x {b: 1}\nc: *x\n"))
	f.Add([]byte("endpoints:\n  - name: a\n\turl: x\n"))
	f.Add([]byte(fourProblems))
	f.Add([]byte("endpoints:\n  - name: [x]\n    url: {a: b}\n  - oops\n  - nmae: c\n    id: [d]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse(data, "fuzz.yaml")
		if err != nil {
			var ce *config.Error
			if !errors.As(err, &ce) || len(ce.Errors) == 0 {
				t.Fatalf("rejection is not a located config.Error: %T %v", err, err)
			}
			// Validating what did decode adds problems; it never hides
			// one that decoding found.
			var probe config.Config
			if _, decodeProblems := yamlconf.Decode(data, &probe); ce.Total() < len(decodeProblems) {
				t.Fatalf("got %d problems; decoding alone finds %d", ce.Total(), len(decodeProblems))
			}
			if !strings.HasPrefix(err.Error(), "fuzz.yaml:") {
				t.Fatalf("error does not name the file: %q", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted config does not validate: %v", err)
		}
		js, err := json.Marshal(cfg)
		if err != nil {
			t.Fatalf("accepted config does not encode: %v", err)
		}
		if _, err := config.Parse(js, "roundtrip.json"); err != nil {
			t.Fatalf("accepted config fails its JSON round trip: %v\n%s", err, js)
		}
		o, err := orchestrator.New(append(cfg.Options(), orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Enabled: new(bool)}))...)
		if err != nil {
			t.Fatalf("accepted config does not build a gateway: %v", err)
		}
		o.Close()
	})
}
