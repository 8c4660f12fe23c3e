// Command orchestratord is the reference server: the orchestrator gateway
// with its admin API, YAML config with hot reload, logging, TLS and graceful
// shutdown.
//
//	orchestratord [--config PATH] [--host H] [--port P] [--log-level L] [--watch=true]
//	orchestratord validate [--diff ADMIN_URL] PATH
//	orchestratord version
//
// Settings come from flags, then the environment (HOST, PORT, CONFIG_PATH,
// LOG_LEVEL, ORCHESTRATOR_ADMIN_TOKEN), then the config file, then the
// defaults. With no config at all it serves an embedded default in front of
// a built-in echo upstream.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/orchestrator-go/orchestrator/config"
	"github.com/orchestrator-go/orchestrator/internal/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version":
			fmt.Fprintf(stdout, "orchestratord %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return 0
		case "validate":
			return validate(args[1:], stdout, stderr)
		}
	}

	fs := flag.NewFlagSet("orchestratord", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (YAML); env CONFIG_PATH; default: the embedded default")
	host := fs.String("host", "", "listen host; env HOST; default 0.0.0.0")
	port := fs.String("port", "", "listen port; env PORT; default 8000")
	logLevel := fs.String("log-level", "", "debug, info, warn or error; env LOG_LEVEL; default info")
	watch := fs.Bool("watch", true, "reload the config file when it changes")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage:\n  orchestratord [flags]\n  orchestratord validate [--diff ADMIN_URL] PATH\n  orchestratord version\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "orchestratord: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	opts := server.Options{
		ConfigPath: firstSet(*configPath, os.Getenv("CONFIG_PATH")),
		Host:       firstSet(*host, os.Getenv("HOST")),
		Port:       firstSet(*port, os.Getenv("PORT")),
		LogLevel:   firstSet(*logLevel, os.Getenv("LOG_LEVEL")),
		AdminToken: os.Getenv("ORCHESTRATOR_ADMIN_TOKEN"),
		Watch:      *watch,
		Version:    version,
		Stdout:     stdout,
		Stderr:     stderr,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts a graceful shutdown; once it has, the
	// signals go back to their default, so a second one ends the process
	// at once (as Caddy and Traefik do) instead of waiting out the drain.
	go func() {
		<-ctx.Done()
		stop()
	}()
	if err := server.Run(ctx, opts); err != nil {
		fmt.Fprintf(stderr, "orchestratord: %v\n", err)
		return 1
	}
	return 0
}

// validate checks a config file: exit 0, or 1 with one
// "file:line:column: message" line per error. With --diff URL it then asks
// the running gateway at URL what applying the file would change and
// prints the plan; a gateway it cannot ask exits 2.
func validate(args []string, stdout, stderr io.Writer) int {
	const usage = "usage: orchestratord validate [--diff ADMIN_URL] PATH"
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	diff := fs.String("diff", "", "")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	path := fs.Arg(0)
	if _, err := config.Load(path); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	if *diff == "" {
		return 0
	}
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	preview, err := server.FetchPreview(context.Background(), http.DefaultClient, *diff, os.Getenv("ORCHESTRATOR_ADMIN_TOKEN"), path, data)
	var invalid *server.RemoteInvalidError
	switch {
	case errors.As(err, &invalid):
		fmt.Fprintln(stderr, invalid)
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "orchestratord validate --diff: %v\n", err)
		return 2
	}
	server.WritePlan(stdout, preview)
	return 0
}

func firstSet(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
