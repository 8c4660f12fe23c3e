package orchestrator_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

// cfgValid is an endpoint that passes validation; each case breaks one field.
func cfgValid() orchestrator.Endpoint {
	return orchestrator.Endpoint{
		Name:    "users",
		Version: "v1",
		URL:     "https://api.example.com/v1",
	}
}

// cfgFields returns the field names of a *ValidationError, failing the test
// when err is not one.
func cfgFields(t *testing.T, err error) []string {
	t.Helper()
	require.Error(t, err, "got nil error; want a *ValidationError")
	var ve *orchestrator.ValidationError
	require.True(t, errors.As(err, &ve), "got error %T (%v); want *orchestrator.ValidationError", err, err)
	assert.True(t, errors.Is(err, orchestrator.ErrInvalid), "errors.Is(%v, ErrInvalid) = false; want true", err)
	fields := make([]string, len(ve.Errors))
	for i, fe := range ve.Errors {
		fields[i] = fe.Field
		assert.NotEmpty(t, fe.Message, "field %q has an empty message; want an explanation", fe.Field)
	}
	return fields
}

func cfgBool(b bool) *bool { return &b }

func TestEndpointValidateAcceptsGoodConfigs(t *testing.T) {
	good := []struct {
		name string
		mod  func(*orchestrator.Endpoint)
	}{
		{"minimal", func(e *orchestrator.Endpoint) {}},
		{"unversioned", func(e *orchestrator.Endpoint) { e.Version = "" }},
		{"http", func(e *orchestrator.Endpoint) { e.URL = "http://127.0.0.1:8080" }},
		{"url with trailing slash", func(e *orchestrator.Endpoint) { e.URL = "http://localhost/api/" }},
		{"ipv6 host", func(e *orchestrator.Endpoint) { e.URL = "http://[::1]:9000/x" }},
		{"name charset", func(e *orchestrator.Endpoint) { e.Name = "Example_api-2.beta" }},
		{"version charset", func(e *orchestrator.Endpoint) { e.Version = "2024-01-01.v_2" }},
		{"explicit id", func(e *orchestrator.Endpoint) { e.ID = "users-primary" }},
		{"lower-case methods", func(e *orchestrator.Endpoint) { e.Methods = []string{"get", "Post", " PATCH "} }},
		{"custom method token", func(e *orchestrator.Endpoint) { e.Methods = []string{"PROPFIND", "M-SEARCH"} }},
		{"every auth type", func(e *orchestrator.Endpoint) { e.AuthType = orchestrator.AuthOAuth2 }},
		{"health check path", func(e *orchestrator.Endpoint) { e.HealthCheckPath = "/health?deep=1" }},
		{"timeouts", func(e *orchestrator.Endpoint) { e.Timeout = orchestrator.Duration(5 * time.Second) }},
		{"breaker overrides", func(e *orchestrator.Endpoint) {
			e.CircuitBreaker = &orchestrator.CircuitBreakerConfig{
				Disabled: cfgBool(false), FailureThreshold: 3, ResetTimeout: orchestrator.Duration(time.Second),
				HalfOpenRequests: 2, FailureStatuses: []int{500, 503, 429}, FallbackStrategy: orchestrator.FallbackStaticResponse,
			}
		}},
		{"health overrides", func(e *orchestrator.Endpoint) {
			e.HealthCheck = &orchestrator.HealthCheckConfig{
				Enabled: cfgBool(true), Interval: orchestrator.Duration(time.Millisecond), Timeout: orchestrator.Duration(time.Second),
				UnhealthyThreshold: 1, HealthyThreshold: 1,
			}
		}},
		{"static fallback", func(e *orchestrator.Endpoint) {
			e.Fallback = &orchestrator.FallbackConfig{
				Strategy: orchestrator.FallbackStaticResponse, Status: 200,
				Headers: map[string]string{"Content-Type": "application/json"}, Body: `{"cached":true}`,
			}
		}},
		{"fallback endpoint", func(e *orchestrator.Endpoint) {
			e.Fallback = &orchestrator.FallbackConfig{Strategy: orchestrator.FallbackEndpoint, Endpoint: "users_v0"}
		}},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			ep := cfgValid()
			tt.mod(&ep)
			assert.NoError(t, ep.Validate(), "Validate(%+v) = error; want nil", ep)
		})
	}
}

