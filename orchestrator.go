package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/failsafe-go/failsafe-go"

	"github.com/orchestrator-go/orchestrator/internal/netguard"
	"github.com/orchestrator-go/orchestrator/internal/schedule"
)

// Orchestrator is the gateway: an http.Handler that routes
// {prefix}/{name}/{version}/{rest} to registered endpoints. It owns the
// observed state (health, breakers, counters) while its Registry holds the
// desired state. Create it with New and stop it with Close. All methods are
// safe for concurrent use. An Orchestrator must not be copied.
type Orchestrator struct {
	prefix          string
	registry        Registry
	transport       http.RoundTripper
	ownTransport    *http.Transport // closed on Close when New made it
	tls             tlsTransports   // the transports of targets' tls sections
	prober          Prober
	logger          *slog.Logger
	loggerKey       string // WithLoggerKey: the key component loggers name themselves under
	routerLog       *slog.Logger
	healthLog       *slog.Logger
	breakerLog      *slog.Logger
	breakerDefaults CircuitBreakerConfig
	// rateLimitDefaults apply to each endpoint without its own rate_limit,
	// with buckets of its own (WithRateLimit, Desired.RateLimit).
	rateLimitDefaults RateLimits
	// adaptiveDefaults is the global adaptive_concurrency section, or nil
	// (WithAdaptiveConcurrency, Desired.AdaptiveConcurrency).
	adaptiveDefaults *AdaptiveConcurrencyConfig
	healthDefaults   *HealthCheckConfig // never changed in place: routes share it
	trustedProxies   []netip.Prefix
	maxBodyBytes     int64
	maxHeaderCount   int    // 0: no limit
	adminAuth        string // "Bearer <admin token>", or "" when none is set
	proxy            *httputil.ReverseProxy
	guard            *netguard.Guard
	metrics          *gatewayMetrics // nil when metrics are off
	metricsSet       *metrics.Set    // metrics.set, or an empty set when they are off
	metricsLabels    string          // WithMetricsLabels, rendered for a series' braces
	accessLog        *slog.Logger    // nil when the access log is off
	startTraces      bool
	extraPolicies    []failsafe.Policy[*http.Response]

	// table is the published route snapshot read by every request.
	table atomic.Pointer[routeTable]

	// writeMu serialises this gateway's own writes (registration, sync) from
	// their checks through the registry call to applying the result. It is
	// held while calling the registry; mu never is (see reconcile.go).
	writeMu sync.Mutex

	// mu guards the route state, for writers and the registry follower; it
	// is never held while calling the registry. Readers never take it.
	mu      sync.Mutex
	entries map[string]*route
	// followed is the registry revision the follower has applied through;
	// tombs holds removals applied ahead of it, by id (or override key), so
	// that an older change arriving late is not applied (reconcile.go).
	followed  uint64
	tombs     map[string]uint64
	overrides map[string]Override // the operator overrides followed, by key
	// byName indexes entries by route name, and dirty collects what changed
	// since the last publish, so that a publish rebuilds only the names
	// touched (one registration among 10,000 does not rebuild 10,000).
	byName     map[string][]*route // most names have one id: a slice, not a map each
	dirtyIDs   map[string]struct{}
	dirtyNames map[string]struct{}

	// probeRoutes is the route each health probe checks, by id, kept by
	// setEntryLocked and deleteEntryLocked under probeMu (taken inside mu),
	// so that probes never wait for mu: a long reload must not stall them.
	probeMu     sync.Mutex
	probeRoutes map[string]*route

	checker *schedule.Scheduler[string]
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closed  atomic.Bool
}

// SetListenAddrs tells the gateway where it listens ("host:port"; an
// unspecified host means every local address), so that no endpoint can
// route back into it. orchestratord calls it with its main and admin
// listeners. Safe for concurrent use.
func (o *Orchestrator) SetListenAddrs(addrs ...string) { o.guard.SetListeners(addrs...) }

