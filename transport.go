package orchestrator

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// NewTransport returns the tuned transport the gateway uses by default: 5s
// dial timeout, 256 idle connections per upstream host kept 90s, HTTP/2 to
// TLS upstreams, no compression (bodies pass through byte for byte) and no
// environment proxy (a gateway's upstreams are addressed directly).
func NewTransport() *http.Transport {
	dialer := upstreamDialer()
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          0, // no global cap; the per-host cap bounds it
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		DisableCompression:    true,
	}
}

func upstreamDialer() *net.Dialer {
	return &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
}

// checkUpstream refuses an endpoint with a target the guard forbids,
// resolving its host, or with a header rule that would send the admin
// token out: the checks that need this gateway's settings, beyond
// Validate's.
func (o *Orchestrator) checkUpstream(ctx context.Context, ep Endpoint) error {
	if err := o.checkHeaderRulesForToken(ep); err != nil {
		return err
	}
	if len(ep.Targets) == 0 {
		return o.checkTargetURL(ctx, ep.URL, "url")
	}
	for i, t := range ep.Targets {
		if err := o.checkTargetURL(ctx, t.URL, fmt.Sprintf("targets[%d].url", i)); err != nil {
			return err
		}
	}
	return nil
}

// checkTargetURL refuses one upstream URL the guard forbids; field names
// it in the error.
func (o *Orchestrator) checkTargetURL(ctx context.Context, raw, field string) error {
	u, err := parseUpstreamURL(raw)
	if err != nil {
		return nil // Validate reports it
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	p, _ := strconv.Atoi(port)
	if err := o.guard.CheckHost(ctx, u.Hostname(), uint16(p)); err != nil {
		return &ValidationError{Errors: []FieldError{{Field: field, Message: err.Error()}}}
	}
	return nil
}
