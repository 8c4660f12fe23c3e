package testutil

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// ExpositionMetadataProblems checks a Prometheus text exposition (format
// 0.0.4) and returns one line per problem, or nil: a family whose samples
// have no # TYPE or no # HELP line before them, a # HELP without text, a
// # HELP or # TYPE line
// written twice for a family or after its samples, an unknown type, a
// sample that does not fit its family's type (a histogram sample that is
// neither _bucket with le or vmrange, _sum nor _count; a summary sample
// neither quantile, _sum nor _count; a negative or NaN counter), a family
// whose samples are not contiguous, a series written twice, and lines that
// do not parse. Metadata-based tooling (Prometheus' metadata API, Grafana's
// metric browser, promtool) sees the exposition as this reads it.
func ExpositionMetadataProblems(text string) []string {
	c := expoChecker{help: map[string]int{}, typ: map[string]string{}, typeLine: map[string]int{}, sampled: map[string]bool{}, series: map[string]int{}}
	for i, line := range strings.Split(text, "\n") {
		c.line(i+1, strings.TrimRight(line, "\r"))
	}
	return c.problems
}

type expoChecker struct {
	problems []string
	help     map[string]int    // family → line of its # HELP
	typ      map[string]string // family → type
	typeLine map[string]int
	sampled  map[string]bool // families with samples so far
	current  string          // family of the last sample
	series   map[string]int  // series key → line
}

func (c *expoChecker) addf(line int, format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf("line %d: ", line)+fmt.Sprintf(format, args...))
}

func (c *expoChecker) line(n int, line string) {
	switch {
	case strings.TrimSpace(line) == "":
	case strings.HasPrefix(line, "#"):
		c.comment(n, line)
	default:
		c.sample(n, line)
	}
}

func (c *expoChecker) comment(n int, line string) {
	f := strings.Fields(line)
	if len(f) < 3 || f[0] != "#" || (f[1] != "HELP" && f[1] != "TYPE") {
		if len(f) == 2 && f[0] == "#" && (f[1] == "HELP" || f[1] == "TYPE") {
			c.addf(n, "# %s without a family name", f[1])
		}
		return // an ordinary comment
	}
	name := f[2]
	if c.sampled[name] {
		c.addf(n, "# %s %s comes after samples of the family; want it before them", f[1], name)
	}
	if f[1] == "HELP" {
		if prev, ok := c.help[name]; ok {
			c.addf(n, "# HELP %s written twice (first at line %d)", name, prev)
		}
		if len(f) == 3 {
			c.addf(n, "# HELP %s has no text", name)
		}
		c.help[name] = n
		return
	}
	if len(f) != 4 {
		c.addf(n, "# TYPE %s: want exactly one type", name)
		return
	}
	if prev, ok := c.typeLine[name]; ok {
		c.addf(n, "# TYPE %s written twice (first at line %d)", name, prev)
	}
	switch f[3] {
	case "counter", "gauge", "histogram", "summary", "untyped":
	default:
		c.addf(n, "# TYPE %s: unknown type %q", name, f[3])
	}
	c.typ[name], c.typeLine[name] = f[3], n
}

func (c *expoChecker) sample(n int, line string) {
	name, labels, value, err := parseExpositionSample(line)
	if err != nil {
		c.addf(n, "%q: %v", line, err)
		return
	}
	key := name + "{" + strings.Join(labels, ",") + "}"
	if prev, ok := c.series[key]; ok {
		c.addf(n, "series %s written twice (first at line %d)", key, prev)
	}
	c.series[key] = n
	fam := c.familyOf(name)
	if fam != c.current && c.sampled[fam] {
		c.addf(n, "samples of family %s are split by other families; want them together", fam)
	}
	first := !c.sampled[fam]
	c.current, c.sampled[fam] = fam, true
	typ, typed := c.typ[fam]
	if first {
		if !typed {
			c.addf(n, "family %s has no # TYPE line before its samples", fam)
		}
		if _, ok := c.help[fam]; !ok {
			c.addf(n, "family %s has no # HELP line before its samples", fam)
		}
	}
	if msg := sampleTypeProblem(typ, fam, name, labels, value); msg != "" {
		c.addf(n, "%s", msg)
	}
}

// familyOf maps a sample name to its family: itself, or the name without
// _bucket, _sum or _count when that is a histogram or summary.
func (c *expoChecker) familyOf(name string) string {
	if _, ok := c.typ[name]; ok {
		return name
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if t := c.typ[base]; t == "histogram" || (t == "summary" && suffix != "_bucket") {
				return base
			}
		}
	}
	return name
}

