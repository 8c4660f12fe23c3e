//go:build unix

package e2e_test

// Browser tests: headless Chromium loads the admin pages of a running
// orchestratord and the test reads the DOM it ends up with, which is what a
// person would see — the status page's rows after the server rendered them,
// the docs page after its script fetched openapi.json and built the route
// list, the reference page as the server rendered it. Chromium resolves no host but 127.0.0.1, so a page that needed
// anything from the internet would show it.
//
// Without Chromium on PATH these tests skip, so that go test ./... passes on
// a fresh machine; install Debian's package (apt-get install -y chromium) to
// run them. Set ORCHESTRATOR_REQUIRE_BROWSER=1 to make a missing Chromium
// fail them instead: .ci/run does, after installing it, so CI never skips.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"image"
	"image/png"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

const (
	// chromiumTimeout bounds one page load, start to exit, on a loaded
	// machine running the race-enabled server next to other test binaries.
	chromiumTimeout = 60 * time.Second
	// requireBrowserEnv names the variable that, set to 1, makes a missing
	// Chromium fail the browser tests instead of skipping them.
	requireBrowserEnv = "ORCHESTRATOR_REQUIRE_BROWSER"
)

// findChromium returns the chromium binary. When there is none on PATH it
// skips the test, or fails it when ORCHESTRATOR_REQUIRE_BROWSER=1.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const install = "Install Debian's chromium to run them: apt-get install -y chromium"
	if os.Getenv(requireBrowserEnv) == "1" {
		t.Fatalf("chromium is not on PATH: got no browser; want one, as %s=1 requires the headless Chromium tests.\n%s (.ci/run does so before go test).",
			requireBrowserEnv, install)
	}
	t.Skipf("chromium is not on PATH: skipping the headless Chromium tests.\n%s; set %s=1 to make a missing chromium fail them.",
		install, requireBrowserEnv)
	return ""
}

// page is what Chromium showed: the serialized DOM after the page's
// scripts ran, and Chromium's own log (console messages included).
type page struct {
	dom string
	log string
}

// load opens url in a fresh headless Chromium, lets the page run for budget
// of virtual time and returns the DOM it dumps. Chromium exits by itself
// after --dump-dom; the context kills its whole process group if it hangs.
func load(t *testing.T, chromium, url string, budget time.Duration) page {
	t.Helper()
	stdout, stderr := runChromium(t, chromium, url, "--dump-dom", fmt.Sprintf("--virtual-time-budget=%d", budget.Milliseconds()))
	dom := stdout
	require.Contains(t, dom, "</html>", "chromium %s: got no document; stderr:\n%s", url, tail(stderr, 40))
	return page{dom: dom, log: stderr}
}

// screenshot opens url in a fresh headless Chromium of the given size and
// returns what it painted, with Chromium's log.
func screenshot(t *testing.T, chromium, url string, width, height int) (image.Image, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "shot.png")
	_, stderr := runChromium(t, chromium, url, "--screenshot="+out, fmt.Sprintf("--window-size=%d,%d", width, height), "--hide-scrollbars")
	f, err := os.Open(out)
	require.NoError(t, err, "chromium %s: got no screenshot; stderr:\n%s", url, tail(stderr, 40))
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err, "decoding the screenshot of %s", url)
	return img, stderr
}

// runChromium runs a fresh headless Chromium on url with the extra
// arguments and returns its stdout and stderr. The context kills its whole
// process group if it hangs.
func runChromium(t *testing.T, chromium, url string, extra ...string) (string, string) {
	t.Helper()
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), chromiumTimeout)
	defer cancel()
	args := []string{
		"--headless=new",
		"--no-sandbox", // CI runs as root
		"--disable-gpu",
		"--no-first-run",
		"--no-default-browser-check",
		"--disable-extensions",
		"--disable-sync",
		"--disable-background-networking",
		"--disable-component-update",
		"--no-proxy-server",
		// Offline: every host but the server under test fails to resolve.
		"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
		// Console messages (CSP violations among them) go to stderr.
		"--enable-logging=stderr", "--v=0",
		"--user-data-dir=" + filepath.Join(home, "profile"),
	}
	args = append(append(args, extra...), url)
	cmd := exec.CommandContext(ctx, chromium, args...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "XDG_CACHE_HOME="+filepath.Join(home, ".cache"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	if cmd.Process != nil {
		// Renderer or GPU processes left behind by a browser that died.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("chromium %s: got no exit within %v; want it done\nstderr:\n%s", url, chromiumTimeout, tail(stderr.String(), 40))
	}
	require.NoError(t, err, "chromium %s: exit after %v; stderr:\n%s", url, time.Since(start), tail(stderr.String(), 40))
	return stdout.String(), stderr.String()
}

// countColor counts the pixels of img painted in the colour rgb
// (0xRRGGBB) on a white background: the colour itself, or an
// antialiased tint of it at least half strong (every channel moved from
// white towards the colour by the same share, give or take 6 levels).
func countColor(img image.Image, rgb uint32) int {
	want := [3]float64{float64(rgb >> 16 & 0xff), float64(rgb >> 8 & 0xff), float64(rgb & 0xff)}
	widest := 0
	for i := range want {
		if want[i] < want[widest] {
			widest = i
		}
	}
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			got := [3]float64{float64(r >> 8), float64(g >> 8), float64(bl >> 8)}
			share := (255 - got[widest]) / (255 - want[widest])
			if share < 0.5 || share > 1.02 {
				continue
			}
			tint := true
			for i := range got {
				tint = tint && math.Abs(got[i]-(255-share*(255-want[i]))) <= 6
			}
			if tint {
				n++
			}
		}
	}
	return n
}

