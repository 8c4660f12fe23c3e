package orchestrator

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/VictoriaMetrics/metrics"
)

// Metric names, as DESIGN.md lists them. Labels live in the series name
// (VictoriaMetrics/metrics style); every series of an endpoint is created
// once, when the endpoint is first routed, and removed with it.
const (
	metricRequests       = "orchestrator_requests_total"
	metricUnrouted       = "orchestrator_unrouted_requests_total"
	metricDuration       = "orchestrator_request_duration_seconds"
	metricInFlight       = "orchestrator_requests_in_flight"
	metricUpstreamErrors = "orchestrator_upstream_errors_total"
	metricBreakerState   = "orchestrator_circuit_breaker_state"
	metricEndpointHealth = "orchestrator_endpoint_health"
	metricProbeDuration  = "orchestrator_health_probe_duration_seconds"
	metricRegistrySize   = "orchestrator_registry_endpoints"
	metricBreakerOpens   = "orchestrator_circuit_breaker_opens_total"
	metricHealthFlips    = "orchestrator_endpoint_health_changes_total"
	metricConfigReloads  = "orchestrator_config_reloads_total"
)

// requestBuckets are the le bounds of the request-duration histogram:
// from 1 ms to 60 s, dense where gateway latencies usually are.
var requestBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// probeBuckets are the le bounds of the health-probe latency histogram.
var probeBuckets = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// upstreamErrorKinds label orchestrator_upstream_errors_total.
var upstreamErrorKinds = [...]string{"timeout", "refused", "reset", "dns", "tls", "other"}

const (
	errTimeout = iota
	errRefused
	errReset
	errDNS
	errTLS
	errOther
)

// classifyUpstreamError maps a round-trip error to its kind.
func classifyUpstreamError(err error, timedOut bool) int {
	var dnsErr *net.DNSError
	var netErr net.Error
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var recErr tls.RecordHeaderError
	switch {
	case timedOut || errors.Is(err, errUpstreamTimeout) || errors.Is(err, context.DeadlineExceeded):
		return errTimeout
	case errors.As(err, &dnsErr):
		return errDNS
	case errors.Is(err, syscall.ECONNREFUSED):
		return errRefused
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return errReset
	case errors.As(err, &certErr) || errors.As(err, &unknownAuth) || errors.As(err, &hostErr) || errors.As(err, &recErr):
		return errTLS
	case errors.As(err, &netErr) && netErr.Timeout():
		return errTimeout
	}
	return errOther
}

// methodIndex buckets request methods so that a client inventing methods
// cannot grow the series count: unknown methods count as "OTHER".
var methodNames = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "OTHER"}

func methodIndex(m string) int {
	switch m {
	case http.MethodGet:
		return 0
	case http.MethodHead:
		return 1
	case http.MethodPost:
		return 2
	case http.MethodPut:
		return 3
	case http.MethodPatch:
		return 4
	case http.MethodDelete:
		return 5
	case http.MethodOptions:
		return 6
	case http.MethodConnect:
		return 7
	case http.MethodTrace:
		return 8
	}
	return 9
}

// statusCounters is one method's counters by status code: a copy-on-write
// map read without a lock. Status codes outside 100-599 count as 0.
type statusCounters map[int]*metrics.Counter

// requestCounters holds orchestrator_requests_total series for one label
// set prefix, created on first use of each method and status and then
// found with an integer map lookup: no name is formatted per request.
type requestCounters struct {
	set    *metrics.Set
	name   string // metric name
	labels string // leading labels, such as `endpoint="users_v1",`

	byMethod [len(methodNames)]atomic.Pointer[statusCounters]
	mu       sync.Mutex // guards growth of byMethod
}

func (c *requestCounters) inc(method string, status int) {
	if status < 100 || status > 599 {
		status = 0
	}
	i := methodIndex(method)
	if m := c.byMethod[i].Load(); m != nil {
		if ctr := (*m)[status]; ctr != nil {
			ctr.Inc()
			return
		}
	}
	c.grow(i, status).Inc()
}

