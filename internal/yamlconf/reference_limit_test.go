package yamlconf_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator/config"
	"github.com/orchestrator-go/orchestrator/internal/yamlconf"
)

// msgReference is the problem of a file over 64 KiB that the fast parser
// does not read: the reference path would cost it more than the bound.
const msgReference = "a config file over 64 KiB must be plain YAML or JSON: mappings, lists, values on one line and " +
	"flow collections ([a, b], {k: v}); this line holds what only smaller files may use (an anchor, alias, tag, " +
	"block scalar, value on several lines, tab or document marker) or a syntax error"

// plainEndpoints writes n endpoints in the fast parser's subset, four lines
// each, after the "endpoints:" line.
func plainEndpoints(n int) string {
	var b strings.Builder
	b.WriteString("endpoints:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - name: svc%d\n    version: v1\n    url: http://127.0.0.1:%d/api\n    timeout: 30\n", i, 10000+i)
	}
	return b.String()
}

// outsideTheSubset are endpoints, each in what only the reference path
// reads, and the line of the first one's construct (counted from the
// endpoint's first line, 0). Each decodes when the file is small.
var outsideTheSubset = []struct {
	name, endpoint string
	line           int
}{
	{"an anchor", "  - name: x\n    url: http://127.0.0.1:1\n    circuit_breaker: &cb {reset_timeout: 1m}\n", 2},
	{"an alias", "  - name: x\n    url: http://127.0.0.1:1\n    health_check: &hc {interval: 5s}\n  - name: y\n    url: http://127.0.0.1:2\n    health_check: *hc\n", 2},
	{"a merge key", "  - &base\n    name: x\n    url: http://127.0.0.1:1\n  - <<: *base\n    version: v2\n", 0},
	{"a tag", "  - name: !!str x\n    url: http://127.0.0.1:1\n", 0},
	{"a block scalar", "  - name: x\n    url: http://127.0.0.1:1\n    health_check_path: |-\n      /health\n", 2},
	{"a value on two lines", "  - name: x\n    url: http://127.0.0.1:1\n    health_check_path: /a\n      b\n", 3},
	{"a tab", "  - name: x\n    url:\thttp://127.0.0.1:1\n", 1},
}

// A file over 64 KiB that the fast parser does not read is refused at the
// line where it stopped, whatever stopped it; as small, the same file is
// read by the reference path.
func TestLargeFilesOutsideTheSubsetAreRefused(t *testing.T) {
	head := plainEndpoints(400) // about 40 KiB, 1,601 lines
	headLines := strings.Count(head, "\n")
	for _, c := range outsideTheSubset {
		t.Run(c.name, func(t *testing.T) {
			small := head + c.endpoint
			var cfg config.Config
			_, problems := yamlconf.Decode([]byte(small), &cfg)
			require.Empty(t, problems, "a small file is read by the reference path")

			large := small + strings.TrimPrefix(plainEndpoints(1200), "endpoints:\n")
			require.Greater(t, len(large), 64<<10)
			_, problems = yamlconf.Decode([]byte(large), &cfg)
			require.Len(t, problems, 1)
			assert.Equal(t, msgReference, problems[0].Message)
			assert.Equal(t, headLines+1+c.line, problems[0].Line, "the line of the construct")
		})
	}
}

// A syntax error in a large file is refused at its line too.
func TestLargeFileWithASyntaxErrorNamesItsLine(t *testing.T) {
	doc := plainEndpoints(300) + "  - name: x\n     url: y\n" + strings.TrimPrefix(plainEndpoints(2000), "endpoints:\n")
	require.Greater(t, len(doc), 64<<10)
	var cfg config.Config
	_, problems := yamlconf.Decode([]byte(doc), &cfg)
	require.Len(t, problems, 1)
	assert.Equal(t, msgReference, problems[0].Message)
	assert.Equal(t, 1+4*300+2, problems[0].Line)
}

// A large file in the subset is read whatever its size: JSON, CRLF line
// ends (read as LF), and problems the check finds on the fast tree, within
// the bound on allocation.
func TestLargeFilesInTheSubsetAreRead(t *testing.T) {
	plain := plainEndpoints(40000) // about 4 MiB
	for name, doc := range map[string]string{
		"LF":   plain,
		"CRLF": strings.ReplaceAll(plain, "\n", "\r\n"),
		"JSON": string(endpointsJSON(t, 20000)),
	} {
		t.Run(name, func(t *testing.T) {
			var cfg config.Config
			var problems []yamlconf.Problem
			alloc := allocated(func() { _, problems = yamlconf.Decode([]byte(doc), &cfg) })
			require.Empty(t, problems)
			assert.NotEmpty(t, cfg.Endpoints)
			assert.LessOrEqual(t, alloc, uint64(allocPerMiB*len(doc)+allocSlack))
		})
	}
	t.Run("CRLF with problems", func(t *testing.T) {
		doc := strings.ReplaceAll(plain+"  - nmae: x\n    max_concurrent: 99999999999999999999\n", "\n", "\r\n")
		var cfg config.Config
		var problems []yamlconf.Problem
		alloc := allocated(func() { _, problems = yamlconf.Decode([]byte(doc), &cfg) })
		lines := 1 + 4*40000
		assert.Equal(t, []string{
			fmt.Sprintf("%d:5 unknown field \"nmae\" (did you mean \"name\"?)", lines+1),
			fmt.Sprintf("%d:21 must be a whole number", lines+2),
		}, located(problems))
		assert.LessOrEqual(t, alloc, uint64(allocPerMiB*len(doc)+allocSlack))
	})
	t.Run("a null key", func(t *testing.T) {
		doc := plain + "  - ~: x\n"
		var cfg config.Config
		var problems []yamlconf.Problem
		alloc := allocated(func() { _, problems = yamlconf.Decode([]byte(doc), &cfg) })
		assert.Equal(t, []string{fmt.Sprintf("%d:5 unknown field \"null\" (did you mean \"url\"?)", 1+4*40000+1)}, located(problems))
		assert.LessOrEqual(t, alloc, uint64(allocPerMiB*len(doc)+allocSlack))
	})
}

