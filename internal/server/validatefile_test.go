package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator/internal/server"
	"github.com/orchestrator-go/orchestrator/internal/testutil"
)

// Issue 13, point 1: POST /config/validate with no body checks the file
// on disk as a reload would read it, and applies nothing.
func TestValidateTheFileOnDisk(t *testing.T) {
	a := backend(t, "a")
	path := testutil.ConfigFile(t, "endpoints:\n"+endpointYAML("svc", a.URL))
	s := startServer(t, server.Options{ConfigPath: path, Watch: false})

	t.Run("a valid file answers 200 with its path and endpoints", func(t *testing.T) {
		code, body := s.do(http.MethodPost, "/config/validate", "")
		require.Equal(t, http.StatusOK, code, body)
		// The file is what the server runs: its plan changes nothing.
		assert.JSONEq(t, fmt.Sprintf(`{"valid":true,"endpoints":1,"path":%q,
			"plan":{"added":[],"removed":[],"changed":[],"unchanged":1,"defaults":[]},"restart_required":[]}`, path), body)
	})
	t.Run("an edited file with four problems answers 400 listing all four, and nothing changes", func(t *testing.T) {
		four, err := os.ReadFile("../../testdata/four-problems.yaml")
		require.NoError(t, err)
		testutil.ReplaceFile(t, path, string(four))
		code, body := s.do(http.MethodPost, "/config/validate", "")
		require.Equal(t, http.StatusBadRequest, code, body)
		var p testutil.Problem
		require.NoError(t, json.Unmarshal([]byte(body), &p), body)
		var got []string
		for _, fe := range p.Errors {
			got = append(got, fmt.Sprintf("%d:%d %s", fe.Line, fe.Column, fe.Field))
		}
		assert.Equal(t, []string{"6:3 server.colour", "10:14 endpoints[0].timeout", "12:10 endpoints[1].url", "13:11 endpoints[2].name"}, got)
		assert.Contains(t, p.Detail, path)

		st := s.status()
		assert.Zero(t, st.ReloadCount, "validating reloads nothing")
		assert.Nil(t, st.LastError, "validating records no reload error")
		code, body = s.mustGet("/orchestrator/svc/x")
		assert.Equal(t, "200 a /x", fmt.Sprint(code, " ", body), "the applied config keeps serving")
	})
}

func TestValidateWithoutAFileAnswers409(t *testing.T) {
	s := startServer(t, server.Options{}) // the embedded default config
	code, body := s.do(http.MethodPost, "/config/validate", "")
	assert.Equal(t, http.StatusConflict, code, body)
	assert.Contains(t, body, "no-config-file")
}