// sampleTypeProblem says how a sample does not fit its family's type, or "".
func sampleTypeProblem(typ, fam, name string, labels []string, value float64) string {
	has := func(label string) bool {
		return slices.ContainsFunc(labels, func(l string) bool { return strings.HasPrefix(l, label+"=") })
	}
	switch typ {
	case "counter":
		if value < 0 || math.IsNaN(value) {
			return fmt.Sprintf("counter %s has value %v; want a non-negative number", name, value)
		}
	case "histogram":
		switch {
		case name == fam+"_bucket" && !has("le") && !has("vmrange"):
			return fmt.Sprintf("histogram bucket %s has no le (or vmrange) label", name)
		case name == fam:
			return fmt.Sprintf("histogram %s has a sample without _bucket, _sum or _count", name)
		}
	case "summary":
		if name == fam && !has("quantile") {
			return fmt.Sprintf("summary %s has a sample without a quantile label", name)
		}
	}
	return ""
}

// parseExpositionSample splits `name{l="v",...} value [timestamp]` into the
// name, the labels as sorted l="v" strings (values unescaped and quoted
// again, so that spellings compare equal) and the value.
func parseExpositionSample(line string) (name string, labels []string, value float64, err error) {
	end := strings.IndexAny(line, "{ \t")
	if end <= 0 {
		return "", nil, 0, fmt.Errorf("no metric name")
	}
	name, rest := line[:end], line[end:]
	if rest[0] == '{' {
		labels, rest, err = parseExpositionLabels(rest[1:])
		if err != nil {
			return "", nil, 0, err
		}
	}
	fields := strings.Fields(rest)
	if len(fields) < 1 || len(fields) > 2 {
		return "", nil, 0, fmt.Errorf("want a value and at most a timestamp after the series")
	}
	value, err = strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return "", nil, 0, fmt.Errorf("value %q is not a number", fields[0])
	}
	slices.Sort(labels)
	return name, labels, value, nil
}

// parseExpositionLabels reads labels up to the closing brace and returns
// them and the text after it.
func parseExpositionLabels(s string) (labels []string, rest string, err error) {
	seen := map[string]bool{}
	for {
		s = strings.TrimLeft(s, " \t")
		if strings.HasPrefix(s, "}") {
			return labels, s[1:], nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || len(s) < eq+2 || s[eq+1] != '"' {
			return nil, "", fmt.Errorf("want label=\"value\" at %q", s)
		}
		label := strings.TrimSpace(s[:eq])
		if seen[label] {
			return nil, "", fmt.Errorf("label %s given twice", label)
		}
		seen[label] = true
		var v strings.Builder
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] != '\\' {
				v.WriteByte(s[i])
				continue
			}
			if i++; i == len(s) {
				break
			}
			switch s[i] {
			case '\\', '"':
				v.WriteByte(s[i])
			case 'n':
				v.WriteByte('\n')
			default:
				return nil, "", fmt.Errorf("label %s: unknown escape \\%c", label, s[i])
			}
		}
		if i >= len(s) {
			return nil, "", fmt.Errorf("label %s: unterminated value", label)
		}
		labels = append(labels, label+"="+strconv.Quote(v.String()))
		s = strings.TrimLeft(s[i+1:], " \t")
		if strings.HasPrefix(s, ",") {
			s = s[1:]
		} else if !strings.HasPrefix(s, "}") {
			return nil, "", fmt.Errorf("want , or } after label %s", label)
		}
	}
}

// PromtoolEnv set to 1 (as .ci/run does) turns a missing promtool into a
// test failure instead of a skip.
const PromtoolEnv = "ORCHESTRATOR_REQUIRE_PROMTOOL"

// Promtool returns the path of promtool (Debian's prometheus package).
// Without one on PATH it skips the test, or fails it when PromtoolEnv is 1.
func Promtool(tb testing.TB) string {
	tb.Helper()
	path, err := exec.LookPath("promtool")
	if err == nil {
		return path
	}
	msg := "promtool is not on PATH: install Debian's prometheus package (apt-get install -y prometheus), which provides it"
	if os.Getenv(PromtoolEnv) == "1" {
		tb.Fatalf("%s (%s=1 requires it)", msg, PromtoolEnv)
	}
	tb.Skipf("%s; %s=1 makes this a failure", msg, PromtoolEnv)
	return ""
}
