package admin

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/orchestrator-go/orchestrator"
)

// FuzzDecodeEndpoint feeds arbitrary bodies to the admin API's strict JSON
// decoder: it must never panic, and every rejection must be a 400 problem
// (or the 413 of an oversized body), never an internal error.
func FuzzDecodeEndpoint(f *testing.F) {
	for _, seed := range []string{
		`{"name":"users","version":"v1","url":"http://127.0.0.1:9001/api"}`,
		`{"name":"a","url":"http://h","timeout":"250ms","circuit_breaker":{"failure_threshold":3}}`,
		`{"name":"a","url":"http://h","timeout":30}`,
		`{"name":"a","bogus":1}`,
		`{"name":1}`,
		`[]`, `null`, ``, `{"name":"a"} {"name":"b"}`, `{"timeout":"soon"}`, `{"methods":"GET"}`,
		`{"fallback":{"headers":{"X":"y"},"status":"503"}}`,
		`{"name":["a"],"url":"ftp://x","colour":1,"max_concurrent":"many","methods":["BAD METHOD"]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/registry/endpoints", bytes.NewReader(body))
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 1<<20)
		var ep orchestrator.Endpoint
		err := decodeJSON(r, &ep)
		if err == nil {
			return
		}
		var api *apiError
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &api):
			if api.status != http.StatusBadRequest || api.detail == "" {
				t.Fatalf("rejection %+v: want a 400 with a detail", api)
			}
		case errors.As(err, &tooLarge):
		default:
			t.Fatalf("decodeJSON(%q) = %T %v: want an apiError", body, err, err)
		}
	})
}