func TestEndpointValidateFieldRules(t *testing.T) {
	bad := []struct {
		name  string
		mod   func(*orchestrator.Endpoint)
		field string
	}{
		{"name required", func(e *orchestrator.Endpoint) { e.Name = "" }, "name"},
		{"name leading dash", func(e *orchestrator.Endpoint) { e.Name = "-users" }, "name"},
		{"name leading dot", func(e *orchestrator.Endpoint) { e.Name = ".users" }, "name"},
		{"name dot", func(e *orchestrator.Endpoint) { e.Name = "." }, "name"},
		{"name dotdot", func(e *orchestrator.Endpoint) { e.Name = ".." }, "name"},
		{"name slash", func(e *orchestrator.Endpoint) { e.Name = "a/b" }, "name"},
		{"name space", func(e *orchestrator.Endpoint) { e.Name = "a b" }, "name"},
		{"name percent", func(e *orchestrator.Endpoint) { e.Name = "a%2Fb" }, "name"},
		{"name unicode", func(e *orchestrator.Endpoint) { e.Name = "usérs" }, "name"},
		{"version slash", func(e *orchestrator.Endpoint) { e.Version = "v1/x" }, "version"},
		{"version dotdot", func(e *orchestrator.Endpoint) { e.Version = ".." }, "version"},
		{"version leading underscore", func(e *orchestrator.Endpoint) { e.Version = "_v1" }, "version"},
		{"id space", func(e *orchestrator.Endpoint) { e.ID = "my id" }, "id"},
		{"id leading dot", func(e *orchestrator.Endpoint) { e.ID = ".hidden" }, "id"},
		{"url required", func(e *orchestrator.Endpoint) { e.URL = "" }, "url"},
		{"url unparsable", func(e *orchestrator.Endpoint) { e.URL = "http://[::1" }, "url"},
		{"url ftp scheme", func(e *orchestrator.Endpoint) { e.URL = "ftp://files.example.com" }, "url"},
		{"url no scheme", func(e *orchestrator.Endpoint) { e.URL = "api.example.com/v1" }, "url"},
		{"url host:port without scheme", func(e *orchestrator.Endpoint) { e.URL = "localhost:8080" }, "url"},
		{"url no host", func(e *orchestrator.Endpoint) { e.URL = "http:///v1" }, "url"},
		{"url port only", func(e *orchestrator.Endpoint) { e.URL = "http://:8080/v1" }, "url"},
		{"url userinfo", func(e *orchestrator.Endpoint) { e.URL = "https://user:secret@api.example.com" }, "url"},
		{"url user only", func(e *orchestrator.Endpoint) { e.URL = "https://user@api.example.com" }, "url"},
		{"url query", func(e *orchestrator.Endpoint) { e.URL = "https://api.example.com/v1?key=1" }, "url"},
		{"url empty query", func(e *orchestrator.Endpoint) { e.URL = "https://api.example.com/v1?" }, "url"},
		{"url fragment", func(e *orchestrator.Endpoint) { e.URL = "https://api.example.com/v1#top" }, "url"},
		{"method empty", func(e *orchestrator.Endpoint) { e.Methods = []string{"GET", ""} }, "methods[1]"},
		{"method blank", func(e *orchestrator.Endpoint) { e.Methods = []string{"  "} }, "methods[0]"},
		{"method space", func(e *orchestrator.Endpoint) { e.Methods = []string{"GE T"} }, "methods[0]"},
		{"method separator", func(e *orchestrator.Endpoint) { e.Methods = []string{"GET", "POST", "GET,POST"} }, "methods[2]"},
		{"method slash", func(e *orchestrator.Endpoint) { e.Methods = []string{"GET/1"} }, "methods[0]"},
		{"auth type unknown", func(e *orchestrator.Endpoint) { e.AuthType = "kerberos" }, "auth_type"},
		{"auth type case", func(e *orchestrator.Endpoint) { e.AuthType = "Bearer" }, "auth_type"},
		{"health path relative", func(e *orchestrator.Endpoint) { e.HealthCheckPath = "health" }, "health_check_path"},
		{"health path url", func(e *orchestrator.Endpoint) { e.HealthCheckPath = "http://other/health" }, "health_check_path"},
		{"health path bad escape", func(e *orchestrator.Endpoint) { e.HealthCheckPath = "/health%zz" }, "health_check_path"},
		{"timeout negative", func(e *orchestrator.Endpoint) { e.Timeout = orchestrator.Duration(-time.Second) }, "timeout"},
		{"breaker reset timeout negative", func(e *orchestrator.Endpoint) {
			e.CircuitBreaker = &orchestrator.CircuitBreakerConfig{ResetTimeout: orchestrator.Duration(-time.Second)}
		}, "circuit_breaker.reset_timeout"},
		{"health timeout negative", func(e *orchestrator.Endpoint) {
			e.HealthCheck = &orchestrator.HealthCheckConfig{Timeout: orchestrator.Duration(-time.Millisecond)}
		}, "health_check.timeout"},
		{"breaker failure threshold", func(e *orchestrator.Endpoint) {
			e.CircuitBreaker = &orchestrator.CircuitBreakerConfig{FailureThreshold: -1}
		}, "circuit_breaker.failure_threshold"},
		{"breaker half open", func(e *orchestrator.Endpoint) {
			e.CircuitBreaker = &orchestrator.CircuitBreakerConfig{HalfOpenRequests: -2}
		}, "circuit_breaker.half_open_requests"},
		{"breaker status low", func(e *orchestrator.Endpoint) {
			e.CircuitBreaker = &orchestrator.CircuitBreakerConfig{FailureStatuses: []int{500, 99}}
		}, "circuit_breaker.failure_statuses[1]"},
		{"breaker status high", func(e *orchestrator.Endpoint) {
			e.CircuitBreaker = &orchestrator.CircuitBreakerConfig{FailureStatuses: []int{600}}
		}, "circuit_breaker.failure_statuses[0]"},
		{"breaker strategy", func(e *orchestrator.Endpoint) {
			e.CircuitBreaker = &orchestrator.CircuitBreakerConfig{FallbackStrategy: "retry"}
		}, "circuit_breaker.fallback_strategy"},
		{"health unhealthy threshold", func(e *orchestrator.Endpoint) {
			e.HealthCheck = &orchestrator.HealthCheckConfig{UnhealthyThreshold: -1}
		}, "health_check.unhealthy_threshold"},
		{"health healthy threshold", func(e *orchestrator.Endpoint) {
			e.HealthCheck = &orchestrator.HealthCheckConfig{HealthyThreshold: -3}
		}, "health_check.healthy_threshold"},
		{"health interval too small", func(e *orchestrator.Endpoint) {
			e.HealthCheck = &orchestrator.HealthCheckConfig{Interval: orchestrator.Duration(time.Microsecond)}
		}, "health_check.interval"},
		{"health interval negative", func(e *orchestrator.Endpoint) {
			e.HealthCheck = &orchestrator.HealthCheckConfig{Interval: orchestrator.Duration(-time.Second)}
		}, "health_check.interval"},
		{"fallback strategy", func(e *orchestrator.Endpoint) {
			e.Fallback = &orchestrator.FallbackConfig{Strategy: "cache"}
		}, "fallback.strategy"},
		{"fallback status informational", func(e *orchestrator.Endpoint) {
			e.Fallback = &orchestrator.FallbackConfig{Strategy: orchestrator.FallbackStaticResponse, Status: 101}
		}, "fallback.status"},
		{"fallback status too high", func(e *orchestrator.Endpoint) {
			e.Fallback = &orchestrator.FallbackConfig{Strategy: orchestrator.FallbackStaticResponse, Status: 600}
		}, "fallback.status"},
		{"fallback status negative", func(e *orchestrator.Endpoint) {
			e.Fallback = &orchestrator.FallbackConfig{Status: -1}
		}, "fallback.status"},
		{"fallback header name", func(e *orchestrator.Endpoint) {
			e.Fallback = &orchestrator.FallbackConfig{Strategy: orchestrator.FallbackStaticResponse, Headers: map[string]string{"Bad Header": "x"}}
		}, "fallback.headers"},
		{"fallback header colon", func(e *orchestrator.Endpoint) {
			e.Fallback = &orchestrator.FallbackConfig{Headers: map[string]string{"X-A:": "x"}}
		}, "fallback.headers"},
		{"fallback endpoint missing", func(e *orchestrator.Endpoint) {
			e.Fallback = &orchestrator.FallbackConfig{Strategy: orchestrator.FallbackEndpoint}
		}, "fallback.endpoint"},
		{"fallback endpoint self (default id)", func(e *orchestrator.Endpoint) {
			e.Fallback = &orchestrator.FallbackConfig{Strategy: orchestrator.FallbackEndpoint, Endpoint: "users_v1"}
		}, "fallback.endpoint"},
		{"fallback endpoint self (explicit id)", func(e *orchestrator.Endpoint) {
			e.ID = "primary"
			e.Fallback = &orchestrator.FallbackConfig{Strategy: orchestrator.FallbackEndpoint, Endpoint: "primary"}
		}, "fallback.endpoint"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			ep := cfgValid()
			tt.mod(&ep)
			fields := cfgFields(t, ep.Validate())
			assert.Equal(t, []string{tt.field}, fields, "Validate(%+v) fields = %v; want [%s]", ep, fields, tt.field)
		})
	}
}

