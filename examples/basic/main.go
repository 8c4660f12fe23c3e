// Command basic embeds the gateway in a program: it starts a small echo
// backend on a loopback port and serves it through the gateway at
// http://localhost:8000/orchestrator/echo/v1/.
//
//	go run ./examples/basic
//	curl -i localhost:8000/orchestrator/echo/v1/hello?name=you
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/orchestrator-go/orchestrator"
)

func main() {
	addr := ":8000"
	if port := os.Getenv("PORT"); port != "" {
		addr = ":" + port
	}

	// The backend: echoes what reached it, so you can see what the gateway
	// forwards (path, query, headers).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	backend := &http.Server{Handler: http.HandlerFunc(echo), ReadHeaderTimeout: 10 * time.Second}
	go backend.Serve(ln)
	defer backend.Close()

	gw, err := orchestrator.New(
		orchestrator.WithEndpoints(orchestrator.Endpoint{
			Name:    "echo",
			Version: "v1",
			URL:     "http://" + ln.Addr().String(),
			Methods: []string{"GET", "POST"},
		}),
		orchestrator.WithLogger(slog.New(slog.NewJSONHandler(os.Stderr, nil))),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer gw.Close()

	server := &http.Server{Addr: addr, Handler: gw, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		server.Shutdown(shutdown)
	}()
	log.Printf("gateway listening on %s; try: curl localhost%s/orchestrator/echo/v1/hello", addr, addr)
	if err := server.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

func echo(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"method":  r.Method,
		"path":    r.URL.EscapedPath(),
		"query":   r.URL.RawQuery,
		"host":    r.Host,
		"headers": r.Header,
	})
}
