package orchestrator_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/orchestrator-go/orchestrator"
)

// discardWriter is a minimal ResponseWriter so the benchmark measures the
// proxies, not a recorder's buffering.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Flush()                      {}

// BenchmarkProxy compares a bare httputil.ReverseProxy with the gateway on
// one route, both on the same tuned transport, both fetching a 1 KiB body
// from a loopback backend. The difference is the gateway's own cost:
// routing, request id, breaker, health state and header handling.
func BenchmarkProxy(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 1024)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(payload)
	}))
	defer backend.Close()
	target, _ := url.Parse(backend.URL)
	transport := orchestrator.NewTransport()
	defer transport.CloseIdleConnections()

	bare := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport: transport,
	}
	newGateway := func(opts ...orchestrator.Option) *orchestrator.Orchestrator {
		opts = append(opts,
			orchestrator.WithTransport(transport),
			orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "bench", Version: "v1", URL: backend.URL}),
		)
		o, err := orchestrator.New(opts...)
		if err != nil {
			b.Fatal(err)
		}
		return o
	}
	// The default library handler: metrics on, access log off.
	o := newGateway()
	defer o.Close()
	// Neither metrics nor access log: the baseline for what observing costs.
	plain := newGateway(orchestrator.WithMetrics(false))
	defer plain.Close()
	// Metrics and a JSON access log (to io.Discard), as orchestratord runs.
	observed := newGateway(
		orchestrator.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil))),
		orchestrator.WithAccessLog(true),
	)
	defer observed.Close()

	run := func(b *testing.B, h http.Handler, path string) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.RemoteAddr = "127.0.0.1:40000"
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			w := &discardWriter{h: make(http.Header)}
			h.ServeHTTP(w, req)
		}
	}
	// The same bare proxy with a buffer pool, like the gateway's: without it
	// httputil allocates a 32 KiB copy buffer per request, which is most of
	// the bare proxy's bytes per op.
	pooled := &httputil.ReverseProxy{Rewrite: bare.Rewrite, Transport: transport, BufferPool: chanPool(make(chan []byte, 64))}
	b.Run("bare", func(b *testing.B) { run(b, bare, "/items/1") })
	b.Run("bare_bufferpool", func(b *testing.B) { run(b, pooled, "/items/1") })
	b.Run("orchestrator", func(b *testing.B) { run(b, o, "/orchestrator/bench/v1/items/1") })
	b.Run("orchestrator_unobserved", func(b *testing.B) { run(b, plain, "/orchestrator/bench/v1/items/1") })
	b.Run("orchestrator_metrics_accesslog", func(b *testing.B) { run(b, observed, "/orchestrator/bench/v1/items/1") })

	// The same backend as three targets (under three base paths) balanced
	// round robin, without and with retries configured: what several
	// targets cost a request that needs no retry.
	threeTargets := []orchestrator.Target{{ID: "a", URL: backend.URL + "/a"}, {ID: "b", URL: backend.URL + "/b"}, {ID: "c", URL: backend.URL + "/c"}}
	newMulti := func(retry *orchestrator.RetryConfig) *orchestrator.Orchestrator {
		o, err := orchestrator.New(orchestrator.WithTransport(transport),
			orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "bench", Version: "v1", Targets: threeTargets, Retry: retry}))
		if err != nil {
			b.Fatal(err)
		}
		return o
	}
	multi := newMulti(nil)
	defer multi.Close()
	retrying := newMulti(&orchestrator.RetryConfig{Attempts: 2})
	defer retrying.Close()
	b.Run("orchestrator_3targets", func(b *testing.B) { run(b, multi, "/orchestrator/bench/v1/items/1") })
	b.Run("orchestrator_3targets_retry", func(b *testing.B) { run(b, retrying, "/orchestrator/bench/v1/items/1") })

	// Header rules on both sides: compiled once, their values are shared
	// rather than copied per request; what they cost is the header maps'
	// growth for the names they add (5 allocations here, as a Header.Set of
	// the same names would).
	rules, err := orchestrator.New(orchestrator.WithTransport(transport),
		orchestrator.WithEndpoints(orchestrator.Endpoint{Name: "bench", Version: "v1", URL: backend.URL,
			RequestHeaders:  &orchestrator.HeaderRules{Set: map[string]string{"X-Tenant": "blue"}, Add: map[string]string{"X-Via": "gw"}, Remove: []string{"Cookie"}},
			ResponseHeaders: &orchestrator.HeaderRules{Set: map[string]string{"Cache-Control": "max-age=60"}, Remove: []string{"X-Powered-By"}},
		}))
	if err != nil {
		b.Fatal(err)
	}
	defer rules.Close()
	b.Run("orchestrator_header_rules", func(b *testing.B) { run(b, rules, "/orchestrator/bench/v1/items/1") })
}

// chanPool is a minimal httputil.BufferPool.
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