func TestEndpointValidateListsEveryProblem(t *testing.T) {
	ep := orchestrator.Endpoint{
		ID:              "bad id",
		Name:            "-bad",
		Version:         "v/1",
		URL:             "ftp://user@example.com",
		Methods:         []string{"GET", "GE T", ""},
		AuthType:        "magic",
		HealthCheckPath: "health",
		CircuitBreaker:  &orchestrator.CircuitBreakerConfig{FailureThreshold: -1, FallbackStrategy: "nope"},
		HealthCheck:     &orchestrator.HealthCheckConfig{HealthyThreshold: -1},
		Fallback:        &orchestrator.FallbackConfig{Strategy: orchestrator.FallbackEndpoint, Status: 42},
	}
	err := ep.Validate()
	fields := cfgFields(t, err)
	want := []string{
		"name", "version", "id", "url", "methods[1]", "methods[2]", "auth_type", "health_check_path",
		"circuit_breaker.failure_threshold", "circuit_breaker.fallback_strategy",
		"health_check.healthy_threshold", "fallback.status", "fallback.endpoint",
	}
	assert.ElementsMatch(t, want, fields, "fields = %v; want %v", fields, want)
	for _, f := range want {
		assert.Contains(t, err.Error(), f+": ", "Error() = %q; want it to mention %q", err.Error(), f)
	}
}

