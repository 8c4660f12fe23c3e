package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/failsafe-go/failsafe-go/bulkhead"

	"github.com/orchestrator-go/orchestrator/internal/netguard"
	"github.com/orchestrator-go/orchestrator/internal/schedule"
	"github.com/orchestrator-go/orchestrator/internal/urlpath"
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
	prober          Prober
	logger          *slog.Logger
	routerLog       *slog.Logger
	healthLog       *slog.Logger
	breakerLog      *slog.Logger
	breakerDefaults CircuitBreakerConfig
	healthDefaults  *HealthCheckConfig // never changed in place: routes share it
	trustedProxies  []netip.Prefix
	maxBodyBytes    int64
	maxHeaderCount  int    // 0: no limit
	adminAuth       string // "Bearer <admin token>", or "" when none is set
	proxy           *httputil.ReverseProxy
	guard           *netguard.Guard
	metrics         *gatewayMetrics // nil when metrics are off
	metricsSet      *metrics.Set    // metrics.set, or an empty set when they are off
	accessLog       *slog.Logger    // nil when the access log is off
	startTraces     bool

	// table is the published route snapshot read by every request.
	table atomic.Pointer[routeTable]

	// mu serialises writers: registration, sync and registry events. Readers
	// never take it.
	mu      sync.Mutex
	entries map[string]*route
	// byName indexes entries by route name, and dirty collects what changed
	// since the last publish, so that a publish rebuilds only the names
	// touched (one registration among 10,000 does not rebuild 10,000).
	byName     map[string][]*route // most names have one id: a slice, not a map each
	dirtyIDs   map[string]struct{}
	dirtyNames map[string]struct{}

	checker *schedule.Scheduler[string]
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closed  atomic.Bool
}

// Option configures New.
type Option func(*options) error

type options struct {
	prefix           string
	registry         Registry
	endpoints        []Endpoint
	transport        http.RoundTripper
	prober           Prober
	logger           *slog.Logger
	breaker          CircuitBreakerConfig
	health           HealthCheckConfig
	trustedProxies   []netip.Prefix
	probeWorkers     int
	maxBodyBytes     int64
	maxHeaderCount   int
	adminToken       string
	noMetrics        bool
	accessLog        bool
	startTraces      bool
	allowedUpstreams []string
}

// WithPrefix sets the path prefix the gateway serves under. Default
// "/orchestrator". It must start with "/"; a trailing "/" is ignored.
func WithPrefix(prefix string) Option {
	return func(o *options) error {
		prefix = strings.TrimSuffix(prefix, "/")
		if prefix != "" && (!strings.HasPrefix(prefix, "/") || urlpath.HasDotSegment(prefix) || strings.ContainsAny(prefix, "?#")) {
			return fmt.Errorf("orchestrator: prefix %q must be an absolute path such as /orchestrator", prefix)
		}
		o.prefix = prefix
		return nil
	}
}

// WithEndpoints registers endpoints owned by configuration (source
// "config") when New runs. All are validated together; any problem fails New
// with a *ValidationError listing every one.
func WithEndpoints(endpoints ...Endpoint) Option {
	return func(o *options) error {
		o.endpoints = append(o.endpoints, endpoints...)
		return nil
	}
}

// WithRegistry replaces the in-memory registry, for example with one backed
// by etcd or a database shared by several gateways. Endpoints it already
// holds are loaded by New, and its Watch events are followed until Close.
func WithRegistry(r Registry) Option {
	return func(o *options) error {
		if r == nil {
			return errors.New("orchestrator: WithRegistry(nil)")
		}
		o.registry = r
		return nil
	}
}

// WithTransport sets the RoundTripper that carries requests upstream. The
// default is a tuned *http.Transport (see NewTransport). A custom transport
// should not decompress responses or follow proxies, or the gateway stops
// being transparent.
func WithTransport(rt http.RoundTripper) Option {
	return func(o *options) error {
		if rt == nil {
			return errors.New("orchestrator: WithTransport(nil)")
		}
		o.transport = rt
		return nil
	}
}

// WithProber replaces the default HTTP GET health probe.
func WithProber(p Prober) Option {
	return func(o *options) error {
		if p == nil {
			return errors.New("orchestrator: WithProber(nil)")
		}
		o.prober = p
		return nil
	}
}

// WithLogger sets the structured logger. Default: slog.Default(). Each
// component logs with a "logger" attribute: orchestrator.router,
// orchestrator.health, orchestrator.breaker.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("orchestrator: WithLogger(nil)")
		}
		o.logger = l
		return nil
	}
}

// WithCircuitBreaker sets the global circuit-breaker defaults that every
// endpoint's circuit_breaker section is merged over. Zero fields keep the
// package defaults (5 failures, 60s, 1 trial, every 5xx is a failure).
func WithCircuitBreaker(c CircuitBreakerConfig) Option {
	return func(o *options) error {
		var errs ValidationError
		c.validate("circuit_breaker", &errs)
		if err := errs.orNil(); err != nil {
			return err
		}
		o.breaker = c
		return nil
	}
}

// WithHealthCheck sets the global health-check defaults that every
// endpoint's health_check section is merged over. Zero fields keep the
// package defaults (enabled, 30s interval, 10s timeout, 3 failures to go
// unhealthy, 2 successes to recover).
func WithHealthCheck(c HealthCheckConfig) Option {
	return func(o *options) error {
		var errs ValidationError
		c.validate("health_check", &errs)
		if err := errs.orNil(); err != nil {
			return err
		}
		o.health = c
		return nil
	}
}

