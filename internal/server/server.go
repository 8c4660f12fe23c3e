// Package server assembles the reference server, orchestratord: the gateway
// library, the admin API, the config file with hot reload, the state file,
// logging, TLS and graceful shutdown. cmd/orchestratord only parses flags
// and the environment and calls Run.
package server

import (
	"bytes"
	"context"
	"crypto/tls"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/admin"
	"github.com/orchestrator-go/orchestrator/config"
	"github.com/orchestrator-go/orchestrator/internal/framing"
	"github.com/orchestrator-go/orchestrator/internal/problem"
	"github.com/orchestrator-go/orchestrator/internal/statefile"
)

//go:embed default.yaml
var defaultConfig []byte

// Options are the settings that come from flags and the environment. Empty
// fields defer to the config file, then to the defaults.
type Options struct {
	// ConfigPath is the YAML file; empty runs on the embedded default.
	ConfigPath string
	// Host and Port override server.host and server.port. Port "0" picks a
	// free port.
	Host string
	Port string
	// LogLevel overrides logging.level.
	LogLevel string
	// Watch enables hot reload of the config file.
	Watch bool
	// AdminToken overrides admin.token.
	AdminToken string
	// Version is printed at start and shown by the admin API.
	Version string
	// Stdout receives the start banner; Stderr the logs. Nil: os.Stdout and
	// os.Stderr.
	Stdout, Stderr io.Writer
	// Ready, when set, is called with the bound addresses once serving
	// (admin is nil when the admin API shares the main listener).
	Ready func(main, admin net.Addr)
	// After is the clock that times server.drain_delay; nil means
	// time.After. Tests end the drain when they have seen it.
	After func(time.Duration) <-chan time.Time
}

// Run serves until ctx ends, then shuts down gracefully: /health answers
// 503 while serving goes on for server.drain_delay, then new connections
// are refused, in-flight requests finish within server.shutdown_timeout and
// health probes stop. It returns nil after a clean shutdown.
func Run(ctx context.Context, opts Options) error {
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	start, err := loadStartConfig(opts)
	if err != nil {
		return err
	}
	defer start.close()
	in, err := newInstance(opts, start)
	if err != nil {
		return err
	}
	defer in.gw.Close()
	stopWatching, err := in.manageConfig(ctx, start)
	if err != nil {
		return err
	}
	defer stopWatching()
	if err := in.listen(); err != nil {
		return err
	}
	printBanner(opts, in.settings.Host, in.mainAddr, in.adminAddr, in.tlsOn, in.gw.Prefix(), start.echoAddr != "")
	if opts.Ready != nil {
		opts.Ready(in.mainAddr, in.adminAddr)
	}
	select {
	case <-ctx.Done():
	case err := <-in.serveErr:
		in.closeListeners()
		return err
	}
	in.shutdown(stopWatching)
	return nil
}

// startConfig is the config the server starts on: a file, or the embedded
// default in front of the built-in echo upstream.
type startConfig struct {
	cfg      *config.Config
	raw      []byte
	echoAddr string // the echo upstream's address; empty with a file
	close    func()
	// large says the file is large enough that its decoding garbage is
	// collected before the gateway is built, so that what the gateway
	// keeps fills the space it leaves instead of spreading among it, and
	// is handed back to the operating system once the gateway is up (see
	// largeConfig).
	large bool
}

func loadStartConfig(opts Options) (*startConfig, error) {
	start := &startConfig{close: func() {}}
	if opts.ConfigPath == "" {
		echoLn, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("starting the built-in echo upstream: %w", err)
		}
		echoSrv := &http.Server{Handler: http.HandlerFunc(echoHandler), ReadHeaderTimeout: 10 * time.Second}
		go echoSrv.Serve(echoLn)
		start.close = func() { echoSrv.Close() }
		start.echoAddr = echoLn.Addr().String()
		start.raw = bytes.ReplaceAll(defaultConfig, []byte("ECHO_URL"), []byte("http://"+start.echoAddr))
		cfg, err := config.Parse(start.raw, "embedded default")
		if err != nil {
			start.close()
			return nil, err
		}
		start.cfg = cfg
		return start, nil
	}
	raw, err := os.ReadFile(opts.ConfigPath)
	if err != nil {
		return nil, fmt.Errorf("reading the config file: %w", err)
	}
	// A bad file at start is fatal, as with `nginx -t` and Caddy: a server
	// that came up serving nothing would pass its readiness check and
	// answer 404 to everything. The error lists every problem as
	// file:line:column: message. After start, a bad file only keeps the
	// last good config (see reload.go).
	cfg, err := config.Parse(raw, opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	start.cfg, start.raw = cfg, raw
	if start.large = len(raw) >= largeConfig; start.large {
		runtime.GC()
	}
	return start, nil
}