func TestEndpointIDDefaults(t *testing.T) {
	tests := []struct {
		ep   orchestrator.Endpoint
		want string
	}{
		{orchestrator.Endpoint{Name: "users"}, "users"},
		{orchestrator.Endpoint{Name: "users", Version: "v1"}, "users_v1"},
		{orchestrator.Endpoint{Name: "users", Version: "v1", ID: "custom"}, "custom"},
		{orchestrator.Endpoint{Name: "example_api", Version: "v1"}, "example_api_v1"},
	}
	for _, tt := range tests {
		got := tt.ep.EndpointID()
		assert.Equal(t, tt.want, got, "EndpointID(%+v) = %q; want %q", tt.ep, got, tt.want)
		n := tt.ep.Normalized()
		assert.Equal(t, tt.want, n.ID, "Normalized().ID = %q; want %q", n.ID, tt.want)
	}

	n := orchestrator.Endpoint{Name: "a", Methods: []string{"get", " post "}}.Normalized()
	assert.Equal(t, []string{"GET", "POST"}, n.Methods, "Normalized().Methods = %v; want [GET POST]", n.Methods)
	assert.Equal(t, orchestrator.AuthNone, n.AuthType, "Normalized().AuthType = %q; want none", n.AuthType)
}

func TestDurationUnmarshalJSON(t *testing.T) {
	good := []struct {
		in   string
		want time.Duration
	}{
		{`30`, 30 * time.Second},
		{`0`, 0},
		{`0.5`, 500 * time.Millisecond},
		{`1.25`, 1250 * time.Millisecond},
		{`1e1`, 10 * time.Second},
		{` 7 `, 7 * time.Second},
		{`"250ms"`, 250 * time.Millisecond},
		{`"1m30s"`, 90 * time.Second},
		{`"2h"`, 2 * time.Hour},
		{`"30"`, 30 * time.Second},
		{`"0.5"`, 500 * time.Millisecond},
		{`"0"`, 0},
		{`""`, 0},
	}
	for _, tt := range good {
		t.Run(tt.in, func(t *testing.T) {
			var d orchestrator.Duration
			require.NoError(t, json.Unmarshal([]byte(tt.in), &d), "Unmarshal(%s) = error; want %v", tt.in, tt.want)
			assert.Equal(t, tt.want, d.Std(), "Unmarshal(%s) = %v; want %v", tt.in, d.Std(), tt.want)
		})
	}

	bad := []struct {
		in      string
		message string
	}{
		{`-1`, "negative"},
		{`-0.5`, "negative"},
		{`"-1s"`, "negative"},
		{`"-250ms"`, "negative"},
		{`"-5"`, "must not be negative"},
		{`"abc"`, "invalid duration"},
		{`"10 parsecs"`, "invalid duration"},
		{`"1x"`, "invalid duration"},
		{`"NaN"`, "invalid duration"},
		{`"Inf"`, "invalid duration"},
		{`true`, "invalid duration"},
		{`[1]`, "invalid duration"},
		{`{"s":1}`, "invalid duration"},
		{`1e300`, "too large"},
	}
	for _, tt := range bad {
		t.Run(tt.in, func(t *testing.T) {
			var d orchestrator.Duration
			err := json.Unmarshal([]byte(tt.in), &d)
			require.Error(t, err, "Unmarshal(%s) = %v, nil; want an error", tt.in, d.Std())
			assert.Contains(t, err.Error(), tt.message, "Unmarshal(%s) error = %q; want it to contain %q", tt.in, err.Error(), tt.message)
		})
	}
}

