package config_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/config"
)

// cfSeed is the seed config of docs/DESIGN.md, verbatim (../testdata/seed.yaml,
// the one copy every test reads). It must load as is.
var cfSeed = mustReadSeed()

func mustReadSeed() string {
	b, err := os.ReadFile("../testdata/seed.yaml")
	if err != nil {
		panic(err)
	}
	return string(b)
}

// cfError parses data and returns its *config.Error, failing the test
// when parsing succeeds or fails with another type.
func cfError(t *testing.T, data, name string) *config.Error {
	t.Helper()
	cfg, err := config.Parse([]byte(data), name)
	require.Error(t, err, "got config %v and nil error; want a *config.Error", cfg)
	assert.Nil(t, cfg, "got a config alongside an error; want nil")
	var ce *config.Error
	require.True(t, errors.As(err, &ce), "got %T (%v); want *config.Error", err, err)
	assert.True(t, errors.Is(err, orchestrator.ErrInvalid), "got errors.Is(err, ErrInvalid) false; want true")
	return ce
}

// cfLines returns the error's lines.
func cfLines(ce *config.Error) []string {
	return strings.Split(ce.Error(), "\n")
}

func cfBool(b bool) *bool { return &b }

func TestConfigSeedLoadsUnmodified(t *testing.T) {
	check := func(t *testing.T, cfg *config.Config) {
		t.Helper()
		require.Len(t, cfg.Endpoints, 1)
		want := orchestrator.Endpoint{
			URL:             "https://api.example.com/v1",
			Name:            "example_api",
			Version:         "v1",
			Methods:         []string{"GET", "POST"},
			AuthType:        orchestrator.AuthBearer,
			Disabled:        false,
			HealthCheckPath: "/health",
			Timeout:         orchestrator.Duration(30 * time.Second),
		}
		assert.Equal(t, want, cfg.Endpoints[0])
		assert.Equal(t, "example_api_v1", cfg.Endpoints[0].EndpointID())
		assert.Equal(t, orchestrator.CircuitBreakerConfig{
			FailureThreshold: 5,
			ResetTimeout:     orchestrator.Duration(60 * time.Second),
			FallbackStrategy: orchestrator.FallbackErrorResponse,
		}, cfg.CircuitBreaker)
		assert.Equal(t, orchestrator.HealthCheckConfig{
			Enabled:            cfBool(true),
			Interval:           orchestrator.Duration(30 * time.Second),
			Timeout:            orchestrator.Duration(10 * time.Second),
			UnhealthyThreshold: 3,
			HealthyThreshold:   2,
		}, cfg.HealthCheck)
		assert.NoError(t, cfg.Validate())
	}
	t.Run("Parse loads the seed config of docs/DESIGN.md as is", func(t *testing.T) {
		cfg, err := config.Parse([]byte(cfSeed), "seed.yaml")
		require.NoError(t, err)
		check(t, cfg)
	})
	t.Run("Load loads the seed config from a file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "config.yaml")
		require.NoError(t, os.WriteFile(path, []byte(cfSeed), 0o600))
		cfg, err := config.Load(path)
		require.NoError(t, err)
		check(t, cfg)
	})
	t.Run("the seed config builds a gateway", func(t *testing.T) {
		cfg, err := config.Parse([]byte(cfSeed), "seed.yaml")
		require.NoError(t, err)
		// No probe may reach api.example.com from a test.
		cfg.HealthCheck.Enabled = cfBool(false)
		o, err := orchestrator.New(cfg.Options()...)
		require.NoError(t, err)
		defer o.Close()
		ids := []string{}
		for _, ep := range o.Endpoints() {
			ids = append(ids, ep.ID)
		}
		assert.Equal(t, []string{"example_api_v1"}, ids)
	})
}