// consoleProblems are Chromium log lines that mean the page did not work
// as written: CSP violations, failed loads, script errors.
func (p page) consoleProblems() []string {
	var out []string
	for _, l := range strings.Split(p.log, "\n") {
		if !strings.Contains(l, ":CONSOLE") {
			continue
		}
		for _, bad := range []string{"Content Security Policy", "Failed to load", "Uncaught", "ERR_"} {
			if strings.Contains(l, bad) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// cell is one <td> of a status page row as a person reads it.
type cell struct {
	text  string
	attrs map[string]string
}

var (
	domRowRE  = regexp.MustCompile(`(?s)<tr data-endpoint="([^"]*)">(.*?)</tr>`)
	domCellRE = regexp.MustCompile(`(?s)<td class="([^"]*)"([^>]*)>(.*?)</td>`)
	domAttrRE = regexp.MustCompile(`([a-z-]+)="([^"]*)"`)
	domTagRE  = regexp.MustCompile(`<[^>]*>`)
)

// row finds the status page row of endpoint id (<tr data-endpoint="id">)
// and returns its cells by their first class.
func (p page) row(t *testing.T, id string) map[string]cell {
	t.Helper()
	for _, r := range domRowRE.FindAllStringSubmatch(p.dom, -1) {
		if html.UnescapeString(r[1]) != id {
			continue
		}
		cells := map[string]cell{}
		for _, c := range domCellRE.FindAllStringSubmatch(r[2], -1) {
			class, _, _ := strings.Cut(c[1], " ")
			attrs := map[string]string{}
			for _, a := range domAttrRE.FindAllStringSubmatch(c[2], -1) {
				attrs[a[1]] = html.UnescapeString(a[2])
			}
			text := strings.Join(strings.Fields(html.UnescapeString(domTagRE.ReplaceAllString(c[3], " "))), " ")
			cells[class] = cell{text: text, attrs: attrs}
		}
		return cells
	}
	t.Fatalf("status page: got no row <tr data-endpoint=%q>; want one. DOM:\n%s", id, p.dom)
	return nil
}

func assertText(t *testing.T, row map[string]cell, class, want string) {
	t.Helper()
	c, ok := row[class]
	if assert.True(t, ok, "got no %q cell in the row; want one", class) {
		assert.Equal(t, want, c.text, "%s cell: got %q; want %q", class, c.text, want)
	}
}

// assertOffline checks that nothing in the DOM points away from the server:
// every src, href and action is relative, and any URL in the text is the
// loopback server's.
func assertOffline(t *testing.T, p page) {
	t.Helper()
	for _, m := range regexp.MustCompile(`(?i)\s(src|href|action)="([^"]*)"`).FindAllStringSubmatch(p.dom, -1) {
		assert.NotRegexp(t, `^([a-zA-Z][a-zA-Z0-9+.-]*:|//)`, m[2], "%s=%q: got a link elsewhere; want the page self-contained", m[1], m[2])
	}
	for _, u := range regexp.MustCompile(`(?i)\b(?:https?|wss?|ftp)://[^\s"'<>]+`).FindAllString(p.dom, -1) {
		assert.Regexp(t, `^https?://127\.0\.0\.1[:/]`, u, "the DOM names %s; want no other origin than the server's", u)
	}
	assert.Empty(t, p.consoleProblems(), "chromium's console: got problems; want none")
}

func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("builds orchestratord and drives headless Chromium; skipped in -short mode")
	}
	chromium := findChromium(t)
	bin := buildBinary(t)
	backend := newBackend(t, "E")

	// No admin token: the admin API serves loopback clients that address it
	// by a loopback name, which is what Chromium on 127.0.0.1 is.
	configPath := testutil.ConfigFile(t, fmt.Sprintf(`server:
  host: 127.0.0.1
  shutdown_timeout: %s
logging:
  level: warn
health_check:
  enabled: false
circuit_breaker:
  reset_timeout: 3600
endpoints:
  - name: echo
    version: v1
    url: "%s/echo"
`, shutdownTimeout, backend.srv.URL))
	g := startGateway(t, bin, "--config", configPath, "--port", "0")

	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	// The status page refreshes itself every 5s (<meta http-equiv=refresh>);
	// in virtual time a budget past that reloads it, so it gets less.
	const statusBudget = 2 * time.Second

	step("status page shows the endpoint with its breaker closed", func(t *testing.T) {
		for range 3 {
			r := g.do(t, http.MethodGet, "/orchestrator/echo/v1/hello", nil)
			require.Equal(t, http.StatusOK, r.status, "proxied GET: got %s; want 200", r)
		}
		p := load(t, chromium, g.base+"/status", statusBudget)
		assert.Contains(t, p.dom, "<title>orchestrator status</title>")
		assert.Contains(t, p.dom, `<meta http-equiv="refresh" content="5">`, "the page refreshes itself")
		row := p.row(t, "echo_v1")
		assertText(t, row, "id", "echo_v1")
		assertText(t, row, "route", "/orchestrator/echo/v1")
		assertText(t, row, "status", "healthy")
		assertText(t, row, "breaker", "closed")
		assert.Equal(t, "closed", row["breaker"].attrs["data-state"], "breaker data-state: got %q; want closed", row["breaker"].attrs["data-state"])
		assertText(t, row, "rate", "—") // the first render has no earlier one to measure from
		assert.Regexp(t, `^\d+(\.\d+)? (µs|ms|s)$`, row["latency"].text, "mean latency since the start")
		assertText(t, row, "errors", "0")
		assertText(t, row, "failures", "0")
		assert.Regexp(t, `(?s)<dl id="config"[^>]*>.*`+regexp.QuoteMeta(configPath), p.dom, "the config status block names the file")
		assertOffline(t, p)
	})

	step("status page draws the last 15 minutes as a chart, within its CSP", func(t *testing.T) {
		for range 3 {
			r := g.do(t, http.MethodGet, "/orchestrator/echo/v1/hello", nil)
			require.Equal(t, http.StatusOK, r.status, "proxied GET: got %s; want 200", r)
		}
		p := load(t, chromium, g.base+"/status", statusBudget)
		row := p.row(t, "echo_v1")
		assert.Regexp(t, ` \d+(\.\d+)? req/s p99 \d+(\.\d+)? (µs|ms|s) 0 err$`, row["chart"].text, "the chart's legend")
		assert.Regexp(t, `<svg class="spark"[^>]*role="img"[^>]*><title>last 15 minutes: peak \d+(\.\d+)? req/s, p99 up to [^<]+, 0 errors</title><polyline class="rate" points="(\d+\.\d,\d+\.\d ?){15}"`, p.dom)
		assertOffline(t, p)

		// Painted: the chart's lines take their colours from the page's
		// hashed stylesheet, so a CSP that refused it would leave them
		// unpainted (an SVG stroke is none by default).
		img, log := screenshot(t, chromium, g.base+"/status", 1600, 700)
		assert.Empty(t, page{log: log}.consoleProblems(), "chromium's console while painting")
		assert.Greater(t, countColor(img, 0x8250df), 20, "pixels of the request-rate line")
		assert.Greater(t, countColor(img, 0xe16f24), 20, "pixels of the p99 line")
		assert.Greater(t, countColor(img, 0xbf3989), 20, "pixels of the errors line")
	})

	step("after a trip a fresh load shows the breaker open", func(t *testing.T) {
		r := g.do(t, http.MethodPost, "/circuit-breaker/trip/echo_v1", nil)
		require.Equal(t, http.StatusOK, r.status, "POST /circuit-breaker/trip/echo_v1: got %s; want 200", r)
		r = g.do(t, http.MethodGet, "/orchestrator/echo/v1/hello", nil)
		require.Equal(t, http.StatusServiceUnavailable, r.status, "through the open breaker: got %s; want 503", r)

		p := load(t, chromium, g.base+"/status", statusBudget)
		row := p.row(t, "echo_v1")
		assertText(t, row, "breaker", "open")
		assert.Equal(t, "open", row["breaker"].attrs["data-state"], "breaker data-state: got %q; want open", row["breaker"].attrs["data-state"])
		assertText(t, row, "status", "unhealthy")
		assertText(t, row, "errors", "1")
		assert.Regexp(t, `^\d+(\.\d+)? req/s$`, row["rate"].text, "the second render measures the rate since the first")
		assertOffline(t, p)
	})

	step("docs page lists the admin routes offline", func(t *testing.T) {
		checkDocsPage(t, chromium, g.base)
	})

	step("reference page shows the operations and schemas offline", func(t *testing.T) {
		checkRedocPage(t, chromium, g.base)
	})

	step("with an admin token, a browser opens both pages without it", func(t *testing.T) {
		checkPagesWithToken(t, chromium, bin)
	})

	step("the server stops cleanly", func(t *testing.T) {
		g.client.CloseIdleConnections()
		require.NoError(t, g.cmd.Process.Signal(syscall.SIGTERM))
		select {
		case <-g.done:
		case <-time.After(shutdownTimeout + 10*time.Second):
			t.Fatal("orchestratord: got no exit after SIGTERM; want a graceful shutdown")
		}
		// Built with -race under go test -race: a data race exits 66.
		assert.Equal(t, 0, g.cmd.ProcessState.ExitCode(), "orchestratord exit code: got %d (%v); want 0", g.cmd.ProcessState.ExitCode(), g.err)
	})
}

// checkDocsPage loads /docs and checks that its script fetched openapi.json
// and listed the routes, offline.
func checkDocsPage(t *testing.T, chromium, base string) {
	t.Helper()
	// The page needs its script to fetch openapi.json and build the list.
	const docsBudget = 5 * time.Second
	p := load(t, chromium, base+"/docs", docsBudget)
	for _, route := range []string{"/registry/endpoints", "/circuit-breaker/trip/{id}", "/health/summary", "/config/status", "/status"} {
		assert.Contains(t, p.dom, `<code class="path">`+html.EscapeString(route)+`</code>`,
			"the docs page after its script ran: got no %s in the route list; want every admin route from /openapi.json", route)
	}
	m := regexp.MustCompile(`<p id="message"[^>]*>([^<]*)</p>`).FindStringSubmatch(p.dom)
	if assert.NotNil(t, m, "the docs page has its message line") {
		assert.Empty(t, m[1], "the docs page's message: got %q; want none once the spec loaded", m[1])
	}
	assert.Contains(t, p.dom, `id="token"`, "the docs page has its token field")
	assertOffline(t, p)
}

// checkPagesWithToken starts a second server, with an admin token, and
// opens /docs and /redoc as a browser's address bar does, without the
// token: the pages hold no data and are open, the API is not.
func checkPagesWithToken(t *testing.T, chromium, bin string) {
	t.Helper()
	configPath := testutil.ConfigFile(t, fmt.Sprintf(`server:
  host: 127.0.0.1
admin:
  token: %s
logging:
  level: warn
health_check:
  enabled: false
`, adminToken))
	g := startGateway(t, bin, "--config", configPath, "--port", "0")
	r := g.do(t, http.MethodGet, "/health/endpoints", nil)
	require.Equal(t, http.StatusUnauthorized, r.status, "GET /health/endpoints without the token: got %s; want 401", r)
	checkDocsPage(t, chromium, g.base)
	checkRedocPage(t, chromium, g.base)
}

// checkRedocPage loads /redoc and checks that the browser shows the
// operations and schemas the server rendered, with no script, nothing
// loaded from elsewhere and no CSP violation (its inline style is allowed
// by hash).
func checkRedocPage(t *testing.T, chromium, base string) {
	t.Helper()
	// No script runs: the page is complete once loaded.
	const redocBudget = 2 * time.Second
	p := load(t, chromium, base+"/redoc", redocBudget)
	assert.Contains(t, p.dom, "<title>orchestrator admin API reference</title>")
	for _, op := range []struct{ method, path string }{
		{"post", "/registry/endpoints"}, {"post", "/circuit-breaker/trip/{id}"}, {"get", "/health/summary"},
		{"get", "/router/debug/{path}"}, {"get", "/docs"}, {"get", "/redoc"},
	} {
		assert.Regexp(t, `<article class="op" id="[^"]*" data-method="`+op.method+`" data-path="`+regexp.QuoteMeta(html.EscapeString(op.path))+`">`, p.dom,
			"the reference page: got no %s %s; want every operation of /openapi.json", strings.ToUpper(op.method), op.path)
	}
	for _, schema := range []string{"Endpoint", "RegisteredEndpoint", "Problem"} {
		assert.Contains(t, p.dom, `<section class="schema" id="schema-`+schema+`" data-schema="`+schema+`">`, "the %s schema's section", schema)
		assert.Contains(t, p.dom, `href="#schema-`+schema+`"`, "a link to the %s schema", schema)
	}
	assert.NotContains(t, p.dom, "<script", "the reference page runs no script")
	assertOffline(t, p)
}