func TestDurationUnmarshalTextBareNumbers(t *testing.T) {
	good := []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"00", 0},
		{" 30 ", 30 * time.Second},
		{"1.5", 1500 * time.Millisecond},
		{".5", 500 * time.Millisecond},
		{"5.", 5 * time.Second},
		{"0s", 0},
		{"+0", 0},
		{"-0", 0},
	}
	for _, tt := range good {
		t.Run(tt.in, func(t *testing.T) {
			var d orchestrator.Duration
			require.NoError(t, d.UnmarshalText([]byte(tt.in)), "UnmarshalText(%q) = error; want %v", tt.in, tt.want)
			assert.Equal(t, tt.want, d.Std(), "UnmarshalText(%q) = %v; want %v", tt.in, d.Std(), tt.want)
		})
	}
	bad := []struct{ in, message string }{
		{".", `invalid duration "."`},
		{"1.5.5", `invalid duration "1.5.5"`},
		{"99999999999", `invalid duration "99999999999"`},
		{"-3", `duration "-3" must not be negative`},
	}
	for _, tt := range bad {
		t.Run(tt.in, func(t *testing.T) {
			var d orchestrator.Duration
			err := d.UnmarshalText([]byte(tt.in))
			require.Error(t, err, "UnmarshalText(%q) = %v, nil; want an error", tt.in, d.Std())
			assert.Contains(t, err.Error(), tt.message, "UnmarshalText(%q) error = %q; want it to contain %q", tt.in, err.Error(), tt.message)
		})
	}
}