func TestConfigDurations(t *testing.T) {
	cases := []struct {
		name, value string
		want        time.Duration
	}{
		{"a bare number is seconds", "30", 30 * time.Second},
		{"a bare fraction is seconds", "1.5", 1500 * time.Millisecond},
		{"a Go duration string in milliseconds is read as such", `"250ms"`, 250 * time.Millisecond},
		{"a compound Go duration string is read as such", `"1m30s"`, 90 * time.Second},
		{"an unquoted Go duration is read as such", "2m", 2 * time.Minute},
		{"a quoted number is seconds", `"45"`, 45 * time.Second},
		{"zero means unset", "0", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := "endpoints:\n  - name: a\n    url: http://127.0.0.1:1\n    timeout: " + c.value + "\n"
			cfg, err := config.Parse([]byte(data), "d.yaml")
			require.NoError(t, err)
			require.Len(t, cfg.Endpoints, 1)
			got := cfg.Endpoints[0].Timeout.Std()
			assert.Equal(t, c.want, got, "got %v; want %v", got, c.want)
		})
	}
	t.Run("every duration field accepts both forms", func(t *testing.T) {
		data := `server:
  shutdown_timeout: 5
  read_header_timeout: "2s"
  read_timeout: 7
  write_timeout: "1m"
  idle_timeout: 90
cors:
  max_age: "10m"
circuit_breaker:
  reset_timeout: "1m30s"
health_check:
  interval: 0.5
  timeout: "100ms"
`
		cfg, err := config.Parse([]byte(data), "d.yaml")
		require.NoError(t, err)
		assert.Equal(t, 5*time.Second, cfg.Server.ShutdownTimeout.Std())
		assert.Equal(t, 2*time.Second, cfg.Server.ReadHeaderTimeout.Std())
		assert.Equal(t, 7*time.Second, cfg.Server.ReadTimeout.Std())
		assert.Equal(t, time.Minute, cfg.Server.WriteTimeout.Std())
		assert.Equal(t, 90*time.Second, cfg.Server.IdleTimeout.Std())
		assert.Equal(t, 10*time.Minute, cfg.CORS.MaxAge.Std())
		assert.Equal(t, 90*time.Second, cfg.CircuitBreaker.ResetTimeout.Std())
		assert.Equal(t, 500*time.Millisecond, cfg.HealthCheck.Interval.Std())
		assert.Equal(t, 100*time.Millisecond, cfg.HealthCheck.Timeout.Std())
	})
	bad := []struct {
		name, value, wantMsg string
	}{
		{"a word is an error located at the value", `"soon"`, `endpoints[0].timeout: invalid duration "soon"`},
		{"a negative number is an error located at the value", "-3", `endpoints[0].timeout: duration "-3" must not be negative`},
		{"a negative Go duration is an error located at the value", `"-1s"`, `endpoints[0].timeout: duration "-1s" must not be negative`},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			data := "endpoints:\n  - name: a\n    url: http://127.0.0.1:1\n    timeout: " + c.value + "\n"
			ce := cfError(t, data, "d.yaml")
			lines := cfLines(ce)
			require.Len(t, lines, 1, "got %q; want one error", lines)
			assert.True(t, strings.HasPrefix(lines[0], "d.yaml:4:14: "+c.wantMsg), "got %q; want it to start with %q", lines[0], "d.yaml:4:14: "+c.wantMsg)
		})
	}
}

func TestConfigUnknownFieldsAreErrors(t *testing.T) {
	cases := []struct {
		name, data string
		want       []string
	}{
		{
			name: "an unknown top-level section is named with its line and a suggestion",
			data: "endpoint:\n  - name: a\n",
			want: []string{`u.yaml:1:1: endpoint: unknown field "endpoint" (did you mean "endpoints"?)`},
		},
		{
			name: "an unknown server field is named with its path",
			data: "server:\n  prot: 8080\n",
			want: []string{`u.yaml:2:3: server.prot: unknown field "prot" (did you mean "port"?)`},
		},
		{
			name: "an unknown endpoint field is named with its index",
			data: "endpoints:\n  - name: a\n    url: http://127.0.0.1:1\n  - name: b\n    url: http://127.0.0.1:2\n    timout: 3\n",
			want: []string{`u.yaml:6:5: endpoints[1].timout: unknown field "timout" (did you mean "timeout"?)`},
		},
		{
			name: "an unknown field deep in an endpoint override is named",
			data: "endpoints:\n  - name: a\n    url: http://127.0.0.1:1\n    circuit_breaker:\n      threshold: 3\n",
			want: []string{`u.yaml:5:7: endpoints[0].circuit_breaker.threshold: unknown field "threshold"`},
		},
		{
			name: "a field far from every known one gets no suggestion",
			data: "registry:\n  backend: etcd\n",
			want: []string{`u.yaml:2:3: registry.backend: unknown field "backend"`},
		},
		{
			// The url the endpoint lacks is reported too; its name, which
			// "nme" was likely meant to be, is not reported missing.
			name: "every unknown field of the file is reported at once, with what else is wrong",
			data: "servr: {}\nlogging:\n  levl: info\n  colour: true\nendpoints:\n  - nme: a\n",
			want: []string{
				`u.yaml:1:1: servr: unknown field "servr" (did you mean "server"?)`,
				`u.yaml:3:3: logging.levl: unknown field "levl" (did you mean "level"?)`,
				`u.yaml:4:3: logging.colour: unknown field "colour"`,
				`u.yaml:6:5: endpoints[0].nme: unknown field "nme" (did you mean "name"?)`,
				`u.yaml:6:5: endpoints[0].url: is required`,
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ce := cfError(t, c.data, "u.yaml")
			got := cfLines(ce)
			assert.Equal(t, c.want, got, "got %q; want %q", got, c.want)
		})
	}
}

func TestConfigWrongTypesAreErrors(t *testing.T) {
	data := `server:
  port: eighty
  max_header_bytes: [1]
  tls: yes please
logging:
  access_log: sometimes
endpoints:
  name: a
`
	ce := cfError(t, data, "types.yaml")
	want := []string{
		"types.yaml:2:9: server.port: must be a whole number",
		"types.yaml:3:21: server.max_header_bytes: must be a whole number",
		"types.yaml:4:8: server.tls: must be a mapping of field: value",
		"types.yaml:6:15: logging.access_log: must be true or false",
		"types.yaml:8:3: endpoints: must be a list",
	}
	got := cfLines(ce)
	assert.Equal(t, want, got, "got %q; want %q", got, want)
}

