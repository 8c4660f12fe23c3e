// Command client calls an API through the orchestrator gateway three times,
// with a bearer token, an API key and HTTP basic credentials, and prints
// what the upstream saw of each request. The gateway does not authenticate
// callers: it forwards these headers to the upstream byte for byte.
//
// Start orchestratord with no config file, so that its embedded default
// serves the built-in echo upstream at echo/v1, then:
//
//	go run ./examples/clients/goclient
//	go run ./examples/clients/goclient -gateway https://gw.example.com/orchestrator
//
// The built-in echo shows that a credential reached it ("[present]"), never
// its value; an upstream of your own sees the values.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"time"
)

// Example credentials: replace them with your upstream's. The gateway
// neither checks nor needs them.
const (
	bearerToken   = "example-token-2f9c"
	apiKey        = "example-key-71d0"
	basicUser     = "alice"
	basicPassword = "open sesame"
)

func main() {
	gateway := flag.String("gateway", "http://localhost:8000/orchestrator", "the gateway's base URL, prefix included")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	if err := run(ctx, *gateway, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

// echoed is what the echo upstream answers: what reached it.
type echoed struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Headers map[string][]string `json:"headers"`
}

// run makes the three calls to the echo endpoint under baseURL and writes
// what the upstream saw of each to out.
func run(ctx context.Context, baseURL string, out io.Writer) error {
	target, err := url.JoinPath(baseURL, "echo", "v1", "hello")
	if err != nil {
		return fmt.Errorf("gateway URL %q: %w", baseURL, err)
	}
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: http.DefaultTransport.(*http.Transport).Clone(),
	}
	defer client.CloseIdleConnections()

	calls := []struct {
		name string
		auth func(*http.Request)
	}{
		{"bearer token", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+bearerToken) }},
		{"API key", func(r *http.Request) { r.Header.Set("X-API-Key", apiKey) }},
		{"basic credentials", func(r *http.Request) { r.SetBasicAuth(basicUser, basicPassword) }},
	}
	for _, c := range calls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return err
		}
		c.auth(req)
		saw, err := call(client, req)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		fmt.Fprintf(out, "== %s: the upstream saw %s %s\n", c.name, saw.Method, saw.Path)
		for _, k := range slices.Sorted(maps.Keys(saw.Headers)) {
			for _, v := range saw.Headers[k] {
				fmt.Fprintf(out, "   %s: %s\n", k, v)
			}
		}
	}
	return nil
}

// call sends req and decodes the echo's answer.
func call(client *http.Client, req *http.Request) (*echoed, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %s: %s", req.Method, req.URL, resp.Status, bytes.TrimSpace(body))
	}
	var saw echoed
	if err := json.Unmarshal(body, &saw); err != nil {
		return nil, fmt.Errorf("the answer is not the echo's JSON: %w", err)
	}
	return &saw, nil
}
