package orchestrator

import (
	"bytes"
	"io"
	"net/http"
	"strings"

	"github.com/VictoriaMetrics/metrics"
)

// The exposition's metadata. VictoriaMetrics/metrics writes # HELP and
// # TYPE lines only when the package-global metrics.ExposeMetadata is on,
// and then with empty help texts. A library must not flip that switch: it
// would change the embedder's own /metrics output. So WritePrometheus
// writes the metadata itself: writeEndpoints (the bulk of a scrape) writes
// it inline, and metadataWriter adds it to the few lines the metrics.Set
// and the process metrics write, from the table below.

// family is one metric family's metadata.
type family struct {
	typ  string // counter, gauge, histogram, summary or untyped
	help string // one sentence, units named
}

// gatewayFamilies are the families the gateway (and orchestratord) write,
// as docs/DESIGN.md names them.
var gatewayFamilies = map[string]family{
	metricRequests:       {"counter", "Requests an endpoint answered, by endpoint, method and response status code."},
	metricUnrouted:       {"counter", "Requests under the prefix that matched no endpoint, by method and response status code."},
	metricDuration:       {"histogram", "Time in seconds from receiving a request for an endpoint to finishing its response."},
	metricInFlight:       {"gauge", "Requests an endpoint is serving at the moment of the scrape."},
	metricUpstreamErrors: {"counter", "Round trips to an endpoint's upstream that failed, by kind (timeout, refused, reset, dns, tls, other)."},
	metricBreakerState:   {"gauge", "State of an endpoint's circuit breaker: 0 closed, 1 half-open, 2 open."},
	metricEndpointHealth: {"gauge", "Whether an endpoint passes its health checks: 1 healthy, 0 otherwise."},
	metricProbeDuration:  {"histogram", "Time in seconds one health probe of an endpoint took."},
	metricRegistrySize:   {"gauge", "Endpoints registered, by source (config or api)."},
	metricBreakerOpens:   {"counter", "Times an endpoint's circuit breaker opened."},
	metricHealthFlips:    {"counter", "Times an endpoint's health status changed between healthy and unhealthy."},
	metricConfigReloads:  {"counter", "Reloads of the configuration file by orchestratord, by result (success or failure)."},
}