func TestDurationInEndpointJSON(t *testing.T) {
	var ep orchestrator.Endpoint
	src := `{"url":"http://127.0.0.1:1","name":"a","timeout":30,
		"circuit_breaker":{"reset_timeout":"1m30s"},
		"health_check":{"interval":0.5,"timeout":"250ms"}}`
	require.NoError(t, json.Unmarshal([]byte(src), &ep), "Unmarshal(endpoint) = error; want nil")
	assert.Equal(t, 30*time.Second, ep.Timeout.Std(), "timeout = %v; want 30s", ep.Timeout.Std())
	require.NotNil(t, ep.CircuitBreaker, "circuit_breaker = nil; want a value")
	assert.Equal(t, 90*time.Second, ep.CircuitBreaker.ResetTimeout.Std(), "reset_timeout = %v; want 1m30s", ep.CircuitBreaker.ResetTimeout.Std())
	require.NotNil(t, ep.HealthCheck, "health_check = nil; want a value")
	assert.Equal(t, 500*time.Millisecond, ep.HealthCheck.Interval.Std(), "interval = %v; want 500ms", ep.HealthCheck.Interval.Std())
	assert.Equal(t, 250*time.Millisecond, ep.HealthCheck.Timeout.Std(), "health timeout = %v; want 250ms", ep.HealthCheck.Timeout.Std())

	// A JSON null leaves the field unset, as encoding/json does for every
	// other type: clients that serialise absent fields as null must work.
	ep = orchestrator.Endpoint{}
	err := json.Unmarshal([]byte(`{"url":"http://127.0.0.1:1","name":"a","timeout":null}`), &ep)
	require.NoError(t, err, "Unmarshal(timeout: null) = %v; want nil", err)
	assert.Equal(t, time.Duration(0), ep.Timeout.Std(), "timeout = %v; want 0 (unset)", ep.Timeout.Std())

	err = json.Unmarshal([]byte(`{"url":"http://127.0.0.1:1","name":"a","timeout":-3}`), &ep)
	require.Error(t, err, "Unmarshal(timeout: -3) = nil; want an error")
	assert.Contains(t, err.Error(), "negative", "error = %q; want it to say negative", err.Error())
}

func TestDurationMarshal(t *testing.T) {
	b, err := json.Marshal(orchestrator.Duration(90 * time.Second))
	require.NoError(t, err)
	assert.Equal(t, `90`, string(b), "Marshal(90s) = %s; want 90 (seconds)", b)

	var d orchestrator.Duration
	require.NoError(t, json.Unmarshal(b, &d))
	assert.Equal(t, 90*time.Second, d.Std(), "round trip = %v; want 1m30s", d.Std())

	txt, err := orchestrator.Duration(250 * time.Millisecond).MarshalText()
	require.NoError(t, err)
	assert.Equal(t, "250ms", string(txt), "MarshalText(250ms) = %q; want \"250ms\"", txt)
	require.NoError(t, d.UnmarshalText([]byte("45")))
	assert.Equal(t, 45*time.Second, d.Std(), "UnmarshalText(45) = %v; want 45s", d.Std())
	err = d.UnmarshalText([]byte("soon"))
	require.Error(t, err, "UnmarshalText(soon) = nil; want an error")
	assert.True(t, strings.Contains(err.Error(), `"soon"`), "error = %q; want it to quote the input", err.Error())
}