func TestConfigEveryErrorIsLocated(t *testing.T) {
	t.Run("every validation error is reported with line, column and field path, in file order", func(t *testing.T) {
		data := `server:
  port: 70000
  prefix: "no-slash"
logging:
  level: loud
  format: xml
endpoints:
  - url: "ftp://x"
    name: "a b"
    methods: [GET, "P T"]
  - name: b
    timeout: 1m
  - name: b
    url: http://127.0.0.1:1
    fallback:
      strategy: fallback_endpoint
      endpoint: nowhere
circuit_breaker:
  failure_threshold: -1
  fallback_strategy: shrug
health_check:
  healthy_threshold: -2
metrics:
  labels:
    gateway: eu-1
    endpoint: x
`
		ce := cfError(t, data, "every.yaml")
		assert.Equal(t, "every.yaml", ce.File)
		want := []string{
			`every.yaml:2:9: server.port: 70000 is not a TCP port (1-65535)`,
			`every.yaml:3:11: server.prefix: "no-slash" must be an absolute path such as /orchestrator`,
			`every.yaml:5:10: logging.level: unknown level "loud"; want debug, info, warn or error`,
			`every.yaml:6:11: logging.format: unknown format "xml"; want json or text`,
			`every.yaml:8:10: endpoints[0].url: "ftp://x" must use http or https`,
			`every.yaml:9:11: endpoints[0].name: "a b" must match [A-Za-z0-9][A-Za-z0-9._-]*`,
			`every.yaml:10:20: endpoints[0].methods[1]: "P T" is not an HTTP method`,
			`every.yaml:11:5: endpoints[1].url: is required`,
			`every.yaml:13:5: endpoints[2].id: duplicate id "b" (also endpoints[1])`,
			`every.yaml:13:5: endpoints[2]: route /b is already served by endpoints[1]`,
			`every.yaml:17:17: endpoints[2].fallback.endpoint: no endpoint in this file has id "nowhere"`,
			`every.yaml:19:22: circuit_breaker.failure_threshold: must be > 0`,
			`every.yaml:20:22: circuit_breaker.fallback_strategy: unknown strategy "shrug"; want error_response, static_response or fallback_endpoint`,
			`every.yaml:22:22: health_check.healthy_threshold: must be > 0`,
			`every.yaml:26:15: metrics.labels.endpoint: label name "endpoint" is taken: the gateway's series use endpoint, method, status, kind, source, result, target, le, quantile, vmrange`,
		}
		got := cfLines(ce)
		assert.Equal(t, want, got, "got %q; want %q", got, want)
		for _, fe := range ce.Errors {
			assert.NotEmpty(t, fe.Field, "got an error with no field path: %+v", fe)
			assert.Positive(t, fe.Line, "got line %d; want > 0: %+v", fe.Line, fe)
			assert.Positive(t, fe.Column, "got column %d; want > 0: %+v", fe.Column, fe)
		}
	})
	t.Run("a missing required field is located at the start of its mapping", func(t *testing.T) {
		ce := cfError(t, "endpoints:\n  -   name: a\n      version: v1\n", "m.yaml")
		got := cfLines(ce)
		want := []string{"m.yaml:2:7: endpoints[0].url: is required"}
		assert.Equal(t, want, got, "got %q; want %q", got, want)
	})
	t.Run("a breaker section with both a count and a rate is located at the rate", func(t *testing.T) {
		data := "circuit_breaker:\n  failure_threshold: 3\nendpoints:\n  - name: a\n    url: http://127.0.0.1:1\n    circuit_breaker:\n      failure_threshold: 4\n      failure_rate_threshold: 50\n  - name: b\n    url: http://127.0.0.1:2\n    circuit_breaker:\n      failure_rate_threshold: 50\n"
		ce := cfError(t, data, "cb.yaml")
		got := cfLines(ce)
		// Endpoint b's rate under the global count is a valid choice of mode.
		want := []string{"cb.yaml:8:31: endpoints[0].circuit_breaker.failure_rate_threshold: set together with failure_threshold: a breaker counts either consecutive failures (failure_threshold) or a failure rate (failure_rate_threshold), not both"}
		assert.Equal(t, want, got, "got %q; want %q", got, want)
	})
	t.Run("header rules that touch the hop or carry the admin token are located", func(t *testing.T) {
		data := "admin:\n  token: s3cret-admin-token\nendpoints:\n  - name: a\n    url: http://127.0.0.1:1\n    request_headers:\n      set:\n        X-Token: \"Bearer s3cret-admin-token\"\n      remove: [TE]\n    response_headers:\n      add:\n        X-Ok: fine\n"
		ce := cfError(t, data, "hr.yaml")
		got := cfLines(ce)
		want := []string{
			"hr.yaml:8:18: endpoints[0].request_headers.set.X-Token: holds the admin token, which never leaves the gateway",
			"hr.yaml:9:16: endpoints[0].request_headers.remove[0]: TE is a hop-by-hop header, which belongs to one connection; a rule cannot remove it",
		}
		assert.Equal(t, want, got, "got %q; want %q", got, want)
		assert.NotContains(t, ce.Error(), "s3cret", "the token is not echoed")
	})
	t.Run("rate_limit is one mapping or a list, each located", func(t *testing.T) {
		data := "rate_limit:\n  requests_per_second: 100\nendpoints:\n  - name: a\n    url: http://127.0.0.1:1\n    rate_limit:\n      requests_per_second: 0\n      colour: x\n  - name: b\n    url: http://127.0.0.1:2\n    rate_limit:\n      - requests_per_second: 5\n      - requests_per_second: -1\n        key: cookie:x\n"
		ce := cfError(t, data, "rl.yaml")
		want := []string{
			"rl.yaml:7:28: endpoints[0].rate_limit.requests_per_second: must be above 0 (and at most 1e9)",
			`rl.yaml:8:7: endpoints[0].rate_limit.colour: unknown field "colour"`,
			"rl.yaml:13:30: endpoints[1].rate_limit[1].requests_per_second: must be above 0 (and at most 1e9)",
			`rl.yaml:14:14: endpoints[1].rate_limit[1].key: unknown key "cookie:x"; want none, client_ip or header:NAME`,
		}
		got := cfLines(ce)
		require.Len(t, got, len(want), "got %q", got)
		for i := range want {
			assert.True(t, strings.HasPrefix(got[i], want[i]), "got %q; want it to start with %q", got[i], want[i])
		}
	})
	t.Run("a valid rate_limit decodes in both forms", func(t *testing.T) {
		cfg, err := config.Parse([]byte("rate_limit:\n  requests_per_second: 100\n  key: client_ip\nendpoints:\n  - name: a\n    url: http://127.0.0.1:1\n    rate_limit:\n      - requests_per_second: 5\n      - requests_per_second: 1\n        burst: 3\n        key: header:X-Api-Key\n"), "ok.yaml")
		require.NoError(t, err)
		assert.Equal(t, orchestrator.RateLimits{{RequestsPerSecond: 100, Key: "client_ip"}}, cfg.RateLimit)
		require.NotNil(t, cfg.Endpoints[0].RateLimit)
		assert.Equal(t, orchestrator.RateLimits{{RequestsPerSecond: 5}, {RequestsPerSecond: 1, Burst: 3, Key: "header:X-Api-Key"}}, *cfg.Endpoints[0].RateLimit)
	})
	t.Run("a YAML syntax error is located", func(t *testing.T) {
		ce := cfError(t, "endpoints:\n  - name: a\n    url: [http://x\n", "syntax.yaml")
		require.Len(t, ce.Errors, 1)
		fe := ce.Errors[0]
		assert.Equal(t, 3, fe.Line, "got line %d; want 3", fe.Line)
		assert.Positive(t, fe.Column, "got column %d; want > 0", fe.Column)
		assert.True(t, strings.HasPrefix(ce.Error(), "syntax.yaml:3:"), "got %q; want it to start with syntax.yaml:3:", ce.Error())
	})
	t.Run("a tab used for indentation is located", func(t *testing.T) {
		ce := cfError(t, "endpoints:\n  - name: a\n\turl: x\n", "tab.yaml")
		require.Len(t, ce.Errors, 1)
		assert.Equal(t, 3, ce.Errors[0].Line, "got line %d; want 3", ce.Errors[0].Line)
	})
}