// WithTrustedProxies lists the networks whose X-Forwarded-For,
// X-Forwarded-Host, X-Forwarded-Proto and Forwarded headers are kept (and
// appended to). From any other client they are replaced. Default: none, so
// a client can never forge its address.
func WithTrustedProxies(prefixes ...netip.Prefix) Option {
	return func(o *options) error {
		for _, p := range prefixes {
			if !p.IsValid() {
				return fmt.Errorf("orchestrator: invalid trusted proxy prefix %v", p)
			}
			o.trustedProxies = append(o.trustedProxies, p.Masked())
		}
		return nil
	}
}

// WithConfig applies a configuration file's gateway settings: the prefix,
// trusted proxies, request body limit, breaker and health defaults, and its
// endpoints (source "config"). Options after it override it.
func WithConfig(cfg *Config) Option {
	return func(o *options) error {
		if cfg == nil {
			return errors.New("orchestrator: WithConfig(nil)")
		}
		if err := cfg.Validate(); err != nil {
			return err
		}
		if cfg.Server.Prefix != "" {
			if err := WithPrefix(cfg.Server.Prefix)(o); err != nil {
				return err
			}
		}
		for _, s := range cfg.Server.TrustedProxies {
			p, _ := ParseTrustedProxy(s) // validated above
			o.trustedProxies = append(o.trustedProxies, p)
		}
		o.maxBodyBytes = cfg.Server.MaxBodyBytes
		if cfg.Server.MaxHeaderCount > 0 {
			o.maxHeaderCount = cfg.Server.MaxHeaderCount
		}
		o.allowedUpstreams = append(o.allowedUpstreams, cfg.Registry.AllowedUpstreams...)
		o.breaker = cfg.CircuitBreaker
		o.health = cfg.HealthCheck
		o.endpoints = append(o.endpoints, cfg.Endpoints...)
		return nil
	}
}

// WithMaxBodyBytes caps request bodies: a larger declared Content-Length
// gets 413 at once, and a body that grows past the cap while streaming is
// cut and answered 413 if no response has started. Default 0: no limit.
func WithMaxBodyBytes(n int64) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("orchestrator: max body bytes %d must not be negative", n)
		}
		o.maxBodyBytes = n
		return nil
	}
}

// WithMaxHeaderCount caps the header field lines of a request: one with
// more gets 431 and its connection is closed, as Envoy's max_headers_count
// does. Go's server limits header bytes only (MaxHeaderBytes), so ten
// thousand one-byte headers would otherwise be forwarded. Default
// DefaultMaxHeaderCount (100); 0 turns the limit off.
func WithMaxHeaderCount(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("orchestrator: max header count %d must not be negative", n)
		}
		o.maxHeaderCount = n
		return nil
	}
}

// WithAdminToken names the admin API's bearer token so that the gateway can
// keep it from ever reaching a backend: a proxied request whose
// Authorization carries exactly that token has the header removed before
// forwarding (the token is a credential for the gateway's own admin hop, like
// Proxy-Authorization). Every other Authorization passes through untouched.
func WithAdminToken(token string) Option {
	return func(o *options) error {
		o.adminToken = token
		return nil
	}
}

// WithMetrics turns the Prometheus metrics on or off. Default on: they cost
// no allocation per request (see BENCHMARKS.md).
func WithMetrics(enabled bool) Option {
	return func(o *options) error {
		o.noMetrics = !enabled
		return nil
	}
}

// WithAccessLog writes one line per request handled under the prefix to
// the logger (logger "orchestrator.access", level info, warn for 5xx):
// request_id, endpoint_id, method, path, status_code, response_time in
// seconds, and trace_id when the request carries W3C trace context.
// Headers and query strings are never logged. Default off for the library;
// orchestratord turns it on (logging.access_log).
func WithAccessLog(enabled bool) Option {
	return func(o *options) error {
		o.accessLog = enabled
		return nil
	}
}

// WithTraceStart makes the gateway start a W3C trace for a request that
// carries no valid traceparent: it sends the backend a new sampled
// traceparent, so backend logs and the gateway's access log share a trace
// id. A request's own trace context always passes through untouched.
// Default off.
func WithTraceStart(enabled bool) Option {
	return func(o *options) error {
		o.startTraces = enabled
		return nil
	}
}

// WithAllowedUpstreams lists CIDRs, IP addresses or host names that
// endpoints may point at even where the upstream guard would refuse them.
// The guard refuses link-local and cloud-metadata addresses (169.254.0.0/16,
// fe80::/10, fd00:ec2::254, 100.100.100.200), however they are written (an
// IPv6 zone, or an IPv4 address carried in IPv4-mapped, IPv4-compatible,
// NAT64 or 6to4 IPv6), and the gateway's own listeners (SetListenAddrs): at registration through Register or Update (after DNS
// resolution) and at every dial of the default transport, health probes
// included. A custom WithTransport is not guarded.
func WithAllowedUpstreams(entries ...string) Option {
	return func(o *options) error {
		o.allowedUpstreams = append(o.allowedUpstreams, entries...)
		return nil
	}
}

// WithHealthCheckConcurrency bounds how many probes run at once. Default 32:
// thousands of endpoints are checked by that many goroutines.
func WithHealthCheckConcurrency(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("orchestrator: health check concurrency %d must be > 0", n)
		}
		o.probeWorkers = n
		return nil
	}
}

func bearer(token string) string {
	if token == "" {
		return ""
	}
	return "Bearer " + token
}