// processFamilies are the families metrics.WriteProcessMetrics and
// metrics.WriteFDMetrics write on Linux (v1.45.0). The types are theirs
// but for process_io_*_total, which the package calls gauges although they
// only grow. Families missing here (a newer version, another OS) still get
// metadata: see metadataWriter.fallback.
var processFamilies = map[string]family{
	"go_sched_latencies_seconds":                    {"histogram", "Time in seconds goroutines spent runnable before running."},
	"go_mutex_wait_seconds_total":                   {"counter", "Time in seconds goroutines spent blocked on a sync.Mutex or sync.RWMutex."},
	"go_gc_mark_assist_cpu_seconds_total":           {"counter", "CPU time in seconds goroutines spent assisting the garbage collector."},
	"go_gc_cpu_seconds_total":                       {"counter", "CPU time in seconds spent in the garbage collector."},
	"go_gc_pauses_seconds":                          {"histogram", "Stop-the-world pauses of the garbage collector in seconds."},
	"go_scavenge_cpu_seconds_total":                 {"counter", "CPU time in seconds spent returning memory to the operating system."},
	"go_memlimit_bytes":                             {"gauge", "The Go runtime's soft memory limit in bytes (GOMEMLIMIT)."},
	"go_memstats_alloc_bytes":                       {"gauge", "Bytes of heap objects allocated and not yet freed."},
	"go_memstats_alloc_bytes_total":                 {"counter", "Bytes allocated for heap objects since the process started."},
	"go_memstats_buck_hash_sys_bytes":               {"gauge", "Bytes of memory in profiling bucket hash tables."},
	"go_memstats_frees_total":                       {"counter", "Heap objects freed since the process started."},
	"go_memstats_gc_cpu_fraction":                   {"gauge", "Fraction of the CPU time available to the process used by the garbage collector since it started."},
	"go_memstats_gc_sys_bytes":                      {"gauge", "Bytes of memory in garbage collection metadata."},
	"go_memstats_heap_alloc_bytes":                  {"gauge", "Bytes of allocated heap objects."},
	"go_memstats_heap_idle_bytes":                   {"gauge", "Bytes in idle (unused) heap spans."},
	"go_memstats_heap_inuse_bytes":                  {"gauge", "Bytes in in-use heap spans."},
	"go_memstats_heap_objects":                      {"gauge", "Number of allocated heap objects."},
	"go_memstats_heap_released_bytes":               {"gauge", "Bytes of physical memory returned to the operating system."},
	"go_memstats_heap_sys_bytes":                    {"gauge", "Bytes of heap memory obtained from the operating system."},
	"go_memstats_last_gc_time_seconds":              {"gauge", "Time the last garbage collection finished, in seconds since the Unix epoch."},
	"go_memstats_lookups_total":                     {"counter", "Pointer lookups performed by the runtime since the process started."},
	"go_memstats_mallocs_total":                     {"counter", "Heap objects allocated since the process started."},
	"go_memstats_mcache_inuse_bytes":                {"gauge", "Bytes of allocated mcache structures."},
	"go_memstats_mcache_sys_bytes":                  {"gauge", "Bytes of memory obtained from the operating system for mcache structures."},
	"go_memstats_mspan_inuse_bytes":                 {"gauge", "Bytes of allocated mspan structures."},
	"go_memstats_mspan_sys_bytes":                   {"gauge", "Bytes of memory obtained from the operating system for mspan structures."},
	"go_memstats_next_gc_bytes":                     {"gauge", "Heap size in bytes at which the next garbage collection starts."},
	"go_memstats_other_sys_bytes":                   {"gauge", "Bytes of memory in miscellaneous off-heap runtime allocations."},
	"go_memstats_stack_inuse_bytes":                 {"gauge", "Bytes in stack spans."},
	"go_memstats_stack_sys_bytes":                   {"gauge", "Bytes of stack memory obtained from the operating system."},
	"go_memstats_sys_bytes":                         {"gauge", "Bytes of memory obtained from the operating system in all."},
	"go_cgo_calls_count":                            {"counter", "Calls from Go to C since the process started."},
	"go_cpu_count":                                  {"gauge", "Logical CPUs usable by the process."},
	"go_gc_duration_seconds":                        {"summary", "Stop-the-world pauses of the garbage collector in seconds, as quantiles."},
	"go_gc_forced_count":                            {"counter", "Garbage collections forced by the program (runtime.GC) since the process started."},
	"go_gomaxprocs":                                 {"gauge", "The GOMAXPROCS setting: threads that may run Go code at once."},
	"go_goroutines":                                 {"gauge", "Goroutines that currently exist."},
	"go_threads":                                    {"gauge", "Operating-system threads the Go runtime created."},
	"go_info":                                       {"gauge", "Always 1; the version label is the Go version that built the program."},
	"go_info_ext":                                   {"gauge", "Always 1; the labels describe the Go toolchain and platform."},
	"process_cpu_seconds_system_total":              {"counter", "CPU time in seconds the process spent in the kernel."},
	"process_cpu_seconds_total":                     {"counter", "CPU time in seconds the process spent, user and system."},
	"process_cpu_seconds_user_total":                {"counter", "CPU time in seconds the process spent in user space."},
	"process_major_pagefaults_total":                {"counter", "Page faults of the process that needed disk I/O."},
	"process_minor_pagefaults_total":                {"counter", "Page faults of the process that needed no disk I/O."},
	"process_num_threads":                           {"gauge", "Operating-system threads of the process."},
	"process_resident_memory_bytes":                 {"gauge", "Resident memory size of the process in bytes."},
	"process_start_time_seconds":                    {"gauge", "Start time of the process in seconds since the Unix epoch."},
	"process_virtual_memory_bytes":                  {"gauge", "Virtual memory size of the process in bytes."},
	"process_virtual_memory_peak_bytes":             {"gauge", "Peak virtual memory size of the process in bytes."},
	"process_resident_memory_peak_bytes":            {"gauge", "Peak resident memory size of the process in bytes."},
	"process_resident_memory_anon_bytes":            {"gauge", "Resident anonymous memory of the process in bytes."},
	"process_resident_memory_file_bytes":            {"gauge", "Resident file-backed memory of the process in bytes."},
	"process_resident_memory_shared_bytes":          {"gauge", "Resident shared memory of the process in bytes."},
	"process_io_read_bytes_total":                   {"counter", "Bytes the process read, page cache included."},
	"process_io_written_bytes_total":                {"counter", "Bytes the process wrote, page cache included."},
	"process_io_read_syscalls_total":                {"counter", "Read system calls of the process."},
	"process_io_write_syscalls_total":               {"counter", "Write system calls of the process."},
	"process_io_storage_read_bytes_total":           {"counter", "Bytes the process read from storage."},
	"process_io_storage_written_bytes_total":        {"counter", "Bytes the process wrote to storage."},
	"process_pressure_cpu_waiting_seconds_total":    {"counter", "Time in seconds some of the process's tasks waited for CPU (cgroup pressure)."},
	"process_pressure_cpu_stalled_seconds_total":    {"counter", "Time in seconds all of the process's tasks waited for CPU (cgroup pressure)."},
	"process_pressure_io_waiting_seconds_total":     {"counter", "Time in seconds some of the process's tasks waited for I/O (cgroup pressure)."},
	"process_pressure_io_stalled_seconds_total":     {"counter", "Time in seconds all of the process's tasks waited for I/O (cgroup pressure)."},
	"process_pressure_memory_waiting_seconds_total": {"counter", "Time in seconds some of the process's tasks waited for memory (cgroup pressure)."},
	"process_pressure_memory_stalled_seconds_total": {"counter", "Time in seconds all of the process's tasks waited for memory (cgroup pressure)."},
	"process_cgroup_cpu_throttled_seconds_total":    {"counter", "Time in seconds the process's cgroup was throttled by its CPU quota."},
	"process_max_fds":                               {"gauge", "Maximum number of open file descriptors of the process."},
	"process_open_fds":                              {"gauge", "Open file descriptors of the process."},
}