func TestConfigJSON(t *testing.T) {
	t.Run("a JSON config loads like the same YAML", func(t *testing.T) {
		data := `{
  "server": {"port": 9000, "shutdown_timeout": "5s"},
  "endpoints": [
    {"name": "users", "version": "v1", "url": "https://users.example.com/api", "timeout": 2.5, "methods": ["get"]},
    {"name": "orders", "url": "https://orders.example.com", "timeout": "250ms"}
  ],
  "circuit_breaker": {"failure_threshold": 3, "reset_timeout": 10}
}`
		cfg, err := config.Parse([]byte(data), "c.json")
		require.NoError(t, err)
		assert.Equal(t, 9000, cfg.Server.Port)
		assert.Equal(t, 5*time.Second, cfg.Server.ShutdownTimeout.Std())
		require.Len(t, cfg.Endpoints, 2)
		assert.Equal(t, "users_v1", cfg.Endpoints[0].EndpointID())
		assert.Equal(t, 2500*time.Millisecond, cfg.Endpoints[0].Timeout.Std())
		assert.Equal(t, 250*time.Millisecond, cfg.Endpoints[1].Timeout.Std())
		assert.Equal(t, 3, cfg.CircuitBreaker.FailureThreshold)
		assert.Equal(t, 10*time.Second, cfg.CircuitBreaker.ResetTimeout.Std())
	})
	t.Run("the seed config written as JSON loads the same as the YAML", func(t *testing.T) {
		fromYAML, err := config.Parse([]byte(cfSeed), "seed.yaml")
		require.NoError(t, err)
		asJSON, err := json.Marshal(fromYAML)
		require.NoError(t, err)
		fromJSON, err := config.Parse(asJSON, "seed.json")
		require.NoError(t, err, "JSON: %s", asJSON)
		assert.Equal(t, fromYAML, fromJSON)
	})
	t.Run("an unknown JSON field is located", func(t *testing.T) {
		data := "{\n  \"endpoints\": [\n    {\"name\": \"a\", \"url\": \"http://x\", \"timout\": 3}\n  ]\n}\n"
		ce := cfError(t, data, "c.json")
		got := cfLines(ce)
		want := []string{`c.json:3:38: endpoints[0].timout: unknown field "timout" (did you mean "timeout"?)`}
		assert.Equal(t, want, got, "got %q; want %q", got, want)
	})
	t.Run("a JSON validation error is located", func(t *testing.T) {
		data := "{\n  \"server\": {\"port\": 99999}\n}\n"
		ce := cfError(t, data, "c.json")
		got := cfLines(ce)
		want := []string{"c.json:2:22: server.port: 99999 is not a TCP port (1-65535)"}
		assert.Equal(t, want, got, "got %q; want %q", got, want)
	})
}

