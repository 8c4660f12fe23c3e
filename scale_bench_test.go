package orchestrator

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
)

func scaleEndpoints(n int) []Endpoint {
	eps := make([]Endpoint, n)
	for i := range eps {
		eps[i] = Endpoint{Name: fmt.Sprintf("svc%d", i), Version: "v1", URL: fmt.Sprintf("http://127.0.0.1:%d/api", 10000+i%50000)}
	}
	return eps
}

func scaleGateway(b *testing.B, n int) *Orchestrator {
	b.Helper()
	o, err := New(WithMetrics(false), WithHealthCheck(HealthCheckConfig{Enabled: new(bool)}), WithEndpoints(scaleEndpoints(n)...))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { o.Close() })
	return o
}

// BenchmarkRouteLookup shows route lookup time is flat from 10 to 10,000
// endpoints: two map lookups on path segments, no scan, no allocation.
func BenchmarkRouteLookup(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("endpoints=%d", n), func(b *testing.B) {
			o := scaleGateway(b, n)
			t := o.table.Load()
			paths := make([]string, 64)
			for i := range paths {
				paths[i] = fmt.Sprintf("/svc%d/v1/users/42", (i*7919)%n)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if rt, _ := t.lookup(paths[i&63]); rt == nil {
					b.Fatal("no route")
				}
			}
		})
	}
}

// BenchmarkRegisterWith10000 is one admin registration (and its removal)
// while 10,000 endpoints are registered.
func BenchmarkRegisterWith10000(b *testing.B) {
	o := scaleGateway(b, 10000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := o.Register(ctx, Endpoint{Name: "extra", URL: "http://127.0.0.1:9999"}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := o.Deregister(ctx, "extra"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkReload10000 applies a config of 10,000 endpoints in which every
// endpoint changed (its timeout), the worst case of a reload.
func BenchmarkReload10000(b *testing.B) {
	o := scaleGateway(b, 10000)
	ctx := context.Background()
	cfgs := [2]Desired{{Endpoints: scaleEndpoints(10000)}, {Endpoints: scaleEndpoints(10000)}}
	for i := range cfgs[1].Endpoints {
		cfgs[1].Endpoints[i].Timeout = Duration(5e9)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := o.Apply(ctx, cfgs[i%2]); err != nil {
			b.Fatal(err)
		}
	}
}

// cannedTransport answers every upstream request 200 with an empty body,
// without a network, so that a benchmark can send one request to each of
// 10,000 endpoints.
type cannedTransport struct{}

func (cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	return &http.Response{StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: http.NoBody, ContentLength: 0, Request: r}, nil
}

// liveHeap returns the bytes of live heap after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkMemory10000 reports the live heap one endpoint costs with 10,000
// registered as orchestratord registers them (metrics on, no health check
// path): B/endpoint right after registration, and B/endpoint-served after
// one request to every endpoint (series and histograms that are built on
// first use are then built). Run it with -benchtime=1x: each iteration
// builds a gateway of 10,000 endpoints.
func BenchmarkMemory10000(b *testing.B) {
	const n = 10000
	eps := scaleEndpoints(n)
	paths := make([]string, n)
	for i := range paths {
		paths[i] = fmt.Sprintf("%s/svc%d/v1/x", DefaultPrefix, i)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var registered, served float64
	for i := 0; i < b.N; i++ {
		before := liveHeap()
		o, err := New(WithLogger(quiet), WithTransport(cannedTransport{}), WithHealthCheck(HealthCheckConfig{Enabled: new(bool)}), WithEndpoints(eps...))
		if err != nil {
			b.Fatal(err)
		}
		registered = float64(liveHeap()-before) / n
		rec := httptest.NewRecorder()
		for _, p := range paths {
			rec.Body.Reset()
			o.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
			if rec.Code != http.StatusOK {
				b.Fatalf("GET %s: %d %s", p, rec.Code, rec.Body)
			}
		}
		served = float64(liveHeap()-before) / n
		runtime.KeepAlive(o)
		o.Close()
	}
	b.ReportMetric(registered, "B/endpoint")
	b.ReportMetric(served, "B/endpoint-served")
}

// BenchmarkWritePrometheus10000 is one scrape of the metrics of 10,000
// endpoints: B/op is the garbage a scrape leaves, which sets how far the
// heap grows under a scraper (the exposition is about 35 MB of text).
func BenchmarkWritePrometheus10000(b *testing.B) {
	benchmarkScrape10000(b)
}

// BenchmarkWritePrometheus10000Labelled is BenchmarkWritePrometheus10000
// with a constant label (WithMetricsLabels) on every series: the label is
// written into each line as it is formatted, no second pass over the text.
func BenchmarkWritePrometheus10000Labelled(b *testing.B) {
	benchmarkScrape10000(b, WithMetricsLabels(map[string]string{"gateway": "eu-1"}))
}

// benchmarkScrape10000 measures WritePrometheus of a gateway with 10,000
// endpoints and the given options.
func benchmarkScrape10000(b *testing.B, opts ...Option) {
	base := []Option{WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), WithHealthCheck(HealthCheckConfig{Enabled: new(bool)}), WithEndpoints(scaleEndpoints(10000)...)}
	o, err := New(append(base, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { o.Close() })
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		o.WritePrometheus(io.Discard)
	}
}

// BenchmarkMetricsHandlerProcess is one scrape of a small gateway's
// MetricsHandler(true): the process and Go runtime metrics dominate it, and
// they pass through the line filter that adds their # HELP and # TYPE.
func BenchmarkMetricsHandlerProcess(b *testing.B) {
	o, err := New(WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), WithHealthCheck(HealthCheckConfig{Enabled: new(bool)}), WithEndpoints(scaleEndpoints(10)...))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { o.Close() })
	h := o.MetricsHandler(true)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	w := discardResponse{header: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.ServeHTTP(w, req)
	}
}

// discardResponse is an http.ResponseWriter that keeps nothing.
type discardResponse struct{ header http.Header }

func (d discardResponse) Header() http.Header         { return d.header }
func (d discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (d discardResponse) WriteHeader(int)             {}
