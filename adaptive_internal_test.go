package orchestrator

import (
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

type fakePermit struct{ recorded, dropped int }

func (p *fakePermit) Record() { p.recorded++ }
func (p *fakePermit) Drop()   { p.dropped++ }

// Upgrades and event streams are not latency samples, nor is a request
// that got no response.
func TestReleasePermitSamplesOnlyOrdinaryAnswers(t *testing.T) {
	answer := func(status int, contentType string) *http.Response {
		h := http.Header{}
		if contentType != "" {
			h.Set("Content-Type", contentType)
		}
		return &http.Response{StatusCode: status, Header: h}
	}
	cases := []struct {
		name     string
		resp     *http.Response
		err      error
		recorded bool
	}{
		{"a 200", answer(200, "application/json"), nil, true},
		{"a 503 is a sample too", answer(503, ""), nil, true},
		{"an upgrade", answer(http.StatusSwitchingProtocols, ""), nil, false},
		{"an event stream", answer(200, "text/event-stream; charset=utf-8"), nil, false},
		{"no response", nil, errors.New("connection refused"), false},
	}
	for _, c := range cases {
		p := &fakePermit{}
		releasePermit(p, c.resp, c.err)
		if c.recorded {
			assert.Equal(t, fakePermit{recorded: 1}, *p, c.name)
		} else {
			assert.Equal(t, fakePermit{dropped: 1}, *p, c.name)
		}
	}
	releasePermit(nil, nil, errors.New("no permit: nothing to do"))
}
