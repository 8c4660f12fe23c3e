// Package framing holds the checks a request needs before any handler acts
// on it, wherever it is routed (gateway, admin API, an embedder's own
// handler): framing that a front proxy may read differently from Go's
// server (request smuggling), and the number of header field lines.
package framing

import "net/http"

// Ambiguous reports whether r's body framing is one another HTTP/1 parser
// may read differently, so that the bytes after it must not be read as a
// next request on the same connection:
//
//   - a request framed by Transfer-Encoding (RFC 9112 §6.3): it may also
//     have carried a Content-Length, which Go's server drops without a
//     trace before keeping the connection open;
//   - an HTTP/1.0 request with a body. HTTP/1.0 has no chunked coding: Go's
//     server deletes its Transfer-Encoding before a handler could see it
//     and frames the body by Content-Length, so the tail of a chunked body
//     would become the next request (RFC 9112 §6.1 calls that faulty
//     framing). HTTP/1.0 clients rarely keep a connection alive, so
//     closing it costs next to nothing.
func Ambiguous(r *http.Request) bool {
	return r.ProtoMajor == 1 && (len(r.TransferEncoding) > 0 || (r.ProtoMinor == 0 && r.ContentLength != 0))
}

// CloseAfter returns w, wrapped to close the connection after the response
// when r's framing is Ambiguous, and w itself otherwise.
func CloseAfter(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	if Ambiguous(r) {
		return &closingWriter{ResponseWriter: w}
	}
	return w
}

// FieldLines counts r's header field lines as the client sent them: each
// value of r.Header was one line (Go's server never merges them), and Host,
// which Go moves to r.Host, was one more.
func FieldLines(r *http.Request) int {
	n := 0
	for _, v := range r.Header {
		n += len(v)
	}
	if r.Host != "" {
		n++
	}
	return n
}

// closingWriter adds "Connection: close" to the final response header. It
// keeps Flush and Hijack reachable through Unwrap (http.ResponseController).
type closingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (c *closingWriter) WriteHeader(code int) {
	if !c.wrote && code >= 200 {
		c.wrote = true
		c.ResponseWriter.Header().Set("Connection", "close")
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *closingWriter) Write(p []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	return c.ResponseWriter.Write(p)
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (c *closingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
