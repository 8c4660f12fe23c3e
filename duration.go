package orchestrator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration that decodes from either a bare number of
// seconds (`timeout: 30`, as existing configs write it) or a Go duration
// string (`"250ms"`, `"1m30s"`). It encodes as a Go duration string.
// The zero value means "not set": the default or the global value applies.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String returns the Go duration form, such as "30s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON encodes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON accepts a number of seconds (fractions allowed) or a Go
// duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		// encoding/json convention: null leaves the value unchanged.
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		return d.UnmarshalText([]byte(s))
	}
	return d.parseSeconds(string(b))
}

// UnmarshalYAML decodes a bare number of seconds or a Go duration string
// (goccy/go-yaml's InterfaceUnmarshaler). Without it the library decodes a
// Duration through UnmarshalText after re-formatting the document for every
// value, which made a config with a timeout per endpoint quadratic: minutes
// for 10,000 endpoints.
func (d *Duration) UnmarshalYAML(unmarshal func(any) error) error {
	var v any
	if err := unmarshal(&v); err != nil {
		return err
	}
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return d.unmarshalString(x)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return d.unmarshalString(fmt.Sprint(x))
	}
	return fmt.Errorf("invalid duration %v: want seconds (30) or a Go duration (\"250ms\", \"1m30s\")", v)
}

// MarshalText encodes d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText accepts a Go duration string, or a bare number of seconds.
func (d *Duration) UnmarshalText(b []byte) error { return d.unmarshalString(string(b)) }

func (d *Duration) unmarshalString(s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		*d = 0
		return nil
	}
	// time.ParseDuration refuses a bare number for want of a unit, but for
	// "0", which it reads as parseSeconds does: skip it, and the error it
	// would allocate, for the common "timeout: 30".
	if !bareNumber(s) {
		if v, err := time.ParseDuration(s); err == nil {
			if v < 0 {
				return fmt.Errorf("duration %q must not be negative", s)
			}
			*d = Duration(v)
			return nil
		}
	}
	if err := d.parseSeconds(s); err != nil {
		if strings.HasPrefix(s, "-") {
			return fmt.Errorf("duration %q must not be negative", s)
		}
		return fmt.Errorf("invalid duration %q: want seconds (30) or a Go duration (\"250ms\", \"1m30s\")", s)
	}
	return nil
}

// bareNumber reports whether s is digits with at most one dot among them.
func bareNumber(s string) bool {
	digits, dots := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}

func (d *Duration) parseSeconds(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("invalid duration %s: want seconds (30) or a Go duration (\"250ms\", \"1m30s\")", s)
	}
	if f < 0 {
		return fmt.Errorf("duration %s must not be negative", s)
	}
	if f > float64(math.MaxInt64)/float64(time.Second) {
		return fmt.Errorf("duration %s is too large", s)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}
