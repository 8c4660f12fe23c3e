package admin_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A JSON body is checked as the config file is: every unknown field and
// value of the wrong type at once, each at its line and column, before
// anything is decoded or changed.
func TestJSONBodyReportsEveryProblemWithItsPosition(t *testing.T) {
	f := newFixture(t)
	body := "{\n  \"name\": \"svc\",\n  \"url\": \"http://127.0.0.1:1\",\n  \"nmae\": \"typo\",\n  \"timeout\": \"soon\",\n  \"methods\": \"GET\"\n}"
	p := requireProblem(t, call(f.h, http.MethodPost, "/registry/endpoints", body), http.StatusBadRequest, "invalid-json")
	var got []string
	for _, e := range p.Errors {
		got = append(got, fmt.Sprintf("%d:%d %s: %s", e.Line, e.Column, e.Field, e.Message))
	}
	require.Len(t, got, 3, "every problem, not the first: %q", got)
	assert.Contains(t, got[0], `4:3 nmae: unknown field "nmae" (did you mean "name"?)`)
	assert.Contains(t, got[1], "5:14 timeout: ")
	assert.Contains(t, got[2], "6:14 methods: must be a list")
	assert.Contains(t, p.Detail, "3 problems")
	_, err := f.o.Endpoint("svc")
	assert.Error(t, err, "nothing was registered")
}
