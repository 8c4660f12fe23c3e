package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/orchestrator-go/orchestrator"
)

// The target processes this binary can be: each listens on a free loopback
// port, prints "listening on http://ADDR" and serves until it is signalled
// or its stdin reaches EOF (the benchmark holds the other end, so a crashed
// or killed benchmark takes its targets with it).

// serveBackend is the backend: GET /fast answers cfg.size bytes, GET /slow
// the same after cfg.delay, POST /echo echoes the body, /health is 200.
func serveBackend(ctx context.Context, cfg config, stdout io.Writer) error {
	payload := bytes.Repeat([]byte("x"), cfg.size)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fast", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(payload)
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		t := time.NewTimer(cfg.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(payload)
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		if r.ContentLength >= 0 {
			w.Header().Set("Content-Length", fmt.Sprint(r.ContentLength))
		}
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {})
	// /queue serves cfg.capacity requests at once, each for cfg.service,
	// and queues the rest: a backend whose latency under load comes from
	// its own queue (the overload mode's).
	queue := make(chan struct{}, cfg.capacity)
	mux.HandleFunc("GET /queue", func(w http.ResponseWriter, r *http.Request) {
		select {
		case queue <- struct{}{}:
		case <-r.Context().Done():
			return
		}
		defer func() { <-queue }()
		t := time.NewTimer(cfg.service)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(payload)
	})
	return serveRole(ctx, stripTarget(mux), stdout)
}

// stripTarget serves /t/NAME/rest as /rest, so that one backend can stand
// for several targets of an endpoint (target URLs must differ).
func stripTarget(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := strings.CutPrefix(r.URL.Path, "/t/"); ok {
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				r.URL.Path = rest[i:]
				r.URL.RawPath = ""
			}
		}
		next.ServeHTTP(w, r)
	})
}

// serveBare is the bare proxy: httputil.ReverseProxy as the standard
// library suggests (Rewrite with SetURL and SetXForwarded), on the
// gateway's tuned transport, orchestrator.NewTransport(). With -pool it
// also gets a 32 KiB buffer pool, as the gateway has (target bare-pool).
func serveBare(ctx context.Context, cfg config, stdout io.Writer) error {
	target, err := url.Parse(cfg.target)
	if err != nil || target.Scheme != "http" || target.Host == "" {
		return fmt.Errorf("-target %q: want http://127.0.0.1:PORT", cfg.target)
	}
	if ip := net.ParseIP(target.Hostname()); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-target %q: only loopback upstreams", cfg.target)
	}
	transport := orchestrator.NewTransport()
	defer transport.CloseIdleConnections()
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport: transport,
	}
	if cfg.pool {
		proxy.BufferPool = chanPool(make(chan []byte, 256))
	}
	return serveRole(ctx, proxy, stdout)
}

// serveRole serves h on a free loopback port, with the timeouts
// orchestratord uses by default, until ctx ends or stdin reaches EOF.
func serveRole(ctx context.Context, h http.Handler, stdout io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	srv.Close()
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// chanPool is a minimal httputil.BufferPool, as in bench_test.go.
type chanPool chan []byte

func (p chanPool) Get() []byte {
	select {
	case b := <-p:
		return b
	default:
		return make([]byte, 32<<10)
	}
}

func (p chanPool) Put(b []byte) {
	select {
	case p <- b:
	default:
	}
}
