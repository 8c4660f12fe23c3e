// Command loadbench is the gateway's load benchmark: orchestratord against
// a bare httputil.ReverseProxy on the same tuned transport, both in front of
// the same small backend, driven by the same closed-loop load.
//
//	go run ./cmd/loadbench                       # the default run (about 90 s)
//	go run ./cmd/loadbench -rounds 5 -duration 5s
//	go run ./cmd/loadbench -scenarios fast -targets direct,bare,orchestratord
//	go run ./cmd/loadbench -scale                # orchestratord with 10,000 endpoints (scale.go)
//
// It builds orchestratord and itself into a temporary directory, then starts
// each target as its own process on a loopback port, so that each proxy's
// CPU time can be read from /proc/<pid>/stat:
//
//   - backend: this binary with -role=backend: GET /fast answers 1 KiB, GET
//     /slow the same after 5 ms, POST /echo echoes the body;
//   - direct: the backend itself, the baseline for added latency;
//   - bare: this binary with -role=bare: httputil.ReverseProxy with Rewrite
//     SetURL + SetXForwarded on orchestrator.NewTransport(), the transport
//     the gateway uses;
//   - orchestratord: one endpoint to the backend, access log off, health
//     checks off, no admin token, config watch off;
//   - orchestratord+accesslog: the same with the JSON access log on (to a
//     file in the temporary directory).
//
// Every target gets the same load, in-process: N keep-alive connections,
// each sending requests back to back (closed loop), a warm-up, then a
// measured window. The targets take turns in rotated order round after round
// (A B C D, B C D A, ...). Per target it prints requests/s, p50, p99, the
// proxy's CPU time per request (utime+stime from /proc/<pid>/stat over the
// measured window, divided by the requests served in it) and the backend's,
// and the median over rounds of each per-round ratio to the bare proxy.
//
// Linux only (it reads /proc). Everything listens on 127.0.0.1; every
// process it starts is killed when it exits, Ctrl-C included, and by the
// kernel (Pdeathsig) should it be killed itself. The results of a run are
// in BENCHMARKS.md.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses the flags and runs either a hidden role (a target process) or
// the benchmark itself. It returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if err == errHelp {
			return 0
		}
		return 2
	}
	switch cfg.role {
	case "backend":
		err = serveBackend(ctx, cfg, stdout)
	case "bare":
		err = serveBare(ctx, cfg, stdout)
	case "":
		switch {
		case cfg.kill:
			_, err = killRun(ctx, cfg, stdout, stderr)
		case cfg.overload:
			_, err = overloadRun(ctx, cfg, stdout, stderr)
		case cfg.scale:
			_, err = scale(ctx, cfg, stdout, stderr)
		default:
			_, err = bench(ctx, cfg, stdout, stderr)
		}
	default:
		err = fmt.Errorf("unknown role %q", cfg.role)
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadbench: %v\n", err)
		return 1
	}
	return 0
}