func TestNewRejectsInvalidEndpointSets(t *testing.T) {
	t.Run("every endpoint problem is listed", func(t *testing.T) {
		_, err := orchestrator.New(orchestrator.WithEndpoints(
			orchestrator.Endpoint{Name: "ok", URL: "http://127.0.0.1:1"},
			orchestrator.Endpoint{Name: "", URL: "ftp://x"},
			orchestrator.Endpoint{Name: "b", URL: "http://127.0.0.1:1", AuthType: "x"},
		))
		fields := cfgFields(t, err)
		assert.ElementsMatch(t, []string{"endpoints[1].name", "endpoints[1].url", "endpoints[2].auth_type"}, fields,
			"fields = %v; want endpoints[1].name, endpoints[1].url, endpoints[2].auth_type", fields)
	})
	t.Run("duplicate ids and routes", func(t *testing.T) {
		_, err := orchestrator.New(orchestrator.WithEndpoints(
			orchestrator.Endpoint{Name: "a", Version: "v1", URL: "http://127.0.0.1:1"},
			orchestrator.Endpoint{ID: "a_v1", Name: "b", URL: "http://127.0.0.1:1"},
			orchestrator.Endpoint{ID: "other", Name: "a", Version: "v1", URL: "http://127.0.0.1:1"},
		))
		fields := cfgFields(t, err)
		assert.ElementsMatch(t, []string{"endpoints[1].id", "endpoints[2]"}, fields,
			"fields = %v; want endpoints[1].id (duplicate id) and endpoints[2] (duplicate route)", fields)
	})
	t.Run("bad global sections", func(t *testing.T) {
		opts := []struct {
			name  string
			opt   orchestrator.Option
			field string
		}{
			{"breaker threshold", orchestrator.WithCircuitBreaker(orchestrator.CircuitBreakerConfig{FailureThreshold: -1}), "circuit_breaker.failure_threshold"},
			{"breaker reset timeout", orchestrator.WithCircuitBreaker(orchestrator.CircuitBreakerConfig{ResetTimeout: orchestrator.Duration(-time.Second)}), "circuit_breaker.reset_timeout"},
			{"breaker strategy", orchestrator.WithCircuitBreaker(orchestrator.CircuitBreakerConfig{FallbackStrategy: "x"}), "circuit_breaker.fallback_strategy"},
			{"health interval", orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Interval: orchestrator.Duration(time.Nanosecond)}), "health_check.interval"},
			{"health timeout", orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Timeout: orchestrator.Duration(-time.Second)}), "health_check.timeout"},
		}
		for _, tt := range opts {
			o, err := orchestrator.New(tt.opt)
			if o != nil {
				o.Close()
			}
			fields := cfgFields(t, err)
			assert.Equal(t, []string{tt.field}, fields, "New(%s) fields = %v; want [%s]", tt.name, fields, tt.field)
		}
	})
	t.Run("bad prefix", func(t *testing.T) {
		for _, p := range []string{"api", "/a/../b", "/a?x", "/a#b"} {
			o, err := orchestrator.New(orchestrator.WithPrefix(p))
			if o != nil {
				o.Close()
			}
			assert.Error(t, err, "New(WithPrefix(%q)) = nil error; want an error", p)
		}
	})
}

// TestDesiredValidate: Desired.Validate reports what New and Apply would
// refuse, every problem with the same field path and message, in the order
// breaker, health check, endpoints.
func TestDesiredValidate(t *testing.T) {
	assert.NoError(t, orchestrator.Desired{}.Validate(), "the zero Desired is valid")
	d := orchestrator.Desired{
		CircuitBreaker: orchestrator.CircuitBreakerConfig{FailureThreshold: -1},
		HealthCheck:    orchestrator.HealthCheckConfig{Timeout: orchestrator.Duration(-time.Second)},
		Endpoints: []orchestrator.Endpoint{
			{Name: "a", URL: "http://127.0.0.1:1"},
			{Name: "a", URL: "ftp://x"},
		},
	}
	err := d.Validate()
	var ve *orchestrator.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.ErrorIs(t, err, orchestrator.ErrInvalid)
	got := fieldStrings(ve)
	want := []string{
		"circuit_breaker.failure_threshold: must be > 0",
		"health_check.timeout: must not be negative",
		`endpoints[1].url: "ftp://x" must use http or https`,
		`endpoints[1].id: duplicate id "a" (also endpoints[0])`,
		"endpoints[1]: route /a is already served by endpoints[0]",
	}
	assert.Equal(t, want, got)

	// Apply refuses the same state and changes nothing.
	o, err := orchestrator.New(orchestrator.WithHealthCheck(orchestrator.HealthCheckConfig{Enabled: new(bool)}))
	require.NoError(t, err)
	defer o.Close()
	d.CircuitBreaker, d.HealthCheck = orchestrator.CircuitBreakerConfig{}, orchestrator.HealthCheckConfig{}
	err = o.Apply(t.Context(), d)
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, want[2:], fieldStrings(ve), "Apply's field errors")
	assert.Empty(t, o.Endpoints())
}

func fieldStrings(ve *orchestrator.ValidationError) []string {
	var out []string
	for _, fe := range ve.Errors {
		out = append(out, fe.String())
	}
	return out
}