// knownFamily returns the metadata of a family the gateway knows.
func knownFamily(name string) (family, bool) {
	if f, ok := gatewayFamilies[name]; ok {
		return f, true
	}
	f, ok := processFamilies[name]
	return f, ok
}

// appendMetadata appends the # HELP and # TYPE lines of a family.
func appendMetadata(b []byte, name string, f family) []byte {
	b = append(b, "# HELP "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = appendHelp(b, f.help)
	b = append(b, "\n# TYPE "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, f.typ...)
	return append(b, '\n')
}

// appendHelp escapes a help text as the text format asks: \ and newline.
func appendHelp(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			b = append(b, `\\`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, s[i])
		}
	}
	return b
}

// metadataWriter is the io.Writer WritePrometheus hands to the
// metrics.Set (and MetricsHandler to the process metrics): it adds one
// # HELP and one # TYPE line before each family's first sample, drops the
// metadata the package writes when an embedder turned ExposeMetadata on
// (keeping its type for families the table lacks), and adds the constant
// labels to every sample. It works on whole lines; writeEndpoints, which
// writes most of a scrape, bypasses it (see direct).
type metadataWriter struct {
	dst     io.Writer
	labels  string // rendered constant labels (`gateway="a"`), or ""
	out     []byte
	partial []byte            // a line cut between two Writes
	family  string            // the family of the last sample line
	grouped bool              // family is a histogram or summary
	seen    map[string]bool   // families whose metadata was written
	typed   map[string]string // types read from # TYPE lines
}

func newMetadataWriter(dst io.Writer, labels string) *metadataWriter {
	return &metadataWriter{dst: dst, labels: labels, out: make([]byte, 0, 8<<10), seen: make(map[string]bool, 64)}
}

// Write takes exposition text, any number of lines, cut anywhere.
func (m *metadataWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			m.partial = append(m.partial, p...)
			break
		}
		if len(m.partial) > 0 {
			m.partial = append(m.partial, p[:i]...)
			m.line(m.partial)
			m.partial = m.partial[:0]
		} else {
			m.line(p[:i])
		}
		p = p[i+1:]
	}
	if len(m.out) >= 32<<10 {
		m.flushOut()
	}
	return n, nil
}

// Flush writes what is buffered, a last line without a newline included.
func (m *metadataWriter) Flush() {
	if len(m.partial) > 0 {
		m.line(m.partial)
		m.partial = m.partial[:0]
	}
	m.flushOut()
}

func (m *metadataWriter) flushOut() {
	if len(m.out) > 0 {
		m.dst.Write(m.out)
		m.out = m.out[:0]
	}
}

// direct flushes the buffer and returns the destination, for a writer
// that adds metadata and labels itself; it must claim its families.
func (m *metadataWriter) direct() io.Writer {
	m.Flush()
	m.family, m.grouped = "", false
	return m.dst
}

// claim reports whether the metadata of family is still to be written,
// and records that it will have been.
func (m *metadataWriter) claim(family string) bool {
	if m.seen[family] {
		return false
	}
	m.seen[family] = true
	return true
}

func (m *metadataWriter) line(l []byte) {
	if len(l) > 0 && l[len(l)-1] == '\r' {
		l = l[:len(l)-1]
	}
	if len(l) == 0 {
		return
	}
	if l[0] == '#' {
		// "# TYPE name type": remembered for families the table lacks.
		if f := strings.Fields(string(l)); len(f) == 4 && f[1] == "TYPE" {
			if m.typed == nil {
				m.typed = map[string]string{}
			}
			m.typed[f[2]] = f[3]
		}
		return
	}
	end := bytes.IndexAny(l, "{ \t")
	if end <= 0 {
		m.out = append(m.out, l...) // not a sample; passed on as it is
		m.out = append(m.out, '\n')
		return
	}
	if !m.sameFamily(l[:end]) {
		fam, f := m.familyOf(string(l[:end]), l[end:])
		if fam != m.family {
			m.family, m.grouped = fam, f.typ == "histogram" || f.typ == "summary"
			if m.claim(fam) {
				m.out = appendMetadata(m.out, fam, f)
			}
		}
	}
	m.out = append(m.out, l[:end]...)
	rest := l[end:]
	switch {
	case m.labels == "":
	case rest[0] == '{':
		m.out = append(m.out, '{')
		m.out = append(m.out, m.labels...)
		rest = rest[1:]
		if len(rest) > 0 && rest[0] != '}' {
			m.out = append(m.out, ',')
		}
	default:
		m.out = append(m.out, '{')
		m.out = append(m.out, m.labels...)
		m.out = append(m.out, '}')
	}
	m.out = append(m.out, rest...)
	m.out = append(m.out, '\n')
}