// NewTransport returns the tuned transport the gateway uses by default: 5s
// dial timeout, 256 idle connections per upstream host kept 90s, HTTP/2 to
// TLS upstreams, no compression (bodies pass through byte for byte) and no
// environment proxy (a gateway's upstreams are addressed directly).
func NewTransport() *http.Transport {
	dialer := upstreamDialer()
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          0, // no global cap; the per-host cap bounds it
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		DisableCompression:    true,
	}
}

func upstreamDialer() *net.Dialer {
	return &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
}

// SetListenAddrs tells the gateway where it listens ("host:port"; an
// unspecified host means every local address), so that no endpoint can
// route back into it. orchestratord calls it with its main and admin
// listeners. Safe for concurrent use.
func (o *Orchestrator) SetListenAddrs(addrs ...string) { o.guard.SetListeners(addrs...) }

// checkUpstream refuses an upstream the guard forbids, resolving its host.
func (o *Orchestrator) checkUpstream(ctx context.Context, ep Endpoint) error {
	u, err := parseUpstreamURL(ep.URL)
	if err != nil {
		return nil // Validate reports it
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	p, _ := strconv.Atoi(port)
	if err := o.guard.CheckHost(ctx, u.Hostname(), uint16(p)); err != nil {
		return &ValidationError{Errors: []FieldError{{Field: "url", Message: err.Error()}}}
	}
	return nil
}

// New builds an Orchestrator, registers the WithEndpoints endpoints, loads
// the registry and starts health checking. Call Close to stop it.
func New(opts ...Option) (*Orchestrator, error) {
	cfg := options{prefix: DefaultPrefix, probeWorkers: 32, maxHeaderCount: DefaultMaxHeaderCount}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	healthDefaults := cfg.health.withDefaults()
	o := &Orchestrator{
		healthDefaults:  &healthDefaults,
		prefix:          cfg.prefix,
		registry:        cfg.registry,
		transport:       cfg.transport,
		prober:          cfg.prober,
		logger:          cfg.logger,
		breakerDefaults: cfg.breaker.withDefaults(),
		trustedProxies:  cfg.trustedProxies,
		maxBodyBytes:    cfg.maxBodyBytes,
		maxHeaderCount:  cfg.maxHeaderCount,
		adminAuth:       bearer(cfg.adminToken),
		startTraces:     cfg.startTraces,
		byName:          make(map[string][]*route),
		dirtyIDs:        make(map[string]struct{}),
		dirtyNames:      make(map[string]struct{}),
		entries:         make(map[string]*route),
	}
	if o.registry == nil {
		o.registry = NewMemoryRegistry()
	}
	guard, err := netguard.New(cfg.allowedUpstreams)
	if err != nil {
		return nil, fmt.Errorf("orchestrator: allowed upstreams: %w", err)
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
	o.routerLog = o.logger.With(slog.String("logger", "orchestrator.router"))
	o.healthLog = o.logger.With(slog.String("logger", "orchestrator.health"))
	o.breakerLog = o.logger.With(slog.String("logger", "orchestrator.breaker"))
	if cfg.accessLog {
		o.accessLog = o.logger.With(slog.String("logger", "orchestrator.access"))
	}
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

	// Subscribe before the first List so that no change falls between them.
	events, err := o.registry.Watch(o.ctx)
	if err != nil {
		o.Close()
		return nil, fmt.Errorf("orchestrator: watching the registry: %w", err)
	}
	if err := o.Refresh(o.ctx); err != nil {
		o.Close()
		return nil, err
	}
	if len(cfg.endpoints) > 0 {
		if err := o.Sync(o.ctx, SourceConfig, cfg.endpoints); err != nil {
			o.Close()
			return nil, err
		}
	}
	o.wg.Add(1)
	go o.follow(events)
	return o, nil
}

// Close stops health checks and the registry watch and closes idle upstream
// connections of the default transport. In-flight requests are not cut;
// drain them with http.Server.Shutdown first. Close is idempotent.
func (o *Orchestrator) Close() error {
	if !o.closed.CompareAndSwap(false, true) {
		return nil
	}
	o.cancel()
	o.checker.Close()
	o.wg.Wait()
	if o.ownTransport != nil {
		o.ownTransport.CloseIdleConnections()
	}
	return nil
}

// Prefix returns the path prefix the gateway serves under.
func (o *Orchestrator) Prefix() string { return o.prefix }

// Registry returns the registry holding the desired state.
func (o *Orchestrator) Registry() Registry { return o.registry }

// follow applies registry events until Close. Events already applied (our
// own writes) are recognised by revision and cost one Get.
func (o *Orchestrator) follow(events <-chan Event) {
	defer o.wg.Done()
	defer func() {
		if v := recover(); v != nil {
			o.routerLog.Error("registry watch panicked; routes stop following the registry", slog.Any("panic", v))
		}
	}()
	for ev := range events {
		batch := []Event{ev}
		// Coalesce a burst into one table rebuild.
	drain:
		for len(batch) < 1024 {
			select {
			case more, ok := <-events:
				if !ok {
					break drain
				}
				batch = append(batch, more)
			default:
				break drain
			}
		}
		o.applyEvents(batch)
	}
}

func (o *Orchestrator) applyEvents(batch []Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	changed := false
	for _, ev := range batch {
		if ev.Kind == EventResync {
			if err := o.refreshLocked(o.ctx); err != nil {
				o.routerLog.Error("registry resync failed", slog.String("error", err.Error()))
			}
			continue
		}
		reg, err := o.registry.Get(o.ctx, ev.ID)
		switch {
		case errors.Is(err, ErrNotFound):
			changed = o.removeLocked(ev.ID) || changed
		case err != nil:
			o.routerLog.Error("reading a changed endpoint from the registry failed", slog.String("endpoint_id", ev.ID), slog.String("error", err.Error()))
		default:
			changed = o.putLocked(reg) || changed
		}
	}
	if changed {
		o.publishLocked()
	}
}

// Refresh re-reads the whole registry and rebuilds the route table. It is
// what POST /router/refresh does; registry events make it unnecessary in
// normal operation.
func (o *Orchestrator) Refresh(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.refreshLocked(ctx)
}

func (o *Orchestrator) refreshLocked(ctx context.Context) error {
	regs, err := o.registry.List(ctx)
	if err != nil {
		return fmt.Errorf("orchestrator: listing the registry: %w", err)
	}
	seen := make(map[string]struct{}, len(regs))
	for _, reg := range regs {
		seen[reg.Endpoint.ID] = struct{}{}
		o.putLocked(reg)
	}
	for id := range o.entries {
		if _, ok := seen[id]; !ok {
			o.removeLocked(id)
		}
	}
	o.publishLocked()
	return nil
}

// putLocked builds the route for reg unless the same revision is applied.
// A registration that fails validation (written by someone else to a shared
// registry) is logged and left out.
func (o *Orchestrator) putLocked(reg Registration) bool {
	return o.putCheckedLocked(reg, nil)
}

// putCheckedLocked is putLocked for a registration the registry returned
// after storing checked, an endpoint already validated: unless the
// registry changed it, it is not validated again (a reload of 10,000
// endpoints would otherwise validate each twice).
func (o *Orchestrator) putCheckedLocked(reg Registration, checked *Endpoint) bool {
	id := reg.Endpoint.ID
	old := o.entries[id]
	if old != nil && old.reg.Revision == reg.Revision && reg.Revision != 0 {
		return false
	}
	if validated := checked != nil && endpointsEqual(*checked, reg.Endpoint); !validated {
		if err := reg.Endpoint.Validate(); err != nil {
			o.routerLog.Error("ignoring an invalid endpoint from the registry", slog.String("endpoint_id", id), slog.String("error", err.Error()))
			return o.removeLocked(id)
		}
	}
	rt, err := o.buildRoute(reg, old)
	if err != nil {
		o.routerLog.Error("ignoring an endpoint that cannot be routed", slog.String("endpoint_id", id), slog.String("error", err.Error()))
		return o.removeLocked(id)
	}
	o.setEntryLocked(id, rt)
	switch {
	case !rt.healthActive:
		o.checker.Remove(id)
	case old == nil || !old.healthActive || old.probeURL != rt.probeURL || !sameJSON(old.health, rt.health):
		// Probe right away: a new endpoint's status should not wait an interval.
		o.checker.Add(id, 0)
	}
	return true
}

func (o *Orchestrator) removeLocked(id string) bool {
	if _, ok := o.entries[id]; !ok {
		return false
	}
	o.deleteEntryLocked(id)
	// Its series go away with it: they are written from the route table.
	o.checker.Remove(id)
	return true
}

func (o *Orchestrator) setEntryLocked(id string, rt *route) {
	if old := o.entries[id]; old != nil && old.ep.Name != rt.ep.Name {
		o.unindexLocked(old)
	}
	o.entries[id] = rt
	named := o.byName[rt.ep.Name]
	if i := slices.IndexFunc(named, func(r *route) bool { return r.id == id }); i >= 0 {
		named[i] = rt
	} else {
		o.byName[rt.ep.Name] = append(named, rt)
	}
	o.dirtyIDs[id] = struct{}{}
	o.dirtyNames[rt.ep.Name] = struct{}{}
}

func (o *Orchestrator) deleteEntryLocked(id string) {
	if old := o.entries[id]; old != nil {
		o.unindexLocked(old)
	}
	delete(o.entries, id)
	o.dirtyIDs[id] = struct{}{}
}

func (o *Orchestrator) unindexLocked(rt *route) {
	named := slices.DeleteFunc(o.byName[rt.ep.Name], func(r *route) bool { return r.id == rt.id })
	if len(named) == 0 {
		delete(o.byName, rt.ep.Name)
	} else {
		o.byName[rt.ep.Name] = named
	}
	o.dirtyNames[rt.ep.Name] = struct{}{}
}

// publishLocked swaps in a route table reflecting o.entries. When few
// entries changed it edits a copy of the previous table's indexes (which
// copies only the shards touched) for the ids and names touched;
// otherwise it rebuilds everything.
func (o *Orchestrator) publishLocked() {
	prev := o.table.Load()
	var (
		t        *routeTable
		shadowed []*route
	)
	if prev == emptyTable || len(o.dirtyIDs)*8 > len(o.entries) {
		t, shadowed = buildTable(o.entries)
	} else {
		ids := prev.ids.Edit()
		paths := prev.paths.Edit()
		for id := range o.dirtyIDs {
			// The path the endpoint's previous route served is given up
			// first; the names loop below sets every touched name's paths
			// to the routes that serve them now (a route it shadowed, say).
			if old := prev.ids.Get(id); old != nil && prev.paths.Get(old.path) == old {
				paths.Delete(old.path)
			}
			ids.Set(id, o.entries[id]) // nil deletes
		}
		for name := range o.dirtyNames {
			byPath, sh := servingRoutes(o.routesNamedLocked(name))
			shadowed = append(shadowed, sh...)
			for path, rt := range byPath {
				paths.Set(path, rt)
			}
		}
		t = &routeTable{ids: ids.Index(), paths: paths.Index()}
	}
	// After a large change, fresh sets: clear keeps a map's full size, and
	// these would hold room for 10,000 ids for good after one big reload.
	if len(o.dirtyIDs) > 64 {
		o.dirtyIDs = make(map[string]struct{})
	} else {
		clear(o.dirtyIDs)
	}
	if len(o.dirtyNames) > 64 {
		o.dirtyNames = make(map[string]struct{})
	} else {
		clear(o.dirtyNames)
	}
	for _, rt := range shadowed {
		o.routerLog.Warn("two endpoints claim the same route; the earlier registration serves it",
			slog.String("endpoint_id", rt.id), slog.String("route", o.prefix+routeKeyString(rt.ep.Name, rt.ep.Version)))
	}
	o.table.Store(t)
}

// routesNamedLocked returns the routes of one name, by id.
func (o *Orchestrator) routesNamedLocked(name string) map[string]*route {
	named := o.byName[name]
	m := make(map[string]*route, len(named))
	for _, rt := range named {
		m[rt.id] = rt
	}
	return m
}

// buildRoute computes everything the hot path needs for reg. Observed state
// carries over from old when the upstream stays the same.
func (o *Orchestrator) buildRoute(reg Registration, old *route) (*route, error) {
	// Normalized: a registry written by others may hold "get" for GET.
	ep := reg.Endpoint.Normalized()
	target, err := parseUpstreamURL(ep.URL)
	if err != nil {
		return nil, err
	}
	rt := &route{
		id:       ep.ID,
		reg:      registration{Source: reg.Source, Revision: reg.Revision, RegisteredAt: reg.RegisteredAt},
		ep:       ep,
		path:     routeKeyString(ep.Name, ep.Version),
		scheme:   target.Scheme,
		host:     target.Host,
		basePath: target.EscapedPath(),
		timeout:  ep.Timeout.Std(),
		allowAll: len(ep.Methods) == 0,
	}
	if rt.timeout == 0 {
		rt.timeout = DefaultTimeout
	}
	if rt.allowAll {
		rt.allow = allowAllHeader
	} else {
		rt.allow = allowHeader(ep.Methods)
	}

	breakerCfg := o.breakerDefaults
	if ep.CircuitBreaker != nil {
		breakerCfg = ep.CircuitBreaker.merge(o.breakerDefaults)
	}
	if o.metrics != nil {
		// The series of an id keep counting across its config changes.
		if old != nil && old.metrics != nil {
			rt.metrics = old.metrics
		} else {
			rt.metrics = &endpointMetrics{}
		}
	}
	rt.breaker = newBreaker(breakerCfg, o.logBreakerChange(ep.ID, rt.metrics))
	if old != nil && old.breaker.state() == BreakerOpen {
		// A config change rebuilds the breaker, which also ends a manual
		// trip: say so, since the endpoint starts taking traffic again.
		o.breakerLog.Warn("circuit breaker rebuilt for a config change; it was open and starts closed",
			slog.String("endpoint_id", ep.ID), slog.String("from", string(BreakerOpen)), slog.String("to", string(BreakerClosed)))
	}
	if ep.MaxConcurrent > 0 {
		rt.bulkhead = bulkhead.New[any](uint(ep.MaxConcurrent))
	}

	rt.health = o.healthDefaults
	if ep.HealthCheck != nil {
		merged := ep.HealthCheck.merge(*o.healthDefaults)
		rt.health = &merged
	}
	rt.healthActive = ep.HealthCheckPath != "" && rt.health.enabled() && !ep.Disabled
	if rt.healthActive {
		probe := *target
		probe.Path, probe.RawPath = "", ""
		rt.probeURL = probe.String() + ep.HealthCheckPath
	}

	sameUpstream := old != nil && old.ep.URL == ep.URL && old.probeURL == rt.probeURL
	if sameUpstream {
		rt.healthState = old.healthState
		rt.traffic = old.traffic
	} else {
		rt.healthState = idleHealth
		if rt.healthActive {
			rt.healthState = newHealthState()
		}
		rt.traffic = &trafficState{}
	}

	rt.fallback = newFallbackPlan(breakerCfg.FallbackStrategy, ep.Fallback)
	return rt, nil
}

// Register adds an endpoint owned by the API (source "api"). It is routable
// when Register returns. Errors: *ValidationError (ErrInvalid), ErrConflict
// when the id or the route is taken.
func (o *Orchestrator) Register(ctx context.Context, ep Endpoint) (RegisteredEndpoint, error) {
	ep = ep.Normalized()
	if err := ep.Validate(); err != nil {
		return RegisteredEndpoint{}, err
	}
	if err := o.checkUpstream(ctx, ep); err != nil {
		return RegisteredEndpoint{}, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if cur, ok := o.entries[ep.ID]; ok {
		return RegisteredEndpoint{}, fmt.Errorf("%w: endpoint %q already exists (source %s)", ErrConflict, ep.ID, cur.reg.Source)
	}
	if err := o.routeFreeLocked(ep); err != nil {
		return RegisteredEndpoint{}, err
	}
	reg, err := o.registry.Put(ctx, Registration{Endpoint: ep, Source: SourceAPI}, PutCreate)
	if err != nil {
		if errors.Is(err, ErrConflict) {
			return RegisteredEndpoint{}, fmt.Errorf("%w: endpoint %q already exists", ErrConflict, ep.ID)
		}
		return RegisteredEndpoint{}, err
	}
	o.putLocked(reg)
	o.publishLocked()
	return o.view(o.entries[ep.ID]), nil
}

// Update replaces an API-owned endpoint's config; its breaker is rebuilt.
// Errors: ErrNotFound, *ValidationError, ErrConflict when the endpoint is
// owned by the config file or the new route is taken.
func (o *Orchestrator) Update(ctx context.Context, ep Endpoint) (RegisteredEndpoint, error) {
	return o.UpdateIf(ctx, ep, 0)
}

// UpdateIf is Update on the condition that the endpoint is still at
// revision (RegisteredEndpoint.Revision, the admin API's ETag); 0 means
// unconditional. A newer revision gives ErrRevisionMismatch, so two admins
// editing at once cannot silently overwrite each other. The check and the
// change are one step for this gateway.
func (o *Orchestrator) UpdateIf(ctx context.Context, ep Endpoint, revision uint64) (RegisteredEndpoint, error) {
	ep = ep.Normalized()
	if err := ep.Validate(); err != nil {
		return RegisteredEndpoint{}, err
	}
	if err := o.checkUpstream(ctx, ep); err != nil {
		return RegisteredEndpoint{}, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	cur, ok := o.entries[ep.ID]
	if !ok {
		return RegisteredEndpoint{}, fmt.Errorf("%w: %q", ErrNotFound, ep.ID)
	}
	if cur.reg.Source != SourceAPI {
		return RegisteredEndpoint{}, ownedError(cur)
	}
	if revision != 0 && cur.reg.Revision != revision {
		return RegisteredEndpoint{}, fmt.Errorf("%w: endpoint %q is at revision %d, not %d", ErrRevisionMismatch, ep.ID, cur.reg.Revision, revision)
	}
	if err := o.routeFreeLocked(ep); err != nil {
		return RegisteredEndpoint{}, err
	}
	reg, err := o.registry.Put(ctx, Registration{Endpoint: ep, Source: SourceAPI, RegisteredAt: cur.reg.RegisteredAt}, PutUpdate)
	if err != nil {
		return RegisteredEndpoint{}, err
	}
	o.putLocked(reg)
	o.publishLocked()
	return o.view(o.entries[ep.ID]), nil
}

// Deregister removes an API-owned endpoint. Requests already forwarded to
// it finish. Errors: ErrNotFound, ErrConflict for a config-owned endpoint.
func (o *Orchestrator) Deregister(ctx context.Context, id string) error {
	return o.DeregisterIf(ctx, id, 0)
}

// DeregisterIf is Deregister on the condition that the endpoint is still at
// revision; 0 means unconditional. A newer revision gives
// ErrRevisionMismatch.
func (o *Orchestrator) DeregisterIf(ctx context.Context, id string, revision uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	cur, ok := o.entries[id]
	if !ok {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if cur.reg.Source != SourceAPI {
		return ownedError(cur)
	}
	if revision != 0 && cur.reg.Revision != revision {
		return fmt.Errorf("%w: endpoint %q is at revision %d, not %d", ErrRevisionMismatch, id, cur.reg.Revision, revision)
	}
	if err := o.registry.Delete(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	o.removeLocked(id)
	o.publishLocked()
	return nil
}

func ownedError(cur *route) error {
	return fmt.Errorf("%w: endpoint %q is owned by the config file; edit the file instead (tripping its circuit breaker is the emergency lever)", ErrConflict, cur.id)
}

// routeFreeLocked refuses ep when another id already serves its route.
func (o *Orchestrator) routeFreeLocked(ep Endpoint) error {
	for id, rt := range o.entries {
		if id != ep.ID && rt.ep.Name == ep.Name && rt.ep.Version == ep.Version {
			return fmt.Errorf("%w: route %s is already served by endpoint %q", ErrConflict, o.prefix+routeKeyString(ep.Name, ep.Version), id)
		}
	}
	return nil
}

// Sync makes the endpoints of one source exactly eps, as one change: new
// ones are added, changed ones replaced (their breakers rebuilt), missing
// ones removed, and the route table is published once. This is how a config
// reload is applied. Everything is validated first; on any error nothing
// changes. An id owned by the other source is a conflict.
func (o *Orchestrator) Sync(ctx context.Context, source Source, eps []Endpoint) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.syncLocked(ctx, source, eps, false)
}

// Apply applies a configuration file's share of the gateway as one change:
// the global circuit-breaker and health-check defaults and the endpoints of
// source "config". When the defaults change every route is rebuilt (and its
// breaker with it). Server settings (listener, prefix, trusted proxies) are
// fixed at New and need a restart. On any error nothing changes.
func (o *Orchestrator) Apply(ctx context.Context, cfg *Config) error {
	var errs ValidationError
	cfg.CircuitBreaker.validate("circuit_breaker", &errs)
	cfg.HealthCheck.validate("health_check", &errs)
	if err := errs.orNil(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	cb, hc := cfg.CircuitBreaker.withDefaults(), cfg.HealthCheck.withDefaults()
	rebuild := string(mustJSON(cb)) != string(mustJSON(o.breakerDefaults)) || string(mustJSON(hc)) != string(mustJSON(o.healthDefaults))
	oldCB, oldHC := o.breakerDefaults, o.healthDefaults
	o.breakerDefaults, o.healthDefaults = cb, &hc
	if err := o.syncLocked(ctx, SourceConfig, cfg.Endpoints, rebuild); err != nil {
		o.breakerDefaults, o.healthDefaults = oldCB, oldHC
		return err
	}
	return nil
}

// syncLocked makes the endpoints of source exactly eps. With rebuildAll,
// every route is rebuilt even when its own config is unchanged (the
// defaults it inherits changed).
func (o *Orchestrator) syncLocked(ctx context.Context, source Source, eps []Endpoint, rebuildAll bool) error {
	norm := make([]Endpoint, len(eps))
	for i, ep := range eps {
		norm[i] = ep.Normalized()
	}
	var errs ValidationError
	validateSet(norm, "endpoints", &errs)
	if err := errs.orNil(); err != nil {
		return err
	}
	// Routes held by the other source, to refuse a clash before writing.
	otherRoutes := make(map[string]string)
	for id, rt := range o.entries {
		if rt.reg.Source != source {
			otherRoutes[rt.ep.Name+"/"+rt.ep.Version] = id
		}
	}
	want := make(map[string]struct{}, len(norm))
	for i, ep := range norm {
		want[ep.ID] = struct{}{}
		if cur, ok := o.entries[ep.ID]; ok && cur.reg.Source != source {
			errs.add(fmt.Sprintf("endpoints[%d].id", i), fmt.Sprintf("%q is already registered by the %s", ep.ID, sourceName(cur.reg.Source)))
		}
		if id, taken := otherRoutes[ep.Name+"/"+ep.Version]; taken && id != ep.ID {
			errs.add(fmt.Sprintf("endpoints[%d]", i), fmt.Sprintf("route %s is already served by endpoint %q (%s)", o.prefix+routeKeyString(ep.Name, ep.Version), id, sourceName(o.entries[id].reg.Source)))
		}
	}
	if err := errs.orNil(); err != nil {
		return err
	}
	changed := false
	for id, rt := range o.entries {
		if _, keep := want[id]; !keep && rt.reg.Source == source {
			if err := o.registry.Delete(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
				o.publishLocked()
				return err
			}
			o.removeLocked(id)
			changed = true
		}
	}
	for _, ep := range norm {
		if cur, ok := o.entries[ep.ID]; ok && endpointsEqual(cur.ep, ep) {
			continue
		}
		reg, err := o.registry.Put(ctx, Registration{Endpoint: ep, Source: source}, PutUpsert)
		if err != nil {
			o.publishLocked()
			return err
		}
		o.putCheckedLocked(reg, &ep)
		changed = true
	}
	if rebuildAll {
		for id, rt := range o.entries {
			reg := Registration{Endpoint: rt.ep, Source: rt.reg.Source, Revision: rt.reg.Revision, RegisteredAt: rt.reg.RegisteredAt}
			if nrt, err := o.buildRoute(reg, rt); err == nil {
				o.setEntryLocked(id, nrt)
				if nrt.healthActive && !sameJSON(nrt.health, rt.health) {
					o.checker.Add(id, 0)
				}
			}
		}
		changed = true
	}
	if changed {
		o.publishLocked()
	}
	return nil
}

func sourceName(s Source) string {
	if s == SourceAPI {
		return "admin API"
	}
	return "config file"
}

// sameJSON compares two configuration values by their JSON form, which
// looks through the pointers (*bool) that mark "inherit" in them.
func sameJSON(a, b any) bool { return string(mustJSON(a)) == string(mustJSON(b)) }

// endpointsEqual reports whether two endpoints have the same configuration,
// as comparing their JSON forms would: pointers are compared through (two
// decodings of one file must compare equal), and an empty list or map equals
// a missing one (JSON leaves both out). Field by field rather than through
// encoding/json: a reload compares every endpoint, and marshalling both was
// a fifth of applying 10,000. TestEndpointsEqualMatchesJSON keeps it in step
// with the fields of Endpoint.
func endpointsEqual(a, b Endpoint) bool {
	return a.ID == b.ID && a.URL == b.URL && a.Name == b.Name && a.Version == b.Version &&
		slices.Equal(a.Methods, b.Methods) && a.AuthType == b.AuthType && a.Disabled == b.Disabled &&
		a.HealthCheckPath == b.HealthCheckPath && a.Timeout == b.Timeout &&
		a.MaxConcurrent == b.MaxConcurrent && a.PreserveHost == b.PreserveHost &&
		equalThrough(a.CircuitBreaker, b.CircuitBreaker, breakerConfigsEqual) &&
		equalThrough(a.HealthCheck, b.HealthCheck, healthConfigsEqual) &&
		equalThrough(a.Fallback, b.Fallback, fallbacksEqual)
}

// equalThrough compares two pointers: both nil, or both set to equal values.
func equalThrough[T any](a, b *T, equal func(a, b *T) bool) bool {
	if a == nil || b == nil {
		return a == b
	}
	return equal(a, b)
}

func boolsEqual(a, b *bool) bool {
	return equalThrough(a, b, func(a, b *bool) bool { return *a == *b })
}

func breakerConfigsEqual(a, b *CircuitBreakerConfig) bool {
	return boolsEqual(a.Disabled, b.Disabled) && a.FailureThreshold == b.FailureThreshold &&
		a.ResetTimeout == b.ResetTimeout && a.HalfOpenRequests == b.HalfOpenRequests &&
		slices.Equal(a.FailureStatuses, b.FailureStatuses) && a.FallbackStrategy == b.FallbackStrategy
}

func healthConfigsEqual(a, b *HealthCheckConfig) bool {
	return boolsEqual(a.Enabled, b.Enabled) && a.Interval == b.Interval && a.Timeout == b.Timeout &&
		a.UnhealthyThreshold == b.UnhealthyThreshold && a.HealthyThreshold == b.HealthyThreshold
}

func fallbacksEqual(a, b *FallbackConfig) bool {
	return a.Strategy == b.Strategy && a.Status == b.Status && maps.Equal(a.Headers, b.Headers) &&
		a.Body == b.Body && a.Endpoint == b.Endpoint
}

// RegisteredEndpoint is an endpoint as the gateway sees it: its config and
// owner (desired state) with its health and breaker (observed state). It is
// the shape the admin API returns.
type RegisteredEndpoint struct {
	// ID is the endpoint's id.
	ID string `json:"id"`
	// Config is the endpoint's normalized configuration.
	Config Endpoint `json:"config"`
	// Source is the owner: "config" (the file) or "api".
	Source Source `json:"source"`
	// Revision is the registry revision of Config; the admin API's ETag.
	Revision uint64 `json:"revision"`
	// RegistrationTime is when the id was first registered.
	RegistrationTime time.Time `json:"registration_time"`
	// LastHealthCheck is when the last probe ran; nil before the first.
	LastHealthCheck *time.Time `json:"last_health_check"`
	// Status is unknown, healthy, unhealthy or disabled.
	Status HealthStatus `json:"status"`
	// CircuitBreakerState is closed, open, half_open or disabled.
	CircuitBreakerState BreakerState `json:"circuit_breaker_state"`
	// ConsecutiveFailures counts proxied requests that failed in a row.
	ConsecutiveFailures int64 `json:"consecutive_failures"`
	// LastFailureTime is when a proxied request last failed; nil if never.
	LastFailureTime *time.Time `json:"last_failure_time"`
	// ResponseTime is how long the last health probe took.
	ResponseTime Duration `json:"response_time"`
	// Health details the active health checking.
	Health HealthReport `json:"health"`
	// Traffic counts the requests served.
	Traffic TrafficReport `json:"traffic"`
}

func (o *Orchestrator) view(rt *route) RegisteredEndpoint {
	report, last := rt.healthState.report(rt.healthActive, rt.probeURL)
	v := RegisteredEndpoint{
		ID:                  rt.id,
		Config:              rt.ep,
		Source:              rt.reg.Source,
		Revision:            rt.reg.Revision,
		RegistrationTime:    rt.reg.RegisteredAt,
		LastHealthCheck:     last,
		Status:              rt.status(),
		CircuitBreakerState: rt.breaker.state(),
		ConsecutiveFailures: rt.traffic.consecutiveFailures.Load(),
		ResponseTime:        report.ResponseTime,
		Health:              report,
		Traffic: TrafficReport{
			Requests:     rt.traffic.requests.Load(),
			ServerErrors: rt.traffic.serverErrors.Load(),
			LatencySum:   Duration(rt.traffic.latencyNanos.Load()),
			InFlight:     rt.traffic.inFlight.Load(),
		},
	}
	if n := rt.traffic.lastFailure.Load(); n != 0 {
		t := time.Unix(0, n).UTC()
		v.LastFailureTime = &t
	}
	return v
}

// Endpoint returns one endpoint's view, or ErrNotFound.
func (o *Orchestrator) Endpoint(id string) (RegisteredEndpoint, error) {
	rt := o.table.Load().route(id)
	if rt == nil {
		return RegisteredEndpoint{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return o.view(rt), nil
}

// Endpoints returns every endpoint's view sorted by id.
func (o *Orchestrator) Endpoints() []RegisteredEndpoint {
	t := o.table.Load()
	out := make([]RegisteredEndpoint, 0, t.ids.Len())
	for _, rt := range t.ids.All() {
		out = append(out, o.view(rt))
	}
	slices.SortFunc(out, func(a, b RegisteredEndpoint) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// TripBreaker opens the endpoint's circuit breaker by hand: requests get 503
// until ResetBreaker or until reset_timeout lets trials through.
func (o *Orchestrator) TripBreaker(id string) error {
	rt := o.table.Load().route(id)
	if rt == nil {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	rt.breaker.trip()
	return nil
}

// ResetBreaker closes the endpoint's circuit breaker.
func (o *Orchestrator) ResetBreaker(id string) error {
	rt := o.table.Load().route(id)
	if rt == nil {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	rt.breaker.reset()
	rt.traffic.consecutiveFailures.Store(0)
	return nil
}

// trafficState counts request outcomes of one endpoint. Must not be copied.
type trafficState struct {
	consecutiveFailures atomic.Int64
	lastFailure         atomic.Int64 // UnixNano
	requests            atomic.Uint64
	serverErrors        atomic.Uint64 // answered 5xx
	latencyNanos        atomic.Uint64 // sum over requests
	inFlight            atomic.Int64
}

// TrafficReport counts the requests an endpoint has served since it was
// registered (or since its upstream URL last changed). Rates and mean
// latencies over a window are differences of two reports.
type TrafficReport struct {
	// Requests is the number of requests answered for the endpoint.
	Requests uint64 `json:"requests"`
	// ServerErrors is how many of them were answered with a 5xx.
	ServerErrors uint64 `json:"server_errors"`
	// LatencySum is the total time spent answering them.
	LatencySum Duration `json:"latency_sum"`
	// InFlight is the number being answered now.
	InFlight int64 `json:"in_flight"`
}

func (t *trafficState) record(failed bool) {
	if failed {
		t.consecutiveFailures.Add(1)
		t.lastFailure.Store(time.Now().UnixNano())
	} else if t.consecutiveFailures.Load() != 0 {
		t.consecutiveFailures.Store(0)
	}
}

var _ io.Closer = (*Orchestrator)(nil)
var _ http.Handler = (*Orchestrator)(nil)