// The lenient check, which a file too large for the reference path gets,
// gives the reference path's problems on null keys with no comment.
func TestLenientCheckMatchesTheReference(t *testing.T) {
	for _, doc := range []string{
		"~: x\n",
		"null: x\nendpoints: []\n",
		"endpoints:\n  - NULL: 1\n    name: a\n  - Null:\n",
		"server: {~: 1, listen: x}\n",
		"{\"endpoints\": [{null: 1}]}",
	} {
		var cfg config.Config
		_, want := yamlconf.DecodeOriginal([]byte(doc), &cfg)
		require.NotEmpty(t, want, "%q", doc)
		got, exact := yamlconf.CheckTreeLenient([]byte(doc), &cfg)
		require.True(t, exact, "%q", doc)
		assert.Equal(t, located(want), located(got), "%q", doc)
	}
}

// NullKey reads the tree Decode parsed, the fast parser's or
// goccy/go-yaml's.
func TestNullKey(t *testing.T) {
	for doc, want := range map[string]bool{
		"endpoints:\n":                   true,
		"endpoints: ~\n":                 true,
		"endpoints: null # cut\n":        true,
		"{\"endpoints\": null}":          true,
		"endpoints: []\n":                false,
		"server: {listen: x}\n":          false,
		"x-a: &a 1\nendpoints: []\n":     false,
		"x-a: &a 1\nendpoints: !!null\n": true,
	} {
		var v map[string]any
		d, problems := yamlconf.Decode([]byte(doc), &v)
		require.Empty(t, problems, "%q", doc)
		assert.Equal(t, want, d.NullKey("endpoints"), "%q", doc)
	}
}

// peakHeap returns how far the heap in use rose above where it was while f
// ran, read every millisecond; the heap is collected first. A reading can
// miss the very top between two samples, never add to it: the bound
// checked with it holds at least as far as it reads.
func peakHeap(f func()) uint64 {
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var top uint64
	done := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			top = max(top, m.HeapAlloc)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	f()
	close(done)
	sampler.Wait()
	if top < before.HeapAlloc {
		return 0
	}
	return top - before.HeapAlloc
}

// The reference path is held to the heap bound up to the size past which
// Decode refuses what only it reads: the valid configs of referenceShapes
// just under 64 KiB are decoded with at most 64 MiB of heap per MiB of
// input, plus the slack FuzzDecodeBounded explains. What it costs past
// that size is why Decode refuses it there (BenchmarkReferencePath).
func TestReferencePathHeap(t *testing.T) {
	for _, h := range referenceShapes(63 << 10) {
		t.Run(h.name, func(t *testing.T) {
			var cfg config.Config
			var problems []yamlconf.Problem
			peak := peakHeap(func() { _, problems = yamlconf.Decode(h.data, &cfg) })
			require.Empty(t, problems)
			require.NotEmpty(t, cfg.Endpoints)
			limit := uint64(allocPerMiB*len(h.data) + allocSlack)
			assert.LessOrEqual(t, peak, limit, "got the heap %.1f MiB higher for %.0f KiB of input; want at most %.1f MiB",
				float64(peak)/(1<<20), float64(len(h.data))/(1<<10), float64(limit)/(1<<20))
		})
	}
}

// JSON indented with tabs, as json.MarshalIndent with "\t" writes it, is
// read by the fast parser at any size, with positions as an editor counts
// characters.
func TestTabIndentedJSONIsReadAtAnySize(t *testing.T) {
	var eps []string
	for i := range 3000 {
		eps = append(eps, fmt.Sprintf("\t\t{\n\t\t\t\"name\": \"svc%d\",\n\t\t\t\"url\": \"http://127.0.0.1:%d\"\n\t\t}", i, 10000+i))
	}
	doc := "{\n\t\"endpoints\": [\n" + strings.Join(eps, ",\n") + "\n\t]\n}\n"
	require.Greater(t, len(doc), 64<<10)
	var cfg config.Config
	_, problems := yamlconf.Decode([]byte(doc), &cfg)
	require.Empty(t, problems)
	assert.Len(t, cfg.Endpoints, 3000)

	bad := strings.Replace(doc, "\"url\": \"http://127.0.0.1:10007\"", "\"ulr\": \"http://127.0.0.1:10007\"", 1)
	_, problems = yamlconf.Decode([]byte(bad), &cfg)
	require.Len(t, problems, 1)
	assert.Equal(t, fmt.Sprintf("%d:4 unknown field \"ulr\" (did you mean \"url\"?)", 2+7*4+3), located(problems)[0])
}