// sameFamily reports, without allocating, whether a sample called name
// belongs to the family of the line before: the common case, one family's
// series follow each other.
func (m *metadataWriter) sameFamily(name []byte) bool {
	rest, ok := bytes.CutPrefix(name, []byte(m.family))
	if !ok || m.family == "" {
		return false
	}
	switch string(rest) {
	case "":
		return true
	case "_bucket", "_sum", "_count":
		return m.grouped
	}
	return false
}

// familyOf returns the family of a sample called name (rest is the line
// after the name) and its metadata: the name itself, or the name without
// _bucket, _sum or _count for a histogram or summary.
func (m *metadataWriter) familyOf(name string, rest []byte) (string, family) {
	if f, ok := m.lookup(name); ok {
		return name, f
	}
	for _, suffix := range [...]string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		if f, ok := m.lookup(base); ok && (f.typ == "histogram" || f.typ == "summary") {
			return base, f
		}
		if suffix == "_bucket" && (bytes.Contains(rest, []byte(`le="`)) || bytes.Contains(rest, []byte(`vmrange="`))) {
			// A histogram the table lacks; its _sum and _count follow.
			m.typed = setType(m.typed, base, "histogram")
			return base, fallback(base, "histogram")
		}
	}
	return name, fallback(name, "")
}

// lookup finds the metadata of a family in the table, or a type read from
// the input.
func (m *metadataWriter) lookup(name string) (family, bool) {
	if f, ok := knownFamily(name); ok {
		return f, true
	}
	if t, ok := m.typed[name]; ok {
		return fallback(name, t), true
	}
	return family{}, false
}

func setType(typed map[string]string, name, typ string) map[string]string {
	if typed == nil {
		typed = map[string]string{}
	}
	typed[name] = typ
	return typed
}

// fallback is the metadata of a family the table lacks: typ when the input
// named one, else counter for a name in _total (the Prometheus naming
// rule), else untyped, which is what a sample without metadata is.
func fallback(name, typ string) family {
	switch {
	case typ != "":
	case strings.HasSuffix(name, "_total"):
		typ = "counter"
	default:
		typ = "untyped"
	}
	return family{typ, "Metric " + name + ", added to the gateway's metrics set by the program or the metrics package."}
}

// WritePrometheus writes the gateway's metrics in the Prometheus text
// format: request counts and latency histograms per endpoint, breaker and
// health state, upstream errors by kind, in-flight requests, probe latency
// and registry size. Two Orchestrators in one process keep separate sets.
// With WithMetrics(false) it writes only the series the program added to
// MetricsSet. Every family gets one # HELP and one # TYPE line, and every
// series the labels of WithMetricsLabels, without touching the metrics
// package's global ExposeMetadata. Safe for concurrent use.
func (o *Orchestrator) WritePrometheus(w io.Writer) {
	m := newMetadataWriter(w, o.metricsLabels)
	o.metricsSet.WritePrometheus(m)
	m.Flush()
}

// MetricsSet returns the Orchestrator's metrics.Set, so that a program can
// add its own series to the same exposition (orchestratord adds
// orchestrator_config_reloads_total). Do not unregister the gateway's own.
// Written on its own (Set.WritePrometheus, or metrics.RegisterSet), the set
// carries neither metadata nor the WithMetricsLabels labels: those are
// added by WritePrometheus and MetricsHandler.
func (o *Orchestrator) MetricsSet() *metrics.Set { return o.metricsSet }

// MetricsHandler serves WritePrometheus over HTTP. With process true it also
// writes the Go runtime and process metrics (go_*, process_*), open file
// descriptors (process_open_fds, process_max_fds) included, with metadata
// but without the WithMetricsLabels labels: they describe the process, and
// Prometheus tells processes apart by the scrape target's instance label.
// A process serving several gateways should pass true to one handler only.
func (o *Orchestrator) MetricsHandler(process bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		m := newMetadataWriter(w, o.metricsLabels)
		o.metricsSet.WritePrometheus(m)
		if process {
			m.labels = ""
			metrics.WriteProcessMetrics(m)
			metrics.WriteFDMetrics(m)
		}
		m.Flush()
	})
}
