package config_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/config"
)

// fourProblems is ../testdata/four-problems.yaml: an unknown field and a
// bad duration, which decoding finds, and a bad url and an empty name,
// which validation finds.
var fourProblems = mustRead("../testdata/four-problems.yaml")

func mustRead(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// fourProblemsWant is what validating fourProblems reports, in file order.
var fourProblemsWant = []orchestrator.FieldError{
	{Field: "server.colour", Line: 6, Column: 3, Message: `unknown field "colour"`},
	{Field: "endpoints[0].timeout", Line: 10, Column: 14, Message: `invalid duration "5 parsecs": want seconds (30) or a Go duration ("250ms", "1m30s")`},
	{Field: "endpoints[1].url", Line: 12, Column: 10, Message: `"ftp://127.0.0.1:9002" must use http or https`},
	{Field: "endpoints[2].name", Line: 13, Column: 11, Message: "is required"},
}

// Issue 13, point 6: a file with problems of both kinds reported only
// those decoding finds, and its bad url and empty name only once they were
// fixed.
func TestConfigReportsEveryProblemAtOnce(t *testing.T) {
	t.Run("decoding and validation problems are reported together, in file order", func(t *testing.T) {
		ce := cfError(t, fourProblems, "four.yaml")
		assert.Equal(t, fourProblemsWant, ce.Errors)
		assert.Zero(t, ce.Omitted)
	})
	t.Run("the same file written as JSON reports the same four", func(t *testing.T) {
		data := `{"server": {"port": 8080, "colour": "blue"},
 "endpoints": [
  {"name": "users", "url": "http://127.0.0.1:9001", "timeout": "5 parsecs"},
  {"name": "orders", "url": "ftp://127.0.0.1:9002"},
  {"name": "", "url": "http://127.0.0.1:9003"}]}`
		ce := cfError(t, data, "four.json")
		got := make([]string, len(ce.Errors))
		for i, fe := range ce.Errors {
			got[i] = fe.Field
			assert.Positive(t, fe.Line, "%s has no line", fe.Field)
		}
		assert.Equal(t, []string{"server.colour", "endpoints[0].timeout", "endpoints[1].url", "endpoints[2].name"}, got)
	})
	t.Run("Load of the file names it on each of the four lines", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "four.yaml")
		require.NoError(t, os.WriteFile(path, []byte(fourProblems), 0o600))
		_, err := config.Load(path)
		require.Error(t, err)
		lines := strings.Split(err.Error(), "\n")
		require.Len(t, lines, 4, "got %q", lines)
		for i, fe := range fourProblemsWant {
			assert.True(t, strings.HasPrefix(lines[i], path+":"+itoa(fe.Line)+":"+itoa(fe.Column)+": "+fe.Field+": "), "line %d: %q", i, lines[i])
		}
	})
	t.Run("a value that does not decode is not also reported missing or invalid", func(t *testing.T) {
		data := "endpoints:\n  - name: [a, b]\n    url: http://127.0.0.1:1\n    methods: GET\n  - nmae: c\n    url: http://127.0.0.1:2\n"
		ce := cfError(t, data, "noise.yaml")
		got := cfLines(ce)
		want := []string{
			"noise.yaml:2:11: endpoints[0].name: must be a string",
			"noise.yaml:4:14: endpoints[0].methods: must be a list",
			`noise.yaml:5:5: endpoints[1].nmae: unknown field "nmae" (did you mean "name"?)`,
		}
		assert.Equal(t, want, got, "got %q; want no 'is required' for what did not decode", got)
	})
	t.Run("endpoints whose identity or url did not decode are counted once each, past the cap too", func(t *testing.T) {
		// Left empty, their names would collide as one route and id, and
		// their urls be reported missing: 150 problems told as 600.
		var b strings.Builder
		b.WriteString("endpoints:\n")
		for range 150 {
			b.WriteString("  - name: [x]\n    url: {a: b}\n")
		}
		ce := cfError(t, b.String(), "many.yaml")
		assert.Len(t, ce.Errors, orchestrator.MaxReportedErrors)
		assert.Equal(t, 300, ce.Total(), "got %d problems; want 2 per endpoint", ce.Total())
		for _, fe := range ce.Errors {
			assert.Contains(t, []string{"must be a string"}, fe.Message, "%s at %d:%d", fe.Field, fe.Line, fe.Column)
		}
	})
	t.Run("a list item that is not a mapping leaves the other items validated at their index", func(t *testing.T) {
		data := "endpoints:\n  - just a string\n  - name: b\n    url: ftp://x\n"
		ce := cfError(t, data, "items.yaml")
		got := cfLines(ce)
		want := []string{
			"items.yaml:2:5: endpoints[0]: must be a mapping of field: value",
			`items.yaml:4:10: endpoints[1].url: "ftp://x" must use http or https`,
		}
		assert.Equal(t, want, got)
	})
}

func itoa(n int) string { return strconv.Itoa(n) }
