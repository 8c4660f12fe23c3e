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
// string (`"250ms"`, `"1m30s"`). It encodes to JSON as a number of seconds
// (`30`, `0.00156`), so that every duration the admin API answers with is a
// number a client can compute with, and decoding what it printed gives back
// the same Duration to the nanosecond. Its text form (MarshalText, used by
// YAML encoders) stays the Go duration string, which reads better in a file.
// The zero value means "not set": the default or the global value applies.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String returns the Go duration form, such as "30s".
func (d Duration) String() string { return time.Duration(d).String() }

// Seconds returns d as a number of seconds, the form of its JSON encoding.
func (d Duration) Seconds() float64 { return time.Duration(d).Seconds() }

// MarshalJSON encodes d as a JSON number of seconds in its shortest exact
// decimal form: 30s is 30, 1.56ms is 0.00156, 1ns is 0.000000001. It is
// printed from the integer nanoseconds, not through a float64, so that even
// the largest Duration (9223372036.854775807) prints exactly.
func (d Duration) MarshalJSON() ([]byte, error) {
	return appendSeconds(nil, time.Duration(d)), nil
}

// appendSeconds appends d as a decimal number of seconds with no trailing
// zeros in its fraction.
func appendSeconds(b []byte, d time.Duration) []byte {
	if d < 0 {
		// Never held by a validated Duration; printed for completeness.
		b = append(b, '-')
		if d == math.MinInt64 {
			return append(b, "9223372036.854775808"...)
		}
		d = -d
	}
	b = strconv.AppendInt(b, int64(d/time.Second), 10)
	frac := int64(d % time.Second)
	if frac == 0 {
		return b
	}
	var digits [9]byte
	for i := len(digits) - 1; i >= 0; i-- {
		digits[i] = byte('0' + frac%10)
		frac /= 10
	}
	b = append(b, '.')
	return append(b, bytes.TrimRight(digits[:], "0")...)
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
//
// The library hands over a fractional number as a float64, so a number of
// seconds with more than 15 significant digits (a fraction of a nanosecond
// below 11 days, in practice never) decodes to the nearest float64, then
// to the nearest nanosecond; every shorter one decodes exactly.
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
	case float32:
		// Through its own shortest form: 0.1 as a float32 is not 0.1 as a
		// float64.
		f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'f', -1, 32), 64)
		return d.fromFloat(fmt.Sprint(x), f)
	case float64:
		return d.fromFloat(fmt.Sprint(x), x)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return d.unmarshalString(fmt.Sprint(x))
	}
	return fmt.Errorf("invalid duration %v: want seconds (30) or a Go duration (\"250ms\", \"1m30s\")", v)
}

// MarshalText encodes d as a Go duration string. encoding/json does not use
// it (MarshalJSON prints seconds); YAML encoders and text-keyed maps do.
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

// parseSeconds reads a number of seconds. A plain decimal ("0.00156", the
// form MarshalJSON prints) is read exactly, digit by digit; digits past the
// nanosecond round to the nearest one. Other number forms ("1e-3", "-1")
// go through a float64.
func (d *Duration) parseSeconds(s string) error {
	if bareNumber(s) {
		v, err := exactSeconds(s)
		if err != nil {
			return err
		}
		*d = v
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("invalid duration %s: want seconds (30) or a Go duration (\"250ms\", \"1m30s\")", s)
	}
	return d.fromFloat(s, f)
}

// fromFloat sets d from f, a number of seconds written as in (for error
// messages). It goes through f's shortest decimal form, exact for any
// decimal of up to 15 significant digits, which a float64 always gives back.
func (d *Duration) fromFloat(in string, f float64) error {
	if f < 0 {
		return fmt.Errorf("duration %s must not be negative", in)
	}
	if f > float64(math.MaxInt64)/float64(time.Second) {
		return fmt.Errorf("duration %s is too large", in)
	}
	v, err := exactSeconds(strconv.FormatFloat(f, 'f', -1, 64))
	if err != nil {
		// The largest Duration has 19 digits and its nearest float64 is
		// just above it: what a float64 cannot tell from it is the largest.
		v = Duration(math.MaxInt64)
	}
	*d = v
	return nil
}

// maxWholeSeconds is the whole seconds of the largest Duration.
const maxWholeSeconds = math.MaxInt64 / int64(time.Second)

// exactSeconds reads s, digits with at most one dot, as seconds rounded to
// the nearest nanosecond, or says it is too large for a Duration.
func exactSeconds(s string) (Duration, error) {
	whole, frac, _ := strings.Cut(s, ".")
	var secs int64
	for i := 0; i < len(whole); i++ {
		secs = secs*10 + int64(whole[i]-'0')
		if secs > maxWholeSeconds {
			return 0, fmt.Errorf("duration %s is too large", s)
		}
	}
	var nanos int64
	for i := 0; i < 9; i++ {
		nanos *= 10
		if i < len(frac) {
			nanos += int64(frac[i] - '0')
		}
	}
	if len(frac) > 9 && frac[9] >= '5' {
		nanos++ // round half up at the nanosecond
	}
	if secs == maxWholeSeconds && nanos > math.MaxInt64%int64(time.Second) {
		return 0, fmt.Errorf("duration %s is too large", s)
	}
	return Duration(secs*int64(time.Second) + nanos), nil
}
