package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/orchestrator-go/orchestrator/internal/netguard"
)

// TargetCheck is the result of a connectivity test of one target
// (CheckTargets): whether an HTTP server answered there, and how.
type TargetCheck struct {
	// TargetID is the target's id (for the url shorthand, host:port).
	TargetID string `json:"target_id"`
	// URL is the address the test sent its request to: the target's host
	// with the endpoint's health_check_path, else the target's base path.
	URL string `json:"url"`
	// Method is the method of the answer reported: HEAD, or GET when the
	// upstream refused HEAD (405 or 501).
	Method string `json:"method"`
	// Reachable is true when an HTTP response came back, whatever its
	// status.
	Reachable bool `json:"reachable"`
	// Status is the response's status code; 0 when none came.
	Status int `json:"status"`
	// Latency is how long the request took to its response headers (or to
	// its error), both requests when HEAD was refused and GET followed.
	Latency Duration `json:"latency"`
	// ErrorKind says why no response came: refused, reset, timeout, tls,
	// dns, guard (the upstream guard refused the address before dialling)
	// or other; empty when reachable.
	ErrorKind string `json:"error_kind,omitempty"`
	// Error is the error's text; empty when reachable.
	Error string `json:"error,omitempty"`
}

// connectivityTimeout bounds one target's test when the endpoint's health
// check timeout is longer: an operator waits for the answer.
const connectivityTimeout = 5 * time.Second

// CheckTargets tests the connectivity of each of the endpoint's targets,
// all at once: a HEAD (a GET when the upstream answers HEAD with 405 or
// 501, never another method) to the endpoint's health_check_path, else to
// the target's base path, through the transport and upstream guard real
// traffic uses (a target's own TLS settings included), with no
// credentials and no redirects followed. Each test is bounded by the
// endpoint's health check timeout, at most 5s. It changes no state: no
// health, breaker or ejection is updated. Errors: ErrNotFound, ErrClosed.
func (o *Orchestrator) CheckTargets(ctx context.Context, id string) ([]TargetCheck, error) {
	if err := o.errIfClosed(); err != nil {
		return nil, err
	}
	rt := o.table.Load().route(id)
	if rt == nil {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	timeout := min(rt.health.Timeout.Std(), connectivityTimeout)
	if timeout <= 0 {
		timeout = connectivityTimeout
	}
	checks := make([]TargetCheck, len(rt.targets))
	var wg sync.WaitGroup
	for i, u := range rt.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			checks[i] = o.testTarget(tctx, rt, u)
		}()
	}
	wg.Wait()
	return checks, nil
}

// testTarget runs one target's test.
func (o *Orchestrator) testTarget(ctx context.Context, rt *route, u *upstream) TargetCheck {
	target := &url.URL{Scheme: u.scheme(), Host: u.host, RawPath: u.basePath}
	target.Path, _ = url.PathUnescape(u.basePath)
	if rt.ep.HealthCheckPath != "" {
		target.Path, target.RawPath = rt.ep.HealthCheckPath, ""
	}
	if target.Path == "" {
		target.Path = "/"
	}
	check := TargetCheck{TargetID: u.id, URL: target.String(), Method: http.MethodHead}
	transport := u.transport()
	if transport == nil {
		transport = o.transport
	}
	client := &http.Client{Transport: transport, CheckRedirect: noRedirects}
	start := time.Now()
	status, err := sendCheck(ctx, client, http.MethodHead, check.URL)
	if err == nil && (status == http.StatusMethodNotAllowed || status == http.StatusNotImplemented) {
		check.Method = http.MethodGet
		status, err = sendCheck(ctx, client, http.MethodGet, check.URL)
	}
	check.Latency = Duration(time.Since(start))
	if err != nil {
		check.ErrorKind = checkErrorKind(ctx, err)
		check.Error = err.Error()
		return check
	}
	check.Reachable, check.Status = true, status
	return check
}

// sendCheck sends one bodiless request and reads at most a little of the
// answer, so that the connection can go back to the pool.
func sendCheck(ctx context.Context, client *http.Client, method, target string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", "orchestrator-connectivity-test")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// checkErrorKind names the reason a test got no response, with the kinds
// of orchestrator_upstream_errors_total and "guard" for an address the
// upstream guard refused.
func checkErrorKind(ctx context.Context, err error) string {
	var blocked *netguard.BlockedError
	if errors.As(err, &blocked) {
		return "guard"
	}
	return upstreamErrorKinds[classifyUpstreamError(err, ctx.Err() != nil)]
}