// instance is one running server: its settings, gateway, config manager
// and listeners.
type instance struct {
	opts     Options
	full     config.Config // the start config with its defaults
	settings config.Server
	logger   *slog.Logger
	token    string
	gw       *orchestrator.Orchestrator
	manager  *configManager
	draining atomic.Bool

	srv, adminSrv       *http.Server // adminSrv is nil without admin.listen
	mainAddr, adminAddr net.Addr
	tlsOn               bool
	serveErr            chan error
}

// newInstance resolves the settings (flags and the environment over the
// file, over the defaults) and builds the gateway, on a registry that
// persists API endpoints when asked.
func newInstance(opts Options, start *startConfig) (*instance, error) {
	in := &instance{opts: opts, full: start.cfg.WithDefaults(), serveErr: make(chan error, 2)}
	in.settings = in.full.Server
	if opts.Host != "" {
		in.settings.Host = opts.Host
	}
	if opts.Port != "" {
		p, err := strconv.Atoi(opts.Port)
		if err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("port %q is not a TCP port", opts.Port)
		}
		in.settings.Port = p
	}
	level := in.full.Logging.Level
	if opts.LogLevel != "" {
		level = opts.LogLevel
	}
	logger, err := NewLogger(opts.Stderr, level, in.full.Logging.Format)
	if err != nil {
		return nil, err
	}
	in.logger = logger
	in.token = in.full.Admin.Token
	if opts.AdminToken != "" {
		in.token = opts.AdminToken
	}
	gwOpts := []orchestrator.Option{
		orchestrator.WithLogger(logger),
		orchestrator.WithAdminToken(in.token),
		orchestrator.WithAccessLog(in.full.Logging.AccessLogEnabled()),
		orchestrator.WithTraceStart(in.full.Logging.StartTraces),
	}
	gwOpts = append(gwOpts, start.cfg.Options()...)
	if start.cfg.Registry.StateFile != "" {
		reg, err := statefile.Open(start.cfg.Registry.StateFile)
		if err != nil {
			return nil, err
		}
		gwOpts = append(gwOpts, orchestrator.WithRegistry(reg))
	}
	if in.gw, err = orchestrator.New(gwOpts...); err != nil {
		return nil, err
	}
	return in, nil
}

