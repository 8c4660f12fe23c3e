package orchestrator

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/orchestrator-go/orchestrator/internal/framing"
)

// Middleware returns a handler that serves requests under the prefix
// through the gateway and passes every other request to next unchanged.
// Use it to put the gateway in front of an existing application:
//
//	http.ListenAndServe(":8000", o.Middleware(app))
func (o *Orchestrator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The smuggling guard covers next too: a request hidden behind an
		// ambiguously framed one to next's routes could reach the gateway's.
		w = framing.CloseAfter(w, r)
		if rest, ok := o.stripPrefix(r.URL.EscapedPath()); ok {
			if o.closed.Load() {
				o.serveClosed(w, r) // next is the program's and stays open
				return
			}
			o.serve(w, r, rest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// CORSConfig makes the gateway answer CORS itself for proxied routes. With
// no allowed origins (the default) it stays out of the way and the
// backends' own CORS headers pass through.
type CORSConfig struct {
	// AllowedOrigins lists exact origins, or "*" for any.
	AllowedOrigins []string `json:"allowed_origins,omitempty" yaml:"allowed_origins,omitempty"`
	// AllowedMethods answered to preflights. Default GET, HEAD, POST, PUT,
	// PATCH, DELETE, OPTIONS.
	AllowedMethods []string `json:"allowed_methods,omitempty" yaml:"allowed_methods,omitempty"`
	// AllowedHeaders answered to preflights. Default: whatever the preflight
	// asks for.
	AllowedHeaders []string `json:"allowed_headers,omitempty" yaml:"allowed_headers,omitempty"`
	// ExposedHeaders lists response headers a browser script may read.
	ExposedHeaders []string `json:"exposed_headers,omitempty" yaml:"exposed_headers,omitempty"`
	// AllowCredentials lets browsers send cookies and Authorization.
	AllowCredentials bool `json:"allow_credentials,omitempty" yaml:"allow_credentials,omitempty"`
	// MaxAge lets browsers cache a preflight answer. Default 10m.
	MaxAge Duration `json:"max_age,omitempty" yaml:"max_age,omitempty"`
}

// CORS returns middleware that answers CORS (the Fetch standard) for the
// gateway's routes as cfg says, the way Traefik's and Caddy's CORS
// middlewares do. A preflight from an allowed origin is answered 204 by the
// gateway without reaching the backend; an actual request gets
// Access-Control-Allow-Origin (and the rest) on its response, replacing any
// Access-Control-* headers the backend set, so the browser never sees two
// values. Requests without Origin, or from an origin not allowed, pass
// through untouched (the browser then enforces the same-origin policy).
// With no allowed origins it returns next unchanged.
func CORS(cfg CORSConfig) func(http.Handler) http.Handler {
	if len(cfg.AllowedOrigins) == 0 {
		return func(next http.Handler) http.Handler { return next }
	}
	anyOrigin := false
	allowed := make(map[string]bool, len(cfg.AllowedOrigins))
	for _, o := range cfg.AllowedOrigins {
		if o == "*" {
			anyOrigin = true
		}
		allowed[strings.ToLower(o)] = true
	}
	methods := cfg.AllowedMethods
	if len(methods) == 0 {
		methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
	}
	allowMethods := strings.Join(methods, ", ")
	allowHeaders := strings.Join(cfg.AllowedHeaders, ", ")
	exposed := strings.Join(cfg.ExposedHeaders, ", ")
	maxAge := cfg.MaxAge.Std()
	if maxAge == 0 {
		maxAge = 10 * time.Minute
	}
	maxAgeValue := strconv.Itoa(int(maxAge.Seconds()))

	originValue := func(origin string) string {
		if anyOrigin && !cfg.AllowCredentials {
			return "*"
		}
		return origin
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := r.Header.Get("Origin")
			if origin == "" || !(anyOrigin || allowed[strings.ToLower(origin)]) {
				next.ServeHTTP(w, r)
				return
			}
			h := w.Header()
			h.Add("Vary", "Origin")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Add("Vary", "Access-Control-Request-Method")
				h.Add("Vary", "Access-Control-Request-Headers")
				h.Set("Access-Control-Allow-Origin", originValue(origin))
				h.Set("Access-Control-Allow-Methods", allowMethods)
				if allowHeaders != "" {
					h.Set("Access-Control-Allow-Headers", allowHeaders)
				} else if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
					h.Set("Access-Control-Allow-Headers", req)
				}
				if cfg.AllowCredentials {
					h.Set("Access-Control-Allow-Credentials", "true")
				}
				h.Set("Access-Control-Max-Age", maxAgeValue)
				w.WriteHeader(http.StatusNoContent)
				return
			}
			next.ServeHTTP(&corsWriter{ResponseWriter: w, origin: originValue(origin), credentials: cfg.AllowCredentials, exposed: exposed}, r)
		})
	}
}

// corsWriter replaces the backend's CORS headers with the gateway's when the
// final response header is written. It keeps Flush and Hijack reachable
// through Unwrap (http.ResponseController), so streaming and upgrades work.
type corsWriter struct {
	http.ResponseWriter
	origin      string
	credentials bool
	exposed     string
	wrote       bool
}

func (c *corsWriter) WriteHeader(code int) {
	if !c.wrote && (code >= 200 || code == http.StatusSwitchingProtocols) {
		c.wrote = true
		h := c.ResponseWriter.Header()
		for k := range h {
			if strings.HasPrefix(k, "Access-Control-") {
				delete(h, k)
			}
		}
		h.Set("Access-Control-Allow-Origin", c.origin)
		if c.credentials {
			h.Set("Access-Control-Allow-Credentials", "true")
		}
		if c.exposed != "" {
			h.Set("Access-Control-Expose-Headers", c.exposed)
		}
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *corsWriter) Write(p []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	return c.ResponseWriter.Write(p)
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (c *corsWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