func TestConfigEmptyAndMissingFiles(t *testing.T) {
	// A file truncated for a rewrite is empty for a moment: it must never
	// pass for a config that serves nothing.
	for name, content := range map[string]string{
		"an empty file":                     "",
		"a file of comments only":           "# nothing yet\n",
		"a lone document marker":            "---\n",
		"a null endpoints list":             "endpoints: ~\n",
		"an endpoints key with no value":    "server:\n  port: 8000\nendpoints:\n",
		"a null endpoints list after a BOM": "\xef\xbb\xbfendpoints: ~\n",
	} {
		t.Run(name+" is an error", func(t *testing.T) {
			_, err := config.Parse([]byte(content), "c.yaml")
			var ce *config.Error
			require.ErrorAs(t, err, &ce)
			assert.Regexp(t, `^c\.yaml:\d+:\d+: `, err.Error())
		})
	}
	t.Run("endpoints: [] is a valid config with no endpoints", func(t *testing.T) {
		cfg, err := config.Parse([]byte("endpoints: []\n"), "e.yaml")
		require.NoError(t, err)
		assert.Empty(t, cfg.Endpoints)
	})
	t.Run("a null endpoints list is located", func(t *testing.T) {
		_, err := config.Parse([]byte("server:\n  port: 8000\nendpoints:\n"), "c.yaml")
		require.Error(t, err)
		assert.Regexp(t, `^c\.yaml:3:\d+: endpoints: is null; write "endpoints: \[\]"`, err.Error())
	})
	t.Run("a file past its server.max_config_bytes is refused", func(t *testing.T) {
		content := "server:\n  max_config_bytes: 64\nendpoints: []\n# " + strings.Repeat("x", 64) + "\n"
		_, err := config.Parse([]byte(content), "big.yaml")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "big.yaml:2:21: server.max_config_bytes: the file is")
	})
	t.Run("Load of a missing file answers a not-exist error", func(t *testing.T) {
		_, err := config.Load(filepath.Join(t.TempDir(), "absent.yaml"))
		require.Error(t, err)
		assert.True(t, errors.Is(err, fs.ErrNotExist), "got %v; want fs.ErrNotExist", err)
	})
	t.Run("Load names the file in its errors", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "bad.yaml")
		require.NoError(t, os.WriteFile(path, []byte("server:\n  port: -1\n"), 0o600))
		_, err := config.Load(path)
		require.Error(t, err)
		want := path + ":2:9: server.port: -1 is not a TCP port (1-65535)"
		assert.Equal(t, want, err.Error(), "got %q; want %q", err.Error(), want)
	})
}