// manageConfig records the start config and, when asked, watches the file.
// stopWatching stops the watcher and waits for it: it runs before the
// gateway closes, so that no reload reaches a closed gateway and nothing
// it started outlives Run.
func (in *instance) manageConfig(ctx context.Context, start *startConfig) (stopWatching func(), err error) {
	configLog := in.logger.With(slog.String("logger", "orchestrator.config"))
	in.manager = newConfigManager(in.opts.ConfigPath, in.gw, configLog)
	in.manager.maxBytes = in.settings.MaxConfigBytes
	reloadOK := in.gw.MetricsSet().NewCounter(`orchestrator_config_reloads_total{result="success"}`)
	reloadFailed := in.gw.MetricsSet().NewCounter(`orchestrator_config_reloads_total{result="failure"}`)
	in.manager.onLoad = func(ok bool) {
		if ok {
			reloadOK.Inc()
		} else {
			reloadFailed.Inc()
		}
	}
	in.manager.initial(*start.cfg, start.raw)
	start.raw = nil
	if start.large {
		debug.FreeOSMemory()
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	var watchDone <-chan struct{}
	if in.opts.ConfigPath != "" && in.opts.Watch {
		if watchDone, err = in.manager.watch(watchCtx); err != nil {
			stopWatch()
			in.manager.memory.close()
			return nil, fmt.Errorf("watching the config file: %w", err)
		}
	}
	return func() {
		stopWatch()
		if watchDone != nil {
			<-watchDone
		}
		in.manager.memory.close()
	}, nil
}

// handlers builds the main listener's handler and the admin API's.
func (in *instance) handlers() (main, guardedAdmin http.Handler) {
	// The admin API reads the token and the logger from the gateway.
	adminOpts := admin.Options{
		AllowedOrigins: in.full.Admin.AllowedOrigins,
		Config:         in.manager,
		Draining:       in.draining.Load,
		Metrics:        in.gw.MetricsHandler(true),
		Version:        in.opts.Version,
		MaxConfigBytes: in.settings.MaxConfigBytes,
	}
	if in.full.Admin.Pprof {
		adminOpts.Pprof = pprofHandler()
	}
	gatewayHandler := http.Handler(in.gw)
	if len(in.full.CORS.AllowedOrigins) > 0 {
		gatewayHandler = orchestrator.CORS(in.full.CORS)(in.gw)
	}
	// The gateway applies the framing and header-count rules itself; the
	// admin API and the 404s beside it get the same rules here, so that a
	// request smuggled behind an admin request cannot reach the gateway.
	guardedAdmin = guardRequests(admin.New(in.gw, adminOpts), in.settings.MaxHeaderCount)
	fallthroughHandler := guardedAdmin
	if in.full.Admin.Listen != "" {
		fallthroughHandler = guardRequests(http.NotFoundHandler(), in.settings.MaxHeaderCount)
	}
	return routeByPrefix(in.gw.Prefix(), gatewayHandler, fallthroughHandler), guardedAdmin
}

// listen binds the main listener, and the admin one when admin.listen is
// set, and serves them; a serving error arrives on serveErr.
func (in *instance) listen() error {
	mainHandler, guardedAdmin := in.handlers()
	errorLog := log.New(&serverErrorWriter{logger: in.logger}, "", 0)
	s := in.settings
	in.srv = &http.Server{
		Handler:           mainHandler,
		ReadHeaderTimeout: s.ReadHeaderTimeout.Std(),
		ReadTimeout:       s.ReadTimeout.Std(),
		WriteTimeout:      s.WriteTimeout.Std(),
		IdleTimeout:       s.IdleTimeout.Std(),
		MaxHeaderBytes:    s.MaxHeaderBytes,
		ErrorLog:          errorLog,
	}
	if in.tlsOn = s.TLS.CertFile != ""; in.tlsOn {
		// Load the pair now, so that a bad file fails the start instead of
		// the serving goroutine after the banner said it was listening.
		cert, err := tls.LoadX509KeyPair(s.TLS.CertFile, s.TLS.KeyFile)
		if err != nil {
			return fmt.Errorf("server.tls: %w", err)
		}
		in.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(s.Host, strconv.Itoa(s.Port)))
	if err != nil {
		return err
	}
	in.mainAddr = ln.Addr()
	in.gw.SetListenAddrs(in.mainAddr.String())
	go func() {
		var err error
		if in.tlsOn {
			err = in.srv.ServeTLS(ln, "", "") // the pair loaded above
		} else {
			err = in.srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			in.serveErr <- err
		}
	}()
	if in.full.Admin.Listen == "" {
		return nil
	}
	adminLn, err := net.Listen("tcp", in.full.Admin.Listen)
	if err != nil {
		in.srv.Close()
		return fmt.Errorf("admin.listen: %w", err)
	}
	in.adminAddr = adminLn.Addr()
	in.gw.SetListenAddrs(in.adminAddr.String())
	in.adminSrv = &http.Server{
		Handler:           guardedAdmin,
		ReadHeaderTimeout: s.ReadHeaderTimeout.Std(),
		IdleTimeout:       s.IdleTimeout.Std(),
		MaxHeaderBytes:    s.MaxHeaderBytes,
		ErrorLog:          errorLog,
	}
	go func() {
		if err := in.adminSrv.Serve(adminLn); !errors.Is(err, http.ErrServerClosed) {
			in.serveErr <- err
		}
	}()
	return nil
}

func (in *instance) closeListeners() {
	in.srv.Close()
	if in.adminSrv != nil {
		in.adminSrv.Close()
	}
}

// shutdown drains and stops: /health turns 503 so load balancers stop
// sending, and for drain_delay the server keeps serving those that have
// not noticed yet, closing each HTTP/1.1 connection after its response so
// that clients reconnect elsewhere. Then the watcher stops, the listeners
// close and in-flight requests get shutdown_timeout to finish.
func (in *instance) shutdown(stopWatching func()) {
	in.draining.Store(true)
	serverLog := in.logger.With(slog.String("logger", "orchestrator.server"))
	if delay := in.settings.DrainDelay.Std(); delay > 0 {
		in.srv.SetKeepAlivesEnabled(false)
		if in.adminSrv != nil {
			in.adminSrv.SetKeepAlivesEnabled(false)
		}
		serverLog.Info("draining: /health answers 503 while serving goes on", slog.String("drain_delay", in.settings.DrainDelay.String()))
		after := in.opts.After
		if after == nil {
			after = time.After
		}
		<-after(delay)
	}
	stopWatching()
	serverLog.Info("shutting down", slog.String("timeout", in.settings.ShutdownTimeout.String()))
	shutdownCtx, cancel := context.WithTimeout(context.Background(), in.settings.ShutdownTimeout.Std())
	defer cancel()
	if in.adminSrv != nil {
		go in.adminSrv.Shutdown(shutdownCtx)
	}
	if err := in.srv.Shutdown(shutdownCtx); err != nil {
		serverLog.Warn("shutdown timeout reached; cutting the remaining connections")
	}
	in.closeListeners()
	in.gw.Close()
	serverLog.Info("stopped")
}

// pprofHandler serves net/http/pprof's handlers under /debug/pprof/, for
// the admin API to mount behind its guard (admin.pprof). The import also
// registers them on http.DefaultServeMux, which orchestratord never serves.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// guardRequests applies the gateway's request rules to a handler that is
// not the gateway: a request whose framing another parser may read
// differently closes its connection after the response, and one with more
// than maxHeaderCount header field lines gets 431 (0: no limit).
func guardRequests(next http.Handler, maxHeaderCount int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w = framing.CloseAfter(w, r)
		if maxHeaderCount > 0 {
			if n := framing.FieldLines(r); n > maxHeaderCount {
				w.Header().Set("Connection", "close")
				problem.Write(w, problem.Details{
					Type:     problem.TypePrefix + "too-many-headers",
					Title:    "Request Header Fields Too Large",
					Status:   http.StatusRequestHeaderFieldsTooLarge,
					Detail:   fmt.Sprintf("the request has %d header field lines; at most %d are accepted (server.max_header_count)", n, maxHeaderCount),
					Instance: r.URL.EscapedPath(),
				}, 0)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// routeByPrefix sends paths under prefix to the gateway and everything else
// to rest. Admin routes therefore can never be reached through the prefix.
func routeByPrefix(prefix string, gateway, rest http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.EscapedPath()
		if strings.HasPrefix(p, prefix) && (len(p) == len(prefix) || p[len(prefix)] == '/') {
			gateway.ServeHTTP(w, r)
			return
		}
		rest.ServeHTTP(w, r)
	})
}

func printBanner(opts Options, listenHost string, addr, adminAddr net.Addr, tlsOn bool, prefix string, echo bool) {
	scheme := "http"
	if tlsOn {
		scheme = "https"
	}
	host := "localhost"
	_, port, _ := net.SplitHostPort(addr.String())
	base := fmt.Sprintf("%s://%s:%s", scheme, host, port)
	fmt.Fprintf(opts.Stdout, "orchestratord %s listening on %s://%s\n", opts.Version, scheme, net.JoinHostPort(listenHost, port))
	fmt.Fprintf(opts.Stdout, "  gateway: %s%s/{name}/{version}/...\n", base, prefix)
	if adminAddr != nil {
		fmt.Fprintf(opts.Stdout, "  admin:   http://%s/health  (API docs at /docs)\n", adminAddr)
	} else {
		fmt.Fprintf(opts.Stdout, "  admin:   %s/health  (API docs at /docs)\n", base)
	}
	if opts.ConfigPath == "" {
		fmt.Fprintf(opts.Stdout, "  config:  embedded default (endpoint echo/v1 -> built-in echo upstream)\n")
	} else {
		fmt.Fprintf(opts.Stdout, "  config:  %s (watching: %v)\n", opts.ConfigPath, opts.Watch)
	}
	if echo {
		flag := ""
		if tlsOn {
			flag = "-k "
		}
		fmt.Fprintf(opts.Stdout, "try: curl %s%s%s/echo/v1/hello\n", flag, base, prefix)
	}
}

// serverErrorWriter sends http.Server's own error lines (TLS handshake
// errors, panics) to the structured log.
type serverErrorWriter struct{ logger *slog.Logger }

func (w *serverErrorWriter) Write(p []byte) (int, error) {
	w.logger.Warn(strings.TrimSpace(string(p)), slog.String("logger", "orchestrator.server"))
	return len(p), nil
}

// NewLogger builds the server's slog logger: JSON (default) or text, with
// the field names of docs/DESIGN.md (timestamp, level, logger, message).
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "", "info":
		lv = slog.LevelInfo
	case "warn", "warning":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	hopts := &slog.HandlerOptions{
		Level: lv,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 {
				switch a.Key {
				case slog.TimeKey:
					a.Key = "timestamp"
				case slog.MessageKey:
					a.Key = "message"
				}
			}
			return a
		},
	}
	switch format {
	case "", "json":
		return slog.New(slog.NewJSONHandler(w, hopts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, hopts)), nil
	}
	return nil, fmt.Errorf("log format %q: want json or text", format)
}