// New builds an Orchestrator, registers the WithEndpoints endpoints, loads
// the registry and starts health checking. Call Close to stop it.
func New(opts ...Option) (*Orchestrator, error) {
	cfg := options{prefix: DefaultPrefix, probeWorkers: 32, maxHeaderCount: DefaultMaxHeaderCount, loggerKey: "logger"}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	healthDefaults := cfg.health.withDefaults()
	o := &Orchestrator{
		healthDefaults:    &healthDefaults,
		prefix:            cfg.prefix,
		registry:          cfg.registry,
		transport:         cfg.transport,
		prober:            cfg.prober,
		logger:            cfg.logger,
		breakerDefaults:   cfg.breaker.withDefaults(),
		rateLimitDefaults: cfg.rateLimit,
		adaptiveDefaults:  cfg.adaptive,
		trustedProxies:    cfg.trustedProxies,
		maxBodyBytes:      cfg.maxBodyBytes,
		maxHeaderCount:    cfg.maxHeaderCount,
		adminAuth:         bearer(cfg.adminToken),
		extraPolicies:     cfg.extraPolicies,
		startTraces:       cfg.startTraces,
		byName:            make(map[string][]*route),
		dirtyIDs:          make(map[string]struct{}),
		dirtyNames:        make(map[string]struct{}),
		entries:           make(map[string]*route),
		tombs:             make(map[string]uint64),
		overrides:         make(map[string]Override),
		probeRoutes:       make(map[string]*route),
	}
	if o.registry == nil {
		o.registry = NewMemoryRegistry()
	}
	guard, err := netguard.New(cfg.allowedUpstreams)
	if err != nil {
		// WithAllowedUpstreams checks every entry, so this is only a guard
		// against the two drifting apart.
		return nil, invalidOption("WithAllowedUpstreams", fmt.Sprintf("%q", cfg.allowedUpstreams), err.Error())
	}
	o.guard = guard
	if o.transport == nil {
		o.ownTransport = NewTransport()
		o.ownTransport.DialContext = guard.DialContext(upstreamDialer())
		o.transport = o.ownTransport
	}
	if o.prober == nil {
		o.prober = &HTTPProber{Client: &http.Client{Transport: o.transport, CheckRedirect: noRedirects}}
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	o.loggerKey = cfg.loggerKey
	o.routerLog = componentLogger(o.logger, cfg.loggerKey, "orchestrator.router")
	o.healthLog = componentLogger(o.logger, cfg.loggerKey, "orchestrator.health")
	o.breakerLog = componentLogger(o.logger, cfg.loggerKey, "orchestrator.breaker")
	if cfg.accessLog {
		o.accessLog = componentLogger(o.logger, cfg.loggerKey, "orchestrator.access")
	}
	o.metricsLabels = renderMetricsLabels(cfg.metricsLabels)
	if !cfg.noMetrics {
		o.metrics = newGatewayMetrics(o)
		o.metricsSet = o.metrics.set
	} else {
		// Still a set, so that MetricsSet, WritePrometheus and
		// MetricsHandler work (and expose only what the program adds).
		o.metricsSet = metrics.NewSet()
	}
	o.proxy = o.newReverseProxy()
	o.table.Store(emptyTable)
	o.ctx, o.cancel = context.WithCancel(context.Background())
	o.checker = schedule.New(cfg.probeWorkers, o.probe, func(id string, v any) {
		o.healthLog.Error("health probe panicked", slog.String("endpoint_id", id), slog.Any("panic", v))
	})

	// Follow the registry before writing to it: a registry may deliver the
	// event of a write before the write returns.
	if err := o.startFollowing(); err != nil {
		o.Close()
		return nil, err
	}
	if len(cfg.endpoints) > 0 {
		if err := o.Sync(o.ctx, SourceConfig, cfg.endpoints); err != nil {
			o.Close()
			if errors.Is(err, ErrInvalid) {
				// Validated together here rather than in the option, so that
				// duplicates across several WithEndpoints are found.
				n := fmt.Sprintf("%d endpoints", len(cfg.endpoints))
				if len(cfg.endpoints) == 1 {
					n = "1 endpoint"
				}
				return nil, invalidSection("WithEndpoints", n, err)
			}
			return nil, err
		}
	}
	return o, nil
}

// Close stops health checks and the registry watch and closes idle upstream
// connections of the default transport. In-flight requests are not cut;
// drain them with http.Server.Shutdown first. A request that arrives after
// Close is answered 503 (problem kind "gateway-closed", with Connection:
// close so the client's next request opens a connection that may reach a
// live instance), and the methods that change routes return ErrClosed.
// Close is idempotent.
func (o *Orchestrator) Close() error {
	if !o.closed.CompareAndSwap(false, true) {
		return nil
	}
	// Writers check closed under o.mu: taking it here waits for one that
	// checked before the swap, so none changes the routes (or re-adds a
	// health probe) after Close goes on to stop the scheduler.
	o.mu.Lock()
	o.cancel()
	o.mu.Unlock()
	o.checker.Close()
	o.wg.Wait()
	o.tls.closeIdle()
	if o.ownTransport != nil {
		o.ownTransport.CloseIdleConnections()
	}
	return nil
}

// Prefix returns the path prefix the gateway serves under, without a
// trailing "/": "" when it serves at the root (WithPrefix("/")), so that
// Prefix()+"/"+name and mux.Handle(o.Prefix()+"/", o) work either way.
func (o *Orchestrator) Prefix() string { return o.prefix }

// AdminToken returns the admin API's bearer token set by WithAdminToken, or
// "" when none is set. The admin package reads it, so that the token is
// configured once and the admin API accepts exactly the token the gateway
// keeps from reaching a backend.
func (o *Orchestrator) AdminToken() string { return strings.TrimPrefix(o.adminAuth, "Bearer ") }

// ComponentLogger returns the logger a component of the gateway writes to:
// the logger set with WithLogger (or slog.Default() as it was when New ran),
// with name under the key set with WithLoggerKey ("logger" by default; no
// name when the key is ""). The admin package logs through it as
// "orchestrator.admin", so that an embedder's key applies there too.
func (o *Orchestrator) ComponentLogger(name string) *slog.Logger {
	return componentLogger(o.logger, o.loggerKey, name)
}

// componentLogger derives the logger of one gateway component: base with
// key=name, or base itself when key is "" (WithLoggerKey), the embedder's
// way of saying that base already names its lines.
func componentLogger(base *slog.Logger, key, name string) *slog.Logger {
	if key == "" {
		return base
	}
	return base.With(slog.String(key, name))
}

// errIfClosed is the first check of every method that changes routes, made
// again under o.mu (see Close).
func (o *Orchestrator) errIfClosed() error {
	if o.closed.Load() {
		return ErrClosed
	}
	return nil
}

// serveClosed answers a request that reached a closed gateway: 503, since
// the failure is this instance's and another may serve the same request, but
// no Retry-After, since this instance will not come back. Connection: close
// makes the client's next request open a new connection, which a load
// balancer can send to a live instance.
func (o *Orchestrator) serveClosed(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := requestID(r)
	h := w.Header()
	h["X-Request-Id"] = []string{reqID}
	h["Connection"] = []string{"close"}
	o.writeProblem(w, r, reqID, nil, http.StatusServiceUnavailable, "gateway-closed", "Service Unavailable", "the gateway is closed and serves no more requests", 0)
	o.observe(r, nil, reqIDs{request: reqID}, http.StatusServiceUnavailable, start)
}

// Registry returns the registry holding the desired state.
func (o *Orchestrator) Registry() Registry { return o.registry }

var _ io.Closer = (*Orchestrator)(nil)
var _ http.Handler = (*Orchestrator)(nil)