func TestConfigValidateRules(t *testing.T) {
	ep := func(name string) orchestrator.Endpoint {
		return orchestrator.Endpoint{Name: name, URL: "http://127.0.0.1:1/" + name}
	}
	cases := []struct {
		name   string
		mutate func(c *config.Config)
		want   []string // field paths, in order
	}{
		{"a port above 65535 is refused", func(c *config.Config) { c.Server.Port = 65536 }, []string{"server.port"}},
		{"a negative port is refused", func(c *config.Config) { c.Server.Port = -1 }, []string{"server.port"}},
		{"a host with a space is refused", func(c *config.Config) { c.Server.Host = "local host" }, []string{"server.host"}},
		{"a host with a slash is refused", func(c *config.Config) { c.Server.Host = "http://x" }, []string{"server.host"}},
		{"a relative prefix is refused", func(c *config.Config) { c.Server.Prefix = "api" }, []string{"server.prefix"}},
		{"a prefix with a dot segment is refused", func(c *config.Config) { c.Server.Prefix = "/a/../b" }, []string{"server.prefix"}},
		{"negative max_header_bytes is refused", func(c *config.Config) { c.Server.MaxHeaderBytes = -1 }, []string{"server.max_header_bytes"}},
		{"negative max_body_bytes is refused", func(c *config.Config) { c.Server.MaxBodyBytes = -1 }, []string{"server.max_body_bytes"}},
		{"a certificate without its key is refused", func(c *config.Config) { c.Server.TLS.CertFile = "cert.pem" }, []string{"server.tls"}},
		{"a key without its certificate is refused", func(c *config.Config) { c.Server.TLS.KeyFile = "key.pem" }, []string{"server.tls"}},
		{"a bad trusted proxy is refused by index", func(c *config.Config) {
			c.Server.TrustedProxies = []string{"10.0.0.0/8", "not-an-ip", "10.0.0.0/99"}
		}, []string{"server.trusted_proxies[1]", "server.trusted_proxies[2]"}},
		{"an admin listen address without a port is refused", func(c *config.Config) { c.Admin.Listen = "127.0.0.1" }, []string{"admin.listen"}},
		{"an admin listen address with a bad port is refused", func(c *config.Config) { c.Admin.Listen = "127.0.0.1:99999" }, []string{"admin.listen"}},
		{"an admin origin that is not an origin is refused", func(c *config.Config) {
			c.Admin.AllowedOrigins = []string{"https://ok.example.com", "ok.example.com", "https://x.example.com/path"}
		}, []string{"admin.allowed_origins[1]", "admin.allowed_origins[2]"}},
		{"a CORS origin that is not an origin is refused", func(c *config.Config) {
			c.CORS.AllowedOrigins = []string{"*", "ftp://x"}
		}, []string{"cors.allowed_origins[1]"}},
		{"credentials with the * origin are refused", func(c *config.Config) {
			c.CORS.AllowedOrigins = []string{"*"}
			c.CORS.AllowCredentials = true
		}, []string{"cors.allow_credentials"}},
		{"an unknown log level is refused", func(c *config.Config) { c.Logging.Level = "verbose" }, []string{"logging.level"}},
		{"an unknown log format is refused", func(c *config.Config) { c.Logging.Format = "xml" }, []string{"logging.format"}},
		{"bad metrics labels are refused by name, in name order", func(c *config.Config) {
			c.Metrics.Labels = map[string]string{"gateway": "a", "zone-1": "z", "endpoint": "x", "__meta": "m", "empty": ""}
		}, []string{"metrics.labels.__meta", "metrics.labels.empty", "metrics.labels.endpoint", "metrics.labels.zone-1"}},
		{"bad global breaker settings are refused", func(c *config.Config) {
			c.CircuitBreaker = orchestrator.CircuitBreakerConfig{FailureThreshold: -1, HalfOpenRequests: -1, ResetTimeout: -1, FailureStatuses: []int{500, 700}, FallbackStrategy: "retry"}
		}, []string{"circuit_breaker.failure_threshold", "circuit_breaker.half_open_requests", "circuit_breaker.reset_timeout", "circuit_breaker.failure_statuses[1]", "circuit_breaker.fallback_strategy"}},
		{"bad global health settings are refused", func(c *config.Config) {
			c.HealthCheck = orchestrator.HealthCheckConfig{UnhealthyThreshold: -1, HealthyThreshold: -1, Interval: orchestrator.Duration(time.Microsecond), Timeout: -1}
		}, []string{"health_check.unhealthy_threshold", "health_check.healthy_threshold", "health_check.interval", "health_check.timeout"}},
		{"duplicate endpoint ids are refused", func(c *config.Config) {
			a, b := ep("a"), ep("b")
			b.ID = "a"
			c.Endpoints = []orchestrator.Endpoint{a, b}
		}, []string{"endpoints[1].id"}},
		{"two endpoints on one route are refused", func(c *config.Config) {
			a, b := ep("a"), ep("a")
			b.ID = "a2"
			c.Endpoints = []orchestrator.Endpoint{a, b}
		}, []string{"endpoints[1]"}},
		{"a fallback endpoint missing from the file is refused", func(c *config.Config) {
			a := ep("a")
			a.Fallback = &orchestrator.FallbackConfig{Strategy: orchestrator.FallbackEndpoint, Endpoint: "ghost"}
			c.Endpoints = []orchestrator.Endpoint{a}
		}, []string{"endpoints[0].fallback.endpoint"}},
		{"an invalid endpoint is refused by index", func(c *config.Config) {
			c.Endpoints = []orchestrator.Endpoint{ep("a"), {Name: "b"}}
		}, []string{"endpoints[1].url"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cfg config.Config
			c.mutate(&cfg)
			err := cfg.Validate()
			require.Error(t, err, "got nil; want errors on %v", c.want)
			var ve *orchestrator.ValidationError
			require.True(t, errors.As(err, &ve), "got %T; want *orchestrator.ValidationError", err)
			assert.True(t, errors.Is(err, orchestrator.ErrInvalid), "got errors.Is(err, ErrInvalid) false; want true")
			var got []string
			for _, fe := range ve.Errors {
				got = append(got, fe.Field)
				assert.NotEmpty(t, fe.Message, "got an empty message for %s", fe.Field)
			}
			assert.Equal(t, c.want, got, "got fields %q; want %q", got, c.want)
		})
	}
}

