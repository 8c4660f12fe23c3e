package orchestrator

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/VictoriaMetrics/metrics"
)

// Metric names, as docs/DESIGN.md lists them. Labels live in the series name
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

// counter is one counter series' value. The zero value is ready to use.
type counter struct{ n atomic.Uint64 }

// Inc adds one.
func (c *counter) Inc() { c.n.Add(1) }

// Get returns the count.
func (c *counter) Get() uint64 { return c.n.Load() }

// maxBuckets bounds the number of upper bounds a histogram may have.
const maxBuckets = 16

// histogram is a Prometheus histogram over fixed upper bounds (at most
// maxBuckets), counted as metrics.PrometheusHistogram counts (a value goes
// to the first bucket whose bound is >= it; negative values and NaN are
// ignored). One allocation: the counts are inline.
type histogram struct {
	mu      sync.Mutex
	count   uint64
	sum     float64
	buckets [maxBuckets]uint64 // per bound, not cumulative; values above the last go to count only
}

func (h *histogram) update(bounds []float64, v float64) {
	if math.IsNaN(v) || v < 0 {
		return
	}
	i := 0
	for i < len(bounds) && v > bounds[i] {
		i++
	}
	h.mu.Lock()
	h.sum += v
	h.count++
	if i < len(bounds) {
		h.buckets[i]++
	}
	h.mu.Unlock()
}

// lazyHistogram allocates its buckets on the first observation: most of
// 10,000 endpoints may never see one, and an empty histogram is written as
// zeros all the same. The zero value is ready to use.
type lazyHistogram struct{ p atomic.Pointer[histogram] }

func (l *lazyHistogram) update(bounds []float64, v float64) {
	h := l.p.Load()
	if h == nil {
		l.p.CompareAndSwap(nil, &histogram{})
		h = l.p.Load()
	}
	h.update(bounds, v)
}

// requestHistogram is orchestrator_request_duration_seconds of one endpoint.
type requestHistogram struct{ lazyHistogram }

// Update observes one request's duration in seconds.
func (h *requestHistogram) Update(seconds float64) { h.update(requestBuckets, seconds) }

// probeHistogram is orchestrator_health_probe_duration_seconds of one
// endpoint.
type probeHistogram struct{ lazyHistogram }

// Update observes one probe's duration in seconds.
func (h *probeHistogram) Update(seconds float64) { h.update(probeBuckets, seconds) }

// endpointRequests is orchestrator_requests_total of one endpoint. The
// first method and status it counts (usually the only one that matters,
// such as GET 200) is counted inline; the others in a copy-on-write map
// from method and status to counter, read without a lock and allocated
// when a second series appears.
type endpointRequests struct {
	first  atomic.Uint32 // 1 + the key of the series counted in firstN; 0 until the first request
	firstN counter
	m      atomic.Pointer[map[uint16]*counter] // key: method index << 10 | status
	mu     sync.Mutex                          // guards growth of m
}

func requestKey(method string, status int) uint16 {
	if status < 100 || status > 599 {
		status = 0
	}
	return uint16(methodIndex(method)<<10 | status)
}

func (r *endpointRequests) inc(method string, status int) {
	k := requestKey(method, status)
	f := r.first.Load()
	if f == 0 {
		r.first.CompareAndSwap(0, uint32(k)+1)
		f = r.first.Load()
	}
	if f == uint32(k)+1 {
		r.firstN.Inc()
		return
	}
	if m := r.m.Load(); m != nil {
		if c := (*m)[k]; c != nil {
			c.Inc()
			return
		}
	}
	r.grow(k).Inc()
}

func (r *endpointRequests) grow(k uint16) *counter {
	r.mu.Lock()
	defer r.mu.Unlock()
	var old map[uint16]*counter
	if p := r.m.Load(); p != nil {
		old = *p
	}
	if c := old[k]; c != nil {
		return c
	}
	next := make(map[uint16]*counter, len(old)+1)
	for key, c := range old {
		next[key] = c
	}
	c := &counter{}
	next[k] = c
	r.m.Store(&next)
	return c
}

// each calls fn for every series counted so far.
func (r *endpointRequests) each(fn func(k uint16, n uint64)) {
	if f := r.first.Load(); f != 0 {
		fn(uint16(f-1), r.firstN.Get())
	}
	if p := r.m.Load(); p != nil {
		for k, c := range *p {
			fn(k, c.Get())
		}
	}
}

// endpointMetrics is every series of one endpoint id. It outlives config
// changes of the endpoint (counters keep counting) and goes away with the
// endpoint. It holds values only: series names are formatted when the
// metrics are written, and gauges are read from the route then, so that an
// endpoint costs about a hundred bytes until it serves, not a metrics.Set
// of named series (kilobytes each, times 10,000). Must not be copied.
type endpointMetrics struct {
	requests      endpointRequests
	duration      requestHistogram
	probeDuration probeHistogram
	upstreamError [len(upstreamErrorKinds)]counter
	breakerOpens  counter
	healthFlips   counter
}

