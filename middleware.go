package orchestrator

import "net/http"

// Middleware returns a handler that serves requests under the prefix
// through the gateway and passes every other request to next unchanged.
// Use it to put the gateway in front of an existing application:
//
//	http.ListenAndServe(":8000", o.Middleware(app))
func (o *Orchestrator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := o.stripPrefix(r.URL.EscapedPath()); ok {
			o.serve(w, r, rest)
			return
		}
		next.ServeHTTP(w, r)
	})
}
