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

	// The config: a file, or the embedded default with its echo upstream.
	var (
		cfg      *orchestrator.Config
		raw      []byte
		echoAddr string
		err      error
	)
	if opts.ConfigPath == "" {
		echoLn, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("starting the built-in echo upstream: %w", err)
		}
		echoSrv := &http.Server{Handler: http.HandlerFunc(echoHandler), ReadHeaderTimeout: 10 * time.Second}
		go echoSrv.Serve(echoLn)
		defer echoSrv.Close()
		echoAddr = echoLn.Addr().String()
		raw = bytes.ReplaceAll(defaultConfig, []byte("ECHO_URL"), []byte("http://"+echoAddr))
		if cfg, err = orchestrator.ParseConfig(raw, "embedded default"); err != nil {
			return err
		}
	} else {
		raw, err = os.ReadFile(opts.ConfigPath)
		if err != nil {
			return fmt.Errorf("reading the config file: %w", err)
		}
		// A bad file at start is fatal, as with `nginx -t` and Caddy: a
		// server that came up serving nothing would pass its readiness
		// check and answer 404 to everything. The error lists every
		// problem as file:line:column: message. After start, a bad file
		// only keeps the last good config (see reload.go).
		if cfg, err = orchestrator.ParseConfig(raw, opts.ConfigPath); err != nil {
			return err
		}
	}
	// A large file's decoding garbage is collected before the gateway is
	// built, so that what the gateway keeps fills the space it leaves
	// instead of spreading among it, and is handed back to the operating
	// system once the gateway is up (see largeConfig).
	largeStart := len(raw) >= largeConfig
	if largeStart {
		runtime.GC()
	}
	full := cfg.WithDefaults()
	settings := full.Server
	if opts.Host != "" {
		settings.Host = opts.Host
	}
	if opts.Port != "" {
		p, err := strconv.Atoi(opts.Port)
		if err != nil || p < 0 || p > 65535 {
			return fmt.Errorf("port %q is not a TCP port", opts.Port)
		}
		settings.Port = p
	}
	level := full.Logging.Level
	if opts.LogLevel != "" {
		level = opts.LogLevel
	}
	logger, err := NewLogger(opts.Stderr, level, full.Logging.Format)
	if err != nil {
		return err
	}
	token := full.Admin.Token
	if opts.AdminToken != "" {
		token = opts.AdminToken
	}

	// The gateway, on a registry that persists API endpoints when asked.
	gwOpts := []orchestrator.Option{
		orchestrator.WithLogger(logger),
		orchestrator.WithAdminToken(token),
		orchestrator.WithAccessLog(full.Logging.AccessLogEnabled()),
		orchestrator.WithTraceStart(full.Logging.StartTraces),
	}
	gwOpts = append(gwOpts, orchestrator.WithConfig(cfg))
	if cfg.Registry.StateFile != "" {
		reg, err := statefile.Open(cfg.Registry.StateFile)
		if err != nil {
			return err
		}
		gwOpts = append(gwOpts, orchestrator.WithRegistry(reg))
	}
	gw, err := orchestrator.New(gwOpts...)
	if err != nil {
		return err
	}
	defer gw.Close()

	configLog := logger.With(slog.String("logger", "orchestrator.config"))
	manager := newConfigManager(opts.ConfigPath, gw, configLog)
	manager.maxBytes = settings.MaxConfigBytes
	defer manager.memory.close()
	reloadOK := gw.MetricsSet().NewCounter(`orchestrator_config_reloads_total{result="success"}`)
	reloadFailed := gw.MetricsSet().NewCounter(`orchestrator_config_reloads_total{result="failure"}`)
	manager.onLoad = func(ok bool) {
		if ok {
			reloadOK.Inc()
		} else {
			reloadFailed.Inc()
		}
	}
	manager.initial(*cfg, raw)
	raw = nil
	if largeStart {
		debug.FreeOSMemory()
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	var watchDone <-chan struct{}
	if opts.ConfigPath != "" && opts.Watch {
		if watchDone, err = manager.watch(watchCtx); err != nil {
			stopWatch()
			return fmt.Errorf("watching the config file: %w", err)
		}
	}
	// The watcher stops before the gateway closes: no reload may reach a
	// closed gateway, and nothing it started outlives Run.
	stopWatching := func() {
		stopWatch()
		if watchDone != nil {
			<-watchDone
		}
	}
	defer stopWatching()

	var draining atomic.Bool
	adminOpts := admin.Options{
		Token:          token,
		AllowedOrigins: full.Admin.AllowedOrigins,
		Config:         manager,
		Draining:       draining.Load,
		Metrics:        gw.MetricsHandler(true),
		Logger:         logger,
		Version:        opts.Version,
		MaxConfigBytes: settings.MaxConfigBytes,
	}
	if full.Admin.Pprof {
		adminOpts.Pprof = pprofHandler()
	}
	adminHandler := admin.New(gw, adminOpts)

	gatewayHandler := http.Handler(gw)
	if len(full.CORS.AllowedOrigins) > 0 {
		gatewayHandler = orchestrator.CORS(full.CORS)(gw)
	}
	// The gateway applies the framing and header-count rules itself; the
	// admin API and the 404s beside it get the same rules here, so that a
	// request smuggled behind an admin request cannot reach the gateway.
	guardedAdmin := guardRequests(adminHandler, settings.MaxHeaderCount)
	fallthroughHandler := guardedAdmin
	if full.Admin.Listen != "" {
		fallthroughHandler = guardRequests(http.NotFoundHandler(), settings.MaxHeaderCount)
	}
	mainHandler := routeByPrefix(gw.Prefix(), gatewayHandler, fallthroughHandler)

	errorLog := log.New(&serverErrorWriter{logger: logger}, "", 0)
	srv := &http.Server{
		Handler:           mainHandler,
		ReadHeaderTimeout: settings.ReadHeaderTimeout.Std(),
		ReadTimeout:       settings.ReadTimeout.Std(),
		WriteTimeout:      settings.WriteTimeout.Std(),
		IdleTimeout:       settings.IdleTimeout.Std(),
		MaxHeaderBytes:    settings.MaxHeaderBytes,
		ErrorLog:          errorLog,
	}
	tlsOn := settings.TLS.CertFile != ""
	if tlsOn {
		// Load the pair now, so that a bad file fails the start instead of
		// the serving goroutine after the banner said it was listening.
		cert, err := tls.LoadX509KeyPair(settings.TLS.CertFile, settings.TLS.KeyFile)
		if err != nil {
			return fmt.Errorf("server.tls: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(settings.Host, strconv.Itoa(settings.Port)))
	if err != nil {
		return err
	}
	gw.SetListenAddrs(ln.Addr().String())
	serveErr := make(chan error, 2)
	go func() {
		var err error
		if tlsOn {
			err = srv.ServeTLS(ln, "", "") // the pair loaded above
		} else {
			err = srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
		}
	}()

	var adminSrv *http.Server
	var adminAddr net.Addr
	if full.Admin.Listen != "" {
		adminLn, err := net.Listen("tcp", full.Admin.Listen)
		if err != nil {
			srv.Close()
			return fmt.Errorf("admin.listen: %w", err)
		}
		adminAddr = adminLn.Addr()
		gw.SetListenAddrs(adminAddr.String())
		adminSrv = &http.Server{
			Handler:           guardedAdmin,
			ReadHeaderTimeout: settings.ReadHeaderTimeout.Std(),
			IdleTimeout:       settings.IdleTimeout.Std(),
			MaxHeaderBytes:    settings.MaxHeaderBytes,
			ErrorLog:          errorLog,
		}
		go func() {
			if err := adminSrv.Serve(adminLn); !errors.Is(err, http.ErrServerClosed) {
				serveErr <- err
			}
		}()
	}

	printBanner(opts, settings.Host, ln.Addr(), adminAddr, tlsOn, gw.Prefix(), echoAddr != "")
	if opts.Ready != nil {
		opts.Ready(ln.Addr(), adminAddr)
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		srv.Close()
		if adminSrv != nil {
			adminSrv.Close()
		}
		return err
	}

	// Graceful shutdown: /health turns 503 so load balancers stop sending,
	// and for drain_delay the server keeps serving those that have not
	// noticed yet, closing each HTTP/1.1 connection after its response so
	// that clients reconnect elsewhere. Then the listeners close and
	// in-flight requests get shutdown_timeout to finish.
	draining.Store(true)
	if delay := settings.DrainDelay.Std(); delay > 0 {
		srv.SetKeepAlivesEnabled(false)
		if adminSrv != nil {
			adminSrv.SetKeepAlivesEnabled(false)
		}
		logger.Info("draining: /health answers 503 while serving goes on", slog.String("logger", "orchestrator.server"), slog.String("drain_delay", settings.DrainDelay.String()))
		after := opts.After
		if after == nil {
			after = time.After
		}
		<-after(delay)
	}
	stopWatching()
	logger.Info("shutting down", slog.String("logger", "orchestrator.server"), slog.String("timeout", settings.ShutdownTimeout.String()))
	shutdownCtx, cancel := context.WithTimeout(context.Background(), settings.ShutdownTimeout.Std())
	defer cancel()
	if adminSrv != nil {
		go adminSrv.Shutdown(shutdownCtx)
	}
	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Warn("shutdown timeout reached; cutting the remaining connections", slog.String("logger", "orchestrator.server"))
		srv.Close()
	}
	if adminSrv != nil {
		adminSrv.Close()
	}
	gw.Close()
	logger.Info("stopped", slog.String("logger", "orchestrator.server"))
	return nil
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
