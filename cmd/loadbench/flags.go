package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// config holds every flag.
type config struct {
	// The benchmark.
	duration      time.Duration
	warmup        time.Duration
	rounds        int
	scenarios     []string
	targets       []string
	timeout       time.Duration
	orchestratord string
	baseline      string
	quiet         bool

	// The kill mode (kill.go).
	kill bool

	// The overload mode (overload.go).
	overload      bool
	overloadConns int
	capacity      int
	service       time.Duration

	// The scale mode (scale.go).
	scale          bool
	scaleEndpoints int
	scaleRequests  int

	// The hidden roles.
	role   string
	target string
	delay  time.Duration
	size   int
	pool   bool
}

var errHelp = errors.New("help")

// defaultTargets run unless -targets says otherwise; bare-pool is
// optional.
var (
	defaultTargets = []string{targetDirect, targetBare, targetGateway, targetGatewayLog}
	knownTargets   = []string{targetDirect, targetBare, targetBarePool, targetGateway, targetGatewayLog, targetGateway3, targetBaseline}
)

const (
	targetDirect     = "direct"
	targetBare       = "bare"
	targetBarePool   = "bare-pool"
	targetGateway    = "orchestratord"
	targetGatewayLog = "orchestratord+accesslog"
	// targetGateway3 is orchestratord with the endpoint's one url as three
	// targets (the same backend under three base paths) and retries on:
	// the cost of balancing and retries against targetGateway.
	targetGateway3 = "orchestratord-3targets"
	// targetBaseline is another orchestratord build (-baseline), run like
	// targetGateway: before and after a change, in one interleaved run.
	targetBaseline = "baseline"
)

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("loadbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&cfg.duration, "duration", 3*time.Second, "measured time per target per round")
	fs.DurationVar(&cfg.warmup, "warmup", 500*time.Millisecond, "unmeasured load before each measured window")
	fs.IntVar(&cfg.rounds, "rounds", 3, "interleaved rounds per scenario (targets rotate each round)")
	scenarios := fs.String("scenarios", "fast,slow", "comma-separated scenarios: fast (1 KiB GET, 32 connections), slow (5 ms backend, 64 connections), post (1 KiB POST echo, 32 connections)")
	targets := fs.String("targets", strings.Join(defaultTargets, ","), "comma-separated targets: "+strings.Join(knownTargets, ", ")+" (bare-pool: the bare proxy with a 32 KiB buffer pool)")
	fs.DurationVar(&cfg.timeout, "timeout", 0, "bound on the whole run (0: builds and start-up plus twice the planned load time)")
	fs.StringVar(&cfg.orchestratord, "orchestratord", "", "an orchestratord binary to measure instead of building ./cmd/orchestratord")
	fs.StringVar(&cfg.baseline, "baseline", "", "another orchestratord binary (say, built from an earlier commit) measured as the extra target \"baseline\", configured like orchestratord: before and after a change in one interleaved run")
	fs.BoolVar(&cfg.quiet, "quiet", false, "leave out the per-round rows")
	fs.BoolVar(&cfg.kill, "kill", false, "run the kill mode instead: one endpoint of three targets with retries, one backend killed under load; reports the requests failed before and after its ejection")
	fs.BoolVar(&cfg.overload, "overload", false, "run the overload mode instead: a backend that serves -capacity requests at once and queues the rest, behind no limit, a fixed max_concurrent and adaptive_concurrency; reports the goodput and the p99 of the admitted requests")
	fs.IntVar(&cfg.overloadConns, "overload-conns", 64, "closed-loop connections of the overload mode")
	fs.IntVar(&cfg.capacity, "capacity", 8, "the overload backend's requests served at once (internal for the backend role, and the overload mode's)")
	fs.DurationVar(&cfg.service, "service", 10*time.Millisecond, "the overload backend's time per request")
	fs.BoolVar(&cfg.scale, "scale", false, "run the scale mode instead: orchestratord with -scale-endpoints endpoints (RSS, reload, registration, health checks)")
	fs.IntVar(&cfg.scaleEndpoints, "scale-endpoints", 10000, "endpoints in the scale mode's config")
	fs.IntVar(&cfg.scaleRequests, "scale-requests", 20000, "requests the scale mode spreads over its endpoints")
	fs.StringVar(&cfg.role, "role", "", "internal: run as a target process (backend or bare)")
	fs.StringVar(&cfg.target, "target", "", "internal: the bare proxy's upstream URL (loopback only)")
	fs.DurationVar(&cfg.delay, "delay", 5*time.Millisecond, "internal: the backend's delay on /slow")
	fs.IntVar(&cfg.size, "size", 1024, "internal: the backend's response size on /fast and /slow")
	fs.BoolVar(&cfg.pool, "pool", false, "internal: give the bare proxy a 32 KiB buffer pool")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./cmd/loadbench [flags]\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, errHelp
		}
		return cfg, err
	}
	fail := func(format string, a ...any) (config, error) {
		err := fmt.Errorf(format, a...)
		fmt.Fprintf(stderr, "loadbench: %v\n", err)
		return cfg, err
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q", fs.Arg(0))
	}
	if cfg.duration <= 0 || cfg.warmup < 0 || cfg.rounds < 1 || cfg.size < 0 || cfg.delay < 0 {
		return fail("-duration and -rounds must be positive; -warmup, -size and -delay not negative")
	}
	if cfg.overloadConns < 1 || cfg.capacity < 1 || cfg.service <= 0 {
		return fail("-overload-conns, -capacity and -service must be positive")
	}
	if cfg.scaleEndpoints < 1 || cfg.scaleRequests < 1 {
		return fail("-scale-endpoints and -scale-requests must be positive")
	}
	for _, s := range splitList(*scenarios) {
		if _, ok := scenarioByName[s]; !ok {
			return fail("unknown scenario %q (want fast, slow or post)", s)
		}
		cfg.scenarios = append(cfg.scenarios, s)
	}
	for _, t := range splitList(*targets) {
		if !slices.Contains(knownTargets, t) {
			return fail("unknown target %q (want %s)", t, strings.Join(knownTargets, ", "))
		}
		if !slices.Contains(cfg.targets, t) {
			cfg.targets = append(cfg.targets, t)
		}
	}
	if cfg.baseline == "" && slices.Contains(cfg.targets, targetBaseline) {
		return fail("target %q needs -baseline, the binary to run as it", targetBaseline)
	}
	if cfg.baseline != "" && !slices.Contains(cfg.targets, targetBaseline) {
		cfg.targets = append(cfg.targets, targetBaseline)
	}
	if cfg.role == "" && (len(cfg.scenarios) == 0 || len(cfg.targets) == 0) {
		return fail("no scenario or no target to run")
	}
	return cfg, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