// gatewayMetrics is the Orchestrator's metrics.Set with its gateway-wide
// series, and the writer of the per-endpoint series.
type gatewayMetrics struct {
	o        *Orchestrator
	set      *metrics.Set
	unrouted requestCounters
}

func newGatewayMetrics(o *Orchestrator) *gatewayMetrics {
	g := &gatewayMetrics{o: o, set: metrics.NewSet()}
	g.unrouted = requestCounters{set: g.set, name: metricUnrouted}
	g.set.RegisterMetricsWriter(g.writeEndpoints)
	for _, src := range []Source{SourceConfig, SourceAPI} {
		src := src
		g.set.NewGauge(fmt.Sprintf(`%s{source=%q}`, metricRegistrySize, src), func() float64 {
			n := 0
			for _, rt := range o.table.Load().ids.All() {
				if rt.reg.Source == src {
					n++
				}
			}
			return float64(n)
		})
	}
	return g
}

// leLabels are the le label values of requestBuckets and probeBuckets,
// formatted as metrics.PrometheusHistogram formats them.
var requestLE, probeLE = leLabels(requestBuckets), leLabels(probeBuckets)

func leLabels(bounds []float64) []string {
	if len(bounds) > maxBuckets {
		panic("orchestrator: a histogram has more than maxBuckets bounds")
	}
	out := make([]string, len(bounds))
	for i, b := range bounds {
		out[i] = fmt.Sprintf("%v", b)
	}
	return out
}

// expositionWriter formats series lines into a buffer that it hands to w
// in large pieces.
type expositionWriter struct {
	w      io.Writer
	buf    []byte
	labels string          // constant labels, first in every series; "" for none
	meta   *metadataWriter // nil: no # HELP and # TYPE lines
}

// describe writes a family's metadata when e writes metadata and no line
// of the exposition carried it yet.
func (e *expositionWriter) describe(name string) {
	if e.meta != nil && e.meta.claim(name) {
		e.buf = appendMetadata(e.buf, name, gatewayFamilies[name])
	}
}

func (e *expositionWriter) flushIfFull() {
	if len(e.buf) >= 32<<10 {
		e.flush()
	}
}

func (e *expositionWriter) flush() {
	if len(e.buf) > 0 {
		e.w.Write(e.buf)
		e.buf = e.buf[:0]
	}
}

// series starts a line: name{endpoint="id"extra} or, with a suffix,
// name+suffix{...}; extra is appended inside the braces as is.
func (e *expositionWriter) series(name, suffix, id string, extra ...string) {
	e.buf = append(e.buf, name...)
	e.buf = append(e.buf, suffix...)
	e.buf = append(e.buf, '{')
	if e.labels != "" {
		e.buf = append(e.buf, e.labels...)
		e.buf = append(e.buf, ',')
	}
	e.buf = append(e.buf, `endpoint=`...)
	e.buf = strconv.AppendQuote(e.buf, id)
	for _, x := range extra {
		e.buf = append(e.buf, x...)
	}
	e.buf = append(e.buf, '}', ' ')
}

func (e *expositionWriter) uint(name, suffix, id string, v uint64, extra ...string) {
	e.series(name, suffix, id, extra...)
	e.buf = strconv.AppendUint(e.buf, v, 10)
	e.buf = append(e.buf, '\n')
}

func (e *expositionWriter) int(name, id string, v int64) {
	e.series(name, "", id)
	e.buf = strconv.AppendInt(e.buf, v, 10)
	e.buf = append(e.buf, '\n')
}

// histogram writes h (nil: nothing observed) as metrics.PrometheusHistogram
// does: cumulative buckets, +Inf, _sum (an integer without a fraction, else
// %g), _count.
func (e *expositionWriter) histogram(name, id string, h *histogram, le []string) {
	var buckets [maxBuckets]uint64
	var count uint64
	var sum float64
	if h != nil {
		h.mu.Lock()
		buckets, count, sum = h.buckets, h.count, h.sum
		h.mu.Unlock()
	}
	var cum uint64
	for i, bound := range le {
		cum += buckets[i]
		e.uint(name, "_bucket", id, cum, `,le="`, bound, `"`)
	}
	e.uint(name, "_bucket", id, count, `,le="+Inf"`)
	e.series(name, "_sum", id)
	if float64(int64(sum)) == sum {
		e.buf = strconv.AppendInt(e.buf, int64(sum), 10)
	} else {
		e.buf = strconv.AppendFloat(e.buf, sum, 'g', -1, 64)
	}
	e.buf = append(e.buf, '\n')
	e.uint(name, "_count", id, count)
}

// requestSeries is one orchestrator_requests_total series of an endpoint,
// for sorting.
type requestSeries struct {
	method, status string
	n              uint64
}