func TestConfigValidateAccepts(t *testing.T) {
	ep := func(name string) orchestrator.Endpoint {
		return orchestrator.Endpoint{Name: name, URL: "http://127.0.0.1:1/" + name}
	}
	t.Run("a config using every section correctly is accepted", func(t *testing.T) {
		a, b := ep("a"), ep("b")
		a.Fallback = &orchestrator.FallbackConfig{Strategy: orchestrator.FallbackEndpoint, Endpoint: "b"}
		cfg := config.Config{
			Server: config.Server{
				Host: "127.0.0.1", Port: 65535, Prefix: "/gw", MaxHeaderBytes: 4096, MaxBodyBytes: 1 << 20,
				TLS:            config.TLS{CertFile: "c.pem", KeyFile: "k.pem"},
				TrustedProxies: []string{"10.0.0.0/8", "192.168.1.1", "::1"},
			},
			Admin:          config.Admin{Listen: "127.0.0.1:9000", AllowedOrigins: []string{"https://ops.example.com"}},
			Registry:       config.Registry{StateFile: "state.json"},
			Logging:        config.Logging{Level: "WARN", Format: "text", AccessLog: cfBool(false)},
			CORS:           orchestrator.CORSConfig{AllowedOrigins: []string{"https://app.example.com"}, AllowCredentials: true},
			CircuitBreaker: orchestrator.CircuitBreakerConfig{FailureThreshold: 1, FailureStatuses: []int{502, 503}, FallbackStrategy: orchestrator.FallbackStaticResponse},
			HealthCheck:    orchestrator.HealthCheckConfig{Interval: orchestrator.Duration(time.Millisecond)},
			Endpoints:      []orchestrator.Endpoint{a, b},
		}
		assert.NoError(t, cfg.Validate())
	})
	t.Run("the zero config is accepted", func(t *testing.T) {
		assert.NoError(t, config.Config{}.Validate())
	})
}

func TestConfigWithDefaults(t *testing.T) {
	t.Run("unset server and logging fields take the documented defaults", func(t *testing.T) {
		got := config.Config{}.WithDefaults()
		assert.Equal(t, "0.0.0.0", got.Server.Host)
		assert.Equal(t, 8000, got.Server.Port)
		assert.Equal(t, "/orchestrator", got.Server.Prefix)
		assert.Equal(t, 30*time.Second, got.Server.ShutdownTimeout.Std())
		assert.Equal(t, 10*time.Second, got.Server.ReadHeaderTimeout.Std())
		assert.Equal(t, 120*time.Second, got.Server.IdleTimeout.Std())
		assert.Equal(t, 1<<20, got.Server.MaxHeaderBytes)
		assert.Zero(t, got.Server.ReadTimeout, "got a read timeout; want none so uploads stream")
		assert.Zero(t, got.Server.WriteTimeout, "got a write timeout; want none so streams live")
		assert.Zero(t, got.Server.MaxBodyBytes, "got a body limit; want none by default")
		assert.Equal(t, 100, got.Server.MaxHeaderCount)
		assert.EqualValues(t, 8<<20, got.Server.MaxConfigBytes)
		assert.Zero(t, got.Server.DrainDelay, "got a drain delay; want none by default")
		assert.Equal(t, "info", got.Logging.Level)
		assert.Equal(t, "json", got.Logging.Format)
		assert.True(t, got.Logging.AccessLogEnabled(), "got access log off; want on by default")
	})
	t.Run("set fields are kept", func(t *testing.T) {
		in := config.Config{
			Server: config.Server{
				Host: "127.0.0.1", Port: 9000, Prefix: "/gw", ShutdownTimeout: orchestrator.Duration(time.Second),
				ReadHeaderTimeout: orchestrator.Duration(2 * time.Second), IdleTimeout: orchestrator.Duration(3 * time.Second), MaxHeaderBytes: 512,
				MaxHeaderCount: 20, MaxConfigBytes: 4096,
			},
			Logging: config.Logging{Level: "debug", Format: "text", AccessLog: cfBool(false)},
		}
		got := in.WithDefaults()
		assert.Equal(t, in, got)
		assert.False(t, got.Logging.AccessLogEnabled(), "got access log on; want off as set")
	})
}

