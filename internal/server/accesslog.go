package server

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/orchestrator-go/orchestrator"
)

// accessLog writes one line per proxied request (logging.access_log, on by
// default): request_id, endpoint_id, method, path, status_code and
// response_time, plus the timestamp, level, logger and message every line
// has. It logs neither headers nor the query string, which may carry
// credentials.
func accessLog(logger *slog.Logger, gw *orchestrator.Orchestrator, next http.Handler) http.Handler {
	log := logger.With(slog.String("logger", "orchestrator.access"))
	prefix := gw.Prefix()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if !log.Enabled(ctx, slog.LevelInfo) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rec := &accessRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		d := time.Since(start)

		status := rec.code
		if status == 0 {
			status = http.StatusOK
		}
		level := slog.LevelInfo
		if status >= http.StatusInternalServerError {
			level = slog.LevelWarn
		}
		path := r.URL.EscapedPath()
		endpointID := ""
		if rest, ok := strings.CutPrefix(path, prefix); ok {
			endpointID = gw.Resolve(rest).EndpointID
		}
		log.LogAttrs(ctx, level, "request",
			slog.String("request_id", w.Header().Get("X-Request-Id")),
			slog.String("endpoint_id", endpointID),
			slog.String("method", r.Method),
			slog.String("path", path),
			slog.Int("status_code", status),
			slog.Duration("response_time", d),
		)
	})
}

// accessRecorder remembers the final status code of a response.
type accessRecorder struct {
	http.ResponseWriter
	code int
}

func (a *accessRecorder) WriteHeader(code int) {
	// 1xx are interim (103 Early Hints, 100 Continue), except 101, which
	// ends the HTTP exchange of an upgraded connection.
	if a.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		a.code = code
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *accessRecorder) Write(b []byte) (int, error) {
	if a.code == 0 {
		a.code = http.StatusOK
	}
	return a.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (used by the reverse proxy to flush
// streams and hijack upgraded connections) reach the underlying writer.
func (a *accessRecorder) Unwrap() http.ResponseWriter { return a.ResponseWriter }
