package orchestrator

import (
	"errors"
	"net/http"
)

// targetTransport is replaced by the per-target TLS work.
func (o *Orchestrator) targetTransport(c *TargetTLS) (http.RoundTripper, error) {
	return nil, errors.New("tls: not built yet")
}