func (c *requestCounters) grow(i, status int) *metrics.Counter {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.byMethod[i].Load()
	if old != nil {
		if ctr := (*old)[status]; ctr != nil {
			return ctr
		}
	}
	next := make(statusCounters, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	name := fmt.Sprintf(`%s{%smethod=%q,status="%d"}`, c.name, c.labels, methodNames[i], status)
	ctr := c.set.GetOrCreateCounter(name)
	next[status] = ctr
	c.byMethod[i].Store(&next)
	return ctr
}

func lenOf(m *statusCounters) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

// endpointMetrics is every series of one endpoint id. It outlives config
// changes of the endpoint (counters keep counting) and is unregistered when
// the endpoint is removed. Must not be copied.
type endpointMetrics struct {
	requests      requestCounters
	duration      *metrics.PrometheusHistogram
	probeDuration *metrics.PrometheusHistogram
	upstreamError [len(upstreamErrorKinds)]*metrics.Counter
	breakerOpens  *metrics.Counter
	healthFlips   *metrics.Counter
	// set holds only this endpoint's series, so that removing the endpoint
	// is dropping the set: unregistering series one by one from a shared
	// set costs a scan of the whole set each, which made replacing 5,000
	// endpoints take seconds.
	set *metrics.Set
}

// gatewayMetrics is the Orchestrator's metrics.Set, its gateway-wide series
// and the per-endpoint sets it writes along with them.
type gatewayMetrics struct {
	set       *metrics.Set
	unrouted  requestCounters
	endpoints sync.Map // id -> *endpointMetrics
}

func newGatewayMetrics(o *Orchestrator) *gatewayMetrics {
	g := &gatewayMetrics{set: metrics.NewSet()}
	g.unrouted = requestCounters{set: g.set, name: metricUnrouted}
	g.set.RegisterMetricsWriter(g.writeEndpoints)
	for _, src := range []Source{SourceConfig, SourceAPI} {
		src := src
		g.set.NewGauge(fmt.Sprintf(`%s{source=%q}`, metricRegistrySize, src), func() float64 {
			n := 0
			for _, rt := range o.table.Load().byID {
				if rt.reg.Source == src {
					n++
				}
			}
			return float64(n)
		})
	}
	return g
}

// newEndpointMetrics registers the series of endpoint id. Gauges read the
// current route through o so that they follow config changes.
func (g *gatewayMetrics) newEndpointMetrics(o *Orchestrator, id string) *endpointMetrics {
	es := metrics.NewSet()
	m := &endpointMetrics{set: es}
	label := fmt.Sprintf(`endpoint=%q`, id)
	m.requests = requestCounters{set: es, name: metricRequests, labels: label + ","}
	name := func(metric, extra string) string {
		return metric + "{" + label + extra + "}"
	}
	m.duration = es.NewPrometheusHistogramExt(name(metricDuration, ""), requestBuckets)
	m.probeDuration = es.NewPrometheusHistogramExt(name(metricProbeDuration, ""), probeBuckets)
	for i, kind := range upstreamErrorKinds {
		m.upstreamError[i] = es.NewCounter(name(metricUpstreamErrors, fmt.Sprintf(`,kind=%q`, kind)))
	}
	m.breakerOpens = es.NewCounter(name(metricBreakerOpens, ""))
	m.healthFlips = es.NewCounter(name(metricHealthFlips, ""))
	defer g.endpoints.Store(id, m)
	es.NewGauge(name(metricInFlight, ""), func() float64 {
		if rt := o.table.Load().byID[id]; rt != nil {
			return float64(rt.traffic.inFlight.Load())
		}
		return 0
	})
	es.NewGauge(name(metricBreakerState, ""), func() float64 {
		rt := o.table.Load().byID[id]
		if rt == nil {
			return 0
		}
		switch rt.breaker.state() {
		case BreakerHalfOpen:
			return 1
		case BreakerOpen:
			return 2
		}
		return 0
	})
	es.NewGauge(name(metricEndpointHealth, ""), func() float64 {
		if rt := o.table.Load().byID[id]; rt != nil && rt.status() == StatusHealthy {
			return 1
		}
		return 0
	})
	return m
}

func (g *gatewayMetrics) remove(id string) {
	g.endpoints.Delete(id)
}

// writeEndpoints writes every endpoint's series grouped by metric family,
// endpoints in id order, so that each family's lines stay together as the
// exposition format asks even though they live in separate sets.
func (g *gatewayMetrics) writeEndpoints(w io.Writer) {
	var ids []string
	g.endpoints.Range(func(k, _ any) bool {
		ids = append(ids, k.(string))
		return true
	})
	if len(ids) == 0 {
		return
	}
	slices.Sort(ids)
	families := make(map[string][][]byte)
	var buf bytes.Buffer
	for _, id := range ids {
		v, ok := g.endpoints.Load(id)
		if !ok {
			continue
		}
		buf.Reset()
		v.(*endpointMetrics).set.WritePrometheus(&buf)
		for _, line := range bytes.SplitAfter(buf.Bytes(), []byte("\n")) {
			if len(line) == 0 || line[0] == '#' {
				continue
			}
			fam := familyOf(line)
			families[fam] = append(families[fam], slices.Clone(line))
		}
	}
	names := make([]string, 0, len(families))
	for f := range families {
		names = append(names, f)
	}
	slices.Sort(names)
	for _, f := range names {
		for _, line := range families[f] {
			w.Write(line)
		}
	}
}

// familyOf returns a series line's metric family: its name without the
// histogram suffixes, so a histogram's buckets, sum and count stay together.
func familyOf(line []byte) string {
	end := bytes.IndexAny(line, "{ ")
	if end < 0 {
		end = len(line)
	}
	name := string(line[:end])
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if trimmed, ok := strings.CutSuffix(name, suffix); ok {
			return trimmed
		}
	}
	return name
}

// WritePrometheus writes the gateway's metrics in the Prometheus text
// format: request counts and latency histograms per endpoint, breaker and
// health state, upstream errors by kind, in-flight requests, probe latency
// and registry size. Two Orchestrators in one process keep separate sets.
// With WithMetrics(false) it writes only the series the program added to
// MetricsSet. Safe for concurrent use.
func (o *Orchestrator) WritePrometheus(w io.Writer) {
	o.metricsSet.WritePrometheus(w)
}

// MetricsSet returns the Orchestrator's metrics.Set, so that a program can
// add its own series to the same exposition (orchestratord adds
// orchestrator_config_reloads_total). Do not unregister the gateway's own.
func (o *Orchestrator) MetricsSet() *metrics.Set { return o.metricsSet }

// MetricsHandler serves WritePrometheus over HTTP. With process true it also
// writes the Go runtime and process metrics (go_*, process_*).
func (o *Orchestrator) MetricsHandler(process bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		o.WritePrometheus(w)
		if process {
			metrics.WriteProcessMetrics(w)
		}
	})
}