// writeEndpoints writes every endpoint's series of the current route table
// as one metrics.Set per endpoint used to: grouped by metric family in name
// order, endpoints in id order within a family, and within an endpoint in
// series name order. It streams: nothing is buffered beyond 32 KiB, so a
// scrape of 10,000 endpoints (tens of megabytes of text) leaves little
// garbage behind. Given WritePrometheus's metadataWriter, it writes past
// it, with the metadata and constant labels; given any other writer (the
// Set written on its own), it writes the series bare.
func (g *gatewayMetrics) writeEndpoints(w io.Writer) {
	t := g.o.table.Load()
	routes := make([]*route, 0, t.ids.Len())
	for _, rt := range t.ids.All() {
		if rt.metrics != nil {
			routes = append(routes, rt)
		}
	}
	if len(routes) == 0 {
		return
	}
	slices.SortFunc(routes, func(a, b *route) int { return strings.Compare(a.ep.ID, b.ep.ID) })
	e := &expositionWriter{buf: make([]byte, 0, 40<<10)}
	if m, ok := w.(*metadataWriter); ok {
		e.meta, e.labels, w = m, m.labels, m.direct()
	}
	e.w = w
	defer e.flush()
	each := func(family string, write func(rt *route, m *endpointMetrics)) {
		e.describe(family)
		for _, rt := range routes {
			write(rt, rt.metrics)
			e.flushIfFull()
		}
	}
	// The families in name order. Those of a policy only some endpoints
	// have are written for those endpoints alone: a seed user's endpoints
	// show no new series.
	adaptive := slices.DeleteFunc(slices.Clone(routes), func(rt *route) bool { return rt.adaptivePlan() == nil })
	if len(adaptive) > 0 {
		e.describe(metricAdaptiveLimit)
		for _, rt := range adaptive {
			e.int(metricAdaptiveLimit, rt.ep.ID, int64(rt.adaptivePlan().limiter.Limit()))
		}
	}
	each(metricBreakerOpens, func(rt *route, m *endpointMetrics) {
		e.uint(metricBreakerOpens, "", rt.ep.ID, m.breakerOpens.Get())
	})
	each(metricBreakerState, func(rt *route, m *endpointMetrics) {
		var v int64
		switch rt.breakerState() {
		case BreakerHalfOpen:
			v = 1
		case BreakerOpen:
			v = 2
		}
		e.int(metricBreakerState, rt.ep.ID, v)
	})
	each(metricEndpointHealth, func(rt *route, m *endpointMetrics) {
		var v int64
		if rt.status() == StatusHealthy {
			v = 1
		}
		e.int(metricEndpointHealth, rt.ep.ID, v)
	})
	each(metricHealthFlips, func(rt *route, m *endpointMetrics) {
		e.uint(metricHealthFlips, "", rt.ep.ID, m.healthFlips.Get())
	})
	each(metricProbeDuration, func(rt *route, m *endpointMetrics) {
		e.histogram(metricProbeDuration, rt.ep.ID, m.probeDuration.p.Load(), probeLE)
	})
	if len(adaptive) > 0 {
		e.describe(metricLoadShed)
		for _, rt := range adaptive {
			e.uint(metricLoadShed, "", rt.ep.ID, rt.adaptivePlan().shed.Load())
		}
	}
	if limited := slices.DeleteFunc(slices.Clone(routes), func(rt *route) bool { return rt.rateLimitPlan() == nil }); len(limited) > 0 {
		e.describe(metricRateLimited)
		for _, rt := range limited {
			e.uint(metricRateLimited, "", rt.ep.ID, rt.rateLimitPlan().limited.Load())
		}
	}
	each(metricDuration, func(rt *route, m *endpointMetrics) {
		e.histogram(metricDuration, rt.ep.ID, m.duration.p.Load(), requestLE)
	})
	each(metricInFlight, func(rt *route, m *endpointMetrics) {
		e.int(metricInFlight, rt.ep.ID, rt.traffic.inFlight.Load())
	})
	var reqs []requestSeries
	each(metricRequests, func(rt *route, m *endpointMetrics) {
		reqs = reqs[:0]
		m.requests.each(func(k uint16, n uint64) {
			reqs = append(reqs, requestSeries{methodNames[k>>10], strconv.Itoa(int(k & 1023)), n})
		})
		// The order of the series names: by method, then by status as text.
		slices.SortFunc(reqs, func(a, b requestSeries) int {
			if c := strings.Compare(a.method, b.method); c != 0 {
				return c
			}
			return strings.Compare(a.status, b.status)
		})
		for _, r := range reqs {
			e.uint(metricRequests, "", rt.ep.ID, r.n, `,method="`, r.method, `",status="`, r.status, `"`)
		}
	})
	g.writeTargetFamilies(e, routes)
	each(metricUpstreamErrors, func(rt *route, m *endpointMetrics) {
		for _, i := range upstreamErrorOrder {
			e.uint(metricUpstreamErrors, "", rt.ep.ID, m.upstreamError[i].Get(), `,kind="`, upstreamErrorKinds[i], `"`)
		}
	})
}

// upstreamErrorOrder lists upstreamErrorKinds' indexes in the kinds' name
// order, the order of their series.
var upstreamErrorOrder = func() []int {
	idx := make([]int, len(upstreamErrorKinds))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(upstreamErrorKinds[a], upstreamErrorKinds[b]) })
	return idx
}()
