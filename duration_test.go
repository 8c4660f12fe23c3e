package orchestrator_test

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

// Issue 13: every duration in admin JSON is a number of seconds, and what
// the admin API prints decodes back to the same Duration (GET then PUT).
func TestDurationJSONIsSecondsAndRoundTrips(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want string
	}{
		{0, `0`},
		{1, `0.000000001`},
		{999, `0.000000999`},
		{1500 * time.Nanosecond, `0.0000015`},
		{time.Microsecond, `0.000001`},
		{1560 * time.Microsecond, `0.00156`},
		{250 * time.Millisecond, `0.25`},
		{time.Second, `1`},
		{30 * time.Second, `30`},
		{90 * time.Second, `90`},
		{time.Hour + 1, `3600.000000001`},
		{123456789123456789, `123456789.123456789`},
		{math.MaxInt64, `9223372036.854775807`},
	}
	for _, tt := range cases {
		t.Run(tt.want, func(t *testing.T) {
			b, err := json.Marshal(orchestrator.Duration(tt.d))
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(b), "Marshal(%v): got %s; want %s", tt.d, b, tt.want)

			var n float64
			require.NoError(t, json.Unmarshal(b, &n), "Marshal(%v) = %s: want a JSON number", tt.d, b)

			var back orchestrator.Duration
			require.NoError(t, json.Unmarshal(b, &back), "Unmarshal(%s)", b)
			assert.Equal(t, tt.d, back.Std(), "Unmarshal(Marshal(%v)): got %v (%d ns); want the same nanoseconds", tt.d, back.Std(), int64(back))

			// The Go string form still decodes, for configs and old clients.
			s, err := json.Marshal(tt.d.String())
			require.NoError(t, err)
			back = 0
			require.NoError(t, json.Unmarshal(s, &back), "Unmarshal(%s)", s)
			assert.Equal(t, tt.d, back.Std(), "Unmarshal(%s): got %v; want %v", s, back.Std(), tt.d)
		})
	}
}

func TestDurationJSONInsideAStructRoundTrips(t *testing.T) {
	ep := orchestrator.Endpoint{Name: "a", URL: "http://127.0.0.1:1", Timeout: orchestrator.Duration(1560 * time.Microsecond),
		HealthCheck: &orchestrator.HealthCheckConfig{Interval: orchestrator.Duration(90 * time.Second), Timeout: orchestrator.Duration(time.Nanosecond)}}
	b, err := json.Marshal(ep)
	require.NoError(t, err)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(b, &raw))
	assert.Equal(t, 0.00156, raw["timeout"], "timeout in %s: got %v; want the number 0.00156", b, raw["timeout"])

	var back orchestrator.Endpoint
	require.NoError(t, json.Unmarshal(b, &back), "Unmarshal(%s)", b)
	assert.Equal(t, ep.Timeout, back.Timeout, "timeout: got %v; want %v", back.Timeout, ep.Timeout)
	require.NotNil(t, back.HealthCheck)
	assert.Equal(t, *ep.HealthCheck, *back.HealthCheck, "health_check: got %+v; want %+v", *back.HealthCheck, *ep.HealthCheck)
}

func TestDurationParsesSecondsExactly(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
	}{
		// A float64 product (0.00156*1e9 = 1559999.9999999998) truncated
		// used to lose a nanosecond here.
		{`0.00156`, 1560 * time.Microsecond},
		{`0.3`, 300 * time.Millisecond},
		{`0.0000000004`, 0},               // below half a nanosecond: rounds down
		{`0.0000000005`, 1},               // half a nanosecond: rounds up
		{`1.9999999999`, 2 * time.Second}, // rounds up into the next second
		{`1e-3`, time.Millisecond},        // exponent: through a float64, still exact
		{`9223372036.854775807`, math.MaxInt64},
	}
	for _, tt := range cases {
		t.Run(tt.in, func(t *testing.T) {
			var d orchestrator.Duration
			require.NoError(t, json.Unmarshal([]byte(tt.in), &d), "Unmarshal(%s)", tt.in)
			assert.Equal(t, tt.want, d.Std(), "Unmarshal(%s): got %d ns; want %d ns", tt.in, int64(d), int64(tt.want))
		})
	}
	for _, in := range []string{`9223372036.854775808`, `9223372037`, `99999999999999999999`} {
		var d orchestrator.Duration
		err := json.Unmarshal([]byte(in), &d)
		require.Error(t, err, "Unmarshal(%s) = %v, nil; want an error", in, d.Std())
		assert.Contains(t, err.Error(), "too large", "Unmarshal(%s) error: got %q; want it to say too large", in, err.Error())
	}
}

// YAML keeps the Go duration form on output (it reads better in a file) and
// reads the seconds the admin API prints, so a GET pasted into a config
// file means the same.
func TestDurationYAML(t *testing.T) {
	type doc struct {
		Timeout orchestrator.Duration `yaml:"timeout"`
	}
	out, err := yaml.Marshal(doc{Timeout: orchestrator.Duration(1560 * time.Microsecond)})
	require.NoError(t, err)
	assert.Equal(t, "timeout: 1.56ms\n", string(out), "yaml.Marshal: got %q; want the Go duration form", out)
	var back doc
	require.NoError(t, yaml.Unmarshal(out, &back))
	assert.Equal(t, 1560*time.Microsecond, back.Timeout.Std(), "yaml round trip: got %v; want 1.56ms", back.Timeout.Std())

	for in, want := range map[string]time.Duration{
		"timeout: 0.00156\n":              1560 * time.Microsecond,
		"timeout: 0.000000001\n":          1,
		"timeout: 123456.123456789\n":     123456123456789,
		"timeout: 30\n":                   30 * time.Second,
		"timeout: 9223372036.854775807\n": math.MaxInt64, // past float64 precision: the nearest, the largest
	} {
		var d doc
		require.NoError(t, yaml.Unmarshal([]byte(in), &d), "yaml.Unmarshal(%q)", in)
		assert.Equal(t, want, d.Timeout.Std(), "yaml.Unmarshal(%q): got %d ns; want %d ns", in, int64(d.Timeout), int64(want))
	}
}

// A negative Duration never passes validation, but an option's error
// message prints the config it refuses, so it must still encode.
func TestDurationJSONNegative(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:             `-1`,
		-1500 * time.Millisecond: `-1.5`,
		math.MinInt64:            `-9223372036.854775808`,
	} {
		b, err := json.Marshal(orchestrator.Duration(d))
		require.NoError(t, err)
		assert.Equal(t, want, string(b), "Marshal(%v): got %s; want %s", d, b, want)
	}
}
