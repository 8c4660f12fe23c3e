package server

import (
	"encoding/json"
	"io"
	"net/http"
)

// echoHandler is the built-in upstream of the embedded default config: it
// answers with what reached it, so a first curl shows what the gateway
// forwards. It never echoes credentials back: their presence is shown, not
// their value.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	headers := make(map[string][]string, len(r.Header))
	for k, v := range r.Header {
		switch k {
		case "Authorization", "Cookie", "X-Api-Key", "Proxy-Authorization":
			headers[k] = []string{"[present]"}
		default:
			headers[k] = v
		}
	}
	n, _ := io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(map[string]any{
		"service":    "orchestratord built-in echo",
		"method":     r.Method,
		"path":       r.URL.EscapedPath(),
		"query":      r.URL.RawQuery,
		"host":       r.Host,
		"headers":    headers,
		"body_bytes": n,
	})
}