func TestErrorFormatting(t *testing.T) {
	t.Run("each error is one file:line:column: field: message line", func(t *testing.T) {
		ce := &config.Error{File: "conf/app.yaml", Errors: []orchestrator.FieldError{
			{Field: "server.port", Message: "is out of range", Line: 2, Column: 9},
			{Field: "endpoints[0].url", Message: "is required", Line: 5, Column: 5},
		}}
		want := "conf/app.yaml:2:9: server.port: is out of range\nconf/app.yaml:5:5: endpoints[0].url: is required"
		assert.Equal(t, want, ce.Error(), "got %q; want %q", ce.Error(), want)
	})
	t.Run("an error without a field path prints the message alone", func(t *testing.T) {
		ce := &config.Error{File: "a.yaml", Errors: []orchestrator.FieldError{{Message: "mapping value is not allowed here", Line: 3, Column: 7}}}
		want := "a.yaml:3:7: mapping value is not allowed here"
		assert.Equal(t, want, ce.Error(), "got %q; want %q", ce.Error(), want)
	})
	t.Run("inline data without a file name is called config", func(t *testing.T) {
		ce := &config.Error{Errors: []orchestrator.FieldError{{Field: "x", Message: "bad", Line: 1, Column: 1}}}
		assert.Equal(t, "config:1:1: x: bad", ce.Error())
	})
	t.Run("Parse with an empty name uses the same fallback", func(t *testing.T) {
		ce := cfError(t, "server:\n  port: -5\n", "")
		assert.Equal(t, "config:2:9: server.port: -5 is not a TCP port (1-65535)", ce.Error())
	})
	t.Run("an Error matches ErrInvalid and not another error", func(t *testing.T) {
		var err error = &config.Error{}
		assert.True(t, errors.Is(err, orchestrator.ErrInvalid), "got false; want errors.Is(Error, ErrInvalid)")
		assert.False(t, errors.Is(err, fs.ErrNotExist), "got true; want an Error not to match fs.ErrNotExist")
	})
	t.Run("an Error marshals its located errors as JSON", func(t *testing.T) {
		ce := &config.Error{File: "a.yaml", Errors: []orchestrator.FieldError{{Field: "x", Message: "bad", Line: 4, Column: 2}}}
		b, err := json.Marshal(ce)
		require.NoError(t, err)
		assert.JSONEq(t, `{"file":"a.yaml","errors":[{"field":"x","message":"bad","line":4,"column":2}]}`, string(b))
	})
}

func TestConfigRedactsTheAdminToken(t *testing.T) {
	cfg := config.Config{Admin: config.Admin{Token: "hunter2-admin-token"}}
	t.Run("Redacted replaces the token and leaves the original alone", func(t *testing.T) {
		r := cfg.Redacted()
		assert.Equal(t, "[redacted]", r.Admin.Token)
		assert.Equal(t, "hunter2-admin-token", cfg.Admin.Token, "got the original changed; want a copy redacted")
	})
	t.Run("String never shows the token", func(t *testing.T) {
		s := cfg.String()
		assert.NotContains(t, s, "hunter2", "got %s; want no token", s)
		assert.Contains(t, s, "[redacted]")
	})
	t.Run("a config without a token stays without one", func(t *testing.T) {
		assert.Empty(t, config.Config{}.Redacted().Admin.Token)
	})
}

// TestConfigErrorsAreCapped: a file of thousands of broken endpoints lists
// its first MaxReportedErrors problems and counts the rest, so that neither
// /config/status nor the log line grows with the file (400,000 broken
// endpoints used to give a 34.9 MB status body).
func TestConfigErrorsAreCapped(t *testing.T) {
	for _, tc := range []struct {
		name  string
		entry string // one broken endpoint; %d numbers it
		want  int    // problems per entry
	}{
		{"validation", "  - name: svc%d\n    url: ftp://x\n", 1},
		{"decoding", "  - name: svc%d\n    url: http://127.0.0.1:9/\n    timout: 3\n", 1},
		{"decoding and validation", "  - name: svc%d\n    url: ftp://x\n    timeout: 5x\n", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString("endpoints:\n")
			const n = 5000
			for i := 0; i < n; i++ {
				fmt.Fprintf(&b, tc.entry, i)
			}
			_, err := config.Parse([]byte(b.String()), "big.yaml")
			var ce *config.Error
			require.ErrorAs(t, err, &ce)
			assert.Len(t, ce.Errors, orchestrator.MaxReportedErrors)
			assert.Equal(t, n*tc.want-orchestrator.MaxReportedErrors, ce.Omitted)
			assert.Equal(t, n*tc.want, ce.Total())
			msg := ce.Error()
			assert.Equal(t, orchestrator.MaxReportedErrors+1, strings.Count(msg, "\n")+1, "one line per listed problem and one for the rest")
			assert.True(t, strings.HasSuffix(msg, fmt.Sprintf("big.yaml: and %d more problems", ce.Omitted)), "last line: %q", msg[strings.LastIndexByte(msg, '\n')+1:])
			assert.Less(t, len(msg), 16<<10, "the message stays small whatever the file's size")
		})
	}
	t.Run("a registration's errors are capped too", func(t *testing.T) {
		eps := make([]orchestrator.Endpoint, 300)
		for i := range eps {
			eps[i] = orchestrator.Endpoint{Name: fmt.Sprintf("svc%d", i), URL: "ftp://x"}
		}
		err := config.Config{Endpoints: eps}.Validate()
		var ve *orchestrator.ValidationError
		require.ErrorAs(t, err, &ve)
		assert.Len(t, ve.Errors, orchestrator.MaxReportedErrors)
		assert.Equal(t, 200, ve.Omitted)
		assert.Contains(t, ve.Error(), "and 200 more problems")
	})
}
