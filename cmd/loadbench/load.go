package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// payloadSize is the size of every answer body, and of the POST body.
const payloadSize = 1024

// scenario is one kind of load.
type scenario struct {
	name   string
	method string
	path   string // on the backend
	conns  int
	body   []byte
	about  string
}

var scenarioByName = map[string]scenario{
	"fast": {name: "fast", method: http.MethodGet, path: "/fast", conns: 32,
		about: "GET of a 1 KiB body, 32 connections"},
	"slow": {name: "slow", method: http.MethodGet, path: "/slow", conns: 64,
		about: "GET of a 1 KiB body the backend sends after 5 ms, 64 connections"},
	"post": {name: "post", method: http.MethodPost, path: "/echo", conns: 32, body: bytes.Repeat([]byte("y"), payloadSize),
		about: "POST of a 1 KiB body echoed back, 32 connections"},
}

// loadResult is what one burst of closed-loop load measured.
type loadResult struct {
	ok        int             // 200 answers
	errors    int             // transport errors and other statuses
	firstErr  string          // the first of them
	latencies []time.Duration // of the 200 answers
	elapsed   time.Duration   // from the first request sent to the last answer read
}

// newClient is the load generator's client: keep-alive, exactly conns
// connections to the one host, no compression, no proxy.
func newClient(conns int) (*http.Client, *http.Transport) {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	client := &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return client, tr
}

// drive runs sc.conns workers, each sending requests to url back to back
// for d: a closed loop, so the load is what the target can take. A worker
// starts no request after d; the one in flight finishes, and is counted.
func drive(ctx context.Context, client *http.Client, url string, sc scenario, d time.Duration) loadResult {
	var (
		mu  sync.Mutex
		res loadResult
		wg  sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	// Room for about 20k requests per second per target without growing.
	perWorker := int(d.Seconds()*20000)/sc.conns + 16
	for range sc.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, perWorker)
			var errs int
			var firstErr string
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				err := once(ctx, client, sc, url)
				if err != nil {
					if ctx.Err() != nil {
						break
					}
					if errs == 0 {
						firstErr = err.Error()
					}
					errs++
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.ok += len(lat)
			res.errors += errs
			if res.firstErr == "" {
				res.firstErr = firstErr
			}
			res.latencies = append(res.latencies, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

// once sends one request and reads its whole answer.
func once(ctx context.Context, client *http.Client, sc scenario, url string) error {
	var body io.Reader
	if sc.body != nil {
		body = bytes.NewReader(sc.body)
	}
	req, err := http.NewRequestWithContext(ctx, sc.method, url, body)
	if err != nil {
		return err
	}
	if sc.body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: status %d", sc.method, url, resp.StatusCode)
	}
	if n != payloadSize {
		return fmt.Errorf("%s %s: %d bytes, want %d", sc.method, url, n, payloadSize)
	}
	return nil
}

// percentile is the nearest-rank percentile p (0-1) of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// median of xs (the mean of the middle two for an even count); NaN when
// empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
