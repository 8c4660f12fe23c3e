package orchestrator

import (
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"
)

// observe records one finished request: its metrics and, when enabled, its
// access line. rt is nil for a request no endpoint matched.
func (o *Orchestrator) observe(r *http.Request, rt *route, ids reqIDs, status int, start time.Time) {
	took := time.Since(start)
	if rt != nil {
		t := rt.traffic
		t.requests.Add(1)
		t.latencyNanos.Add(uint64(took))
		if status >= 500 {
			t.serverErrors.Add(1)
		}
		rt.timeline.record(start.Add(took), took, status >= 500)
	}
	if m := rt.endpointMetrics(); m != nil {
		m.requests.inc(r.Method, status)
		m.duration.Update(took.Seconds())
	} else if rt == nil && o.metrics != nil {
		o.metrics.unrouted.inc(r.Method, status)
	}
	if o.accessLog == nil {
		return
	}
	ctx := r.Context()
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelWarn
	}
	if !o.accessLog.Enabled(ctx, level) {
		return
	}
	endpointID := ""
	if rt != nil {
		endpointID = rt.ep.ID
	}
	// Headers and the query string are never logged: they carry
	// credentials (Authorization, X-API-Key, Cookie, tokens in queries).
	attrs := [...]slog.Attr{
		slog.String("request_id", ids.request),
		slog.String("endpoint_id", endpointID),
		slog.String("method", r.Method),
		slog.String("path", r.URL.EscapedPath()),
		slog.Int("status_code", status),
		slog.Float64("response_time", took.Seconds()),
		slog.String("trace_id", ids.traceID(r.Header)),
	}
	n := len(attrs)
	if attrs[n-1].Value.String() == "" {
		n-- // no trace context: leave the field out
	}
	o.accessLog.LogAttrs(ctx, level, "request", attrs[:n]...)
}

func (ids reqIDs) traceID(h http.Header) string {
	if ids.traceparent != "" {
		return ids.traceparent[3:35]
	}
	return traceID(h)
}

func (rt *route) endpointMetrics() *endpointMetrics {
	if rt == nil {
		return nil
	}
	return rt.metrics
}

// traceID returns the trace id of a valid W3C traceparent header
// ("00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>"), or "".
func traceID(h http.Header) string {
	v := h["Traceparent"]
	if len(v) != 1 || !validTraceparent(v[0]) {
		return ""
	}
	return v[0][3:35]
}

func validTraceparent(s string) bool {
	if len(s) < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' || s[:2] == "ff" {
		return false
	}
	if len(s) > 55 && (s[:2] == "00" || s[55] != '-') {
		return false // version 00 has exactly four fields
	}
	for i, c := range s[:55] {
		if i == 2 || i == 35 || i == 52 {
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	// All-zero trace or parent ids are invalid.
	return s[3:35] != "00000000000000000000000000000000" && s[36:52] != "0000000000000000"
}

// newTraceparent starts a trace: a random trace id and parent id, sampled.
func newTraceparent() string {
	var b [55]byte
	b[0], b[1], b[2] = '0', '0', '-'
	var ids [24]byte
	for i := 0; i < 24; i += 8 {
		x := rand.Uint64()
		for j := 0; j < 8; j++ {
			ids[i+j] = byte(x >> (8 * j))
		}
	}
	hex.Encode(b[3:35], ids[:16])
	b[35] = '-'
	hex.Encode(b[36:52], ids[16:24])
	b[52], b[53], b[54] = '-', '0', '1'
	return string(b[:])
}
