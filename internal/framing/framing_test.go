package framing

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestAmbiguous(t *testing.T) {
	req := func(major, minor int, contentLength int64, te ...string) *http.Request {
		r := &http.Request{ProtoMajor: major, ProtoMinor: minor, ContentLength: contentLength, TransferEncoding: te}
		return r
	}
	assert.True(t, Ambiguous(req(1, 1, -1, "chunked")), "HTTP/1.1 framed by Transfer-Encoding")
	assert.True(t, Ambiguous(req(1, 0, 4)), "HTTP/1.0 with a body")
	assert.True(t, Ambiguous(req(1, 0, -1)), "HTTP/1.0 with a body of unknown length")
	assert.False(t, Ambiguous(req(1, 0, 0)), "HTTP/1.0 without a body")
	assert.False(t, Ambiguous(req(1, 1, 4)), "HTTP/1.1 framed by Content-Length")
	assert.False(t, Ambiguous(req(2, 0, -1)), "HTTP/2 frames its own messages")
}

func TestCloseAfter(t *testing.T) {
	rec := httptest.NewRecorder()
	w := CloseAfter(rec, &http.Request{ProtoMajor: 1, ProtoMinor: 0, ContentLength: 1})
	w.Write([]byte("x"))
	assert.Equal(t, "close", rec.Header().Get("Connection"), "a body written without WriteHeader still closes")
	rec = httptest.NewRecorder()
	w = CloseAfter(rec, &http.Request{ProtoMajor: 1, ProtoMinor: 1})
	assert.Same(t, rec, w.(*httptest.ResponseRecorder), "an unambiguous request keeps its writer")
}

func TestFieldLines(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil) // Host: example.com
	r.Header.Add("X-A", "1")
	r.Header.Add("X-A", "2")
	r.Header.Add("X-B", "1")
	assert.Equal(t, 4, FieldLines(r), "three header lines and Host")
}

// BenchmarkFieldLines is what the header-count rule adds to each request:
// one walk of a typical header map.
func BenchmarkFieldLines(b *testing.B) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, k := range []string{"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cookie", "User-Agent", "X-Request-Id", "Traceparent", "X-Forwarded-For", "Content-Type"} {
		r.Header.Set(k, "v")
	}
	b.ReportAllocs()
	for b.Loop() {
		if FieldLines(r) != 11 {
			b.Fatal("miscounted")
		}
	}
}
