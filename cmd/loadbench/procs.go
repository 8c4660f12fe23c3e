package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// binaries are the programs the benchmark starts.
type binaries struct {
	loadbench     string // this tool, for the backend and bare roles
	orchestratord string
	source        string // what orchestratord was built from
}

// build compiles this tool and orchestratord into dir with the go command
// (no -race, whatever the caller was built with). A given orchestratord
// binary is used as is.
func build(ctx context.Context, dir, orchestratordBin string) (binaries, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if orchestratordBin != "" {
		abs, err := filepath.Abs(orchestratordBin)
		if err != nil {
			return binaries{}, err
		}
		if _, err := os.Stat(abs); err != nil {
			return binaries{}, fmt.Errorf("-orchestratord: %w", err)
		}
		orchestratordBin = abs
	}
	gomod, err := goOutput(ctx, "", "env", "GOMOD")
	if err != nil {
		return binaries{}, err
	}
	if gomod == "" || gomod == os.DevNull {
		return binaries{}, errors.New("run loadbench from inside the orchestrator module (go run ./cmd/loadbench)")
	}
	root := filepath.Dir(gomod)
	pkgs := []string{"./cmd/loadbench"}
	if orchestratordBin == "" {
		pkgs = append(pkgs, "./cmd/orchestratord")
	}
	args := append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)
	if _, err := goOutput(ctx, root, args...); err != nil {
		return binaries{}, err
	}
	bins := binaries{loadbench: filepath.Join(dir, "loadbench"), orchestratord: orchestratordBin}
	if bins.orchestratord == "" {
		bins.orchestratord = filepath.Join(dir, "orchestratord")
		bins.source = gitSource(ctx, root)
	} else {
		bins.source = orchestratordBin
	}
	return bins, nil
}

// gitSource names the commit the module's tree is at, and whether the
// tree has changes on top of it; "unknown" without git.
func gitSource(ctx context.Context, root string) string {
	head, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown (no git)"
	}
	src := "commit " + strings.TrimSpace(string(head))
	status, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output()
	if err == nil && len(bytes.TrimSpace(status)) > 0 {
		src += " with uncommitted changes"
	}
	return src
}

func goOutput(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return strings.TrimSpace(out.String()), nil
}

// proc is one started target process.
type proc struct {
	name    string
	cmd     *exec.Cmd
	addr    string // host:port it listens on
	logPath string // its stderr
	stdin   *os.File
	done    chan struct{}
	waitErr error
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// procs starts processes and stops every one of them.
type procs struct {
	mu   sync.Mutex
	list []*proc
}

var listeningRE = regexp.MustCompile(`listening on https?://(\S+)`)

// start runs bin with args, its stderr to logPath, and waits (at most 20 s)
// for its "listening on" line on stdout. The process is killed when ctx
// ends, and by stopAll.
func (ps *procs) start(ctx context.Context, name, bin, logPath string, env []string, args ...string) (*proc, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer stdinR.Close()
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		stdinW.Close()
		return nil, err
	}
	defer stdoutW.Close()

	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdinR, stdoutW, logFile
	cmd.WaitDelay = 2 * time.Second
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		stdinW.Close()
		stdoutR.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, stdin: stdinW, done: make(chan struct{})}
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()

	// The banner, then drain stdout until the process exits.
	addrc := make(chan string, 1)
	go func() {
		defer stdoutR.Close()
		sc := bufio.NewScanner(stdoutR)
		found := false
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil && !found {
				found = true
				addrc <- m[1]
			}
		}
		io.Copy(io.Discard, stdoutR)
	}()
	timer := time.NewTimer(20 * time.Second)
	defer timer.Stop()
	select {
	case addr := <-addrc:
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("%s: listening on %q: %v", name, addr, err)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("%s listens on %s, not on loopback", name, addr)
		}
		p.addr = net.JoinHostPort("127.0.0.1", port)
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before listening (%v)%s", name, p.waitErr, logTail(logPath))
	case <-timer.C:
		return nil, fmt.Errorf("%s did not say it was listening within 20s%s", name, logTail(logPath))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// stopAll kills every process started and waits (bounded) for each.
func (ps *procs) stopAll() {
	ps.mu.Lock()
	list := ps.list
	ps.list = nil
	ps.mu.Unlock()
	for _, p := range list {
		p.stdin.Close()
		p.cmd.Process.Kill()
	}
	for _, p := range list {
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
	}
}

// alive reports an error when p has exited.
func (p *proc) alive() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v)%s", p.name, p.waitErr, logTail(p.logPath))
	default:
		return nil
	}
}

// logTail is the end of a log file, for error messages.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "; its log ends with:\n" + string(b)
}

// cpuTicks is a process's utime+stime from /proc/<pid>/stat, in clock
// ticks (see clockTicks).
func cpuTicks(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses, so
	// count fields from the last ')'. utime and stime are fields 14 and 15
	// of the whole line, 12 and 13 after comm (state being the 1st).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return utime + stime, nil
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat times:
// `getconf CLK_TCK`, or 100 (its value on every mainstream Linux) when
// getconf is missing. The second result says which.
func clockTicks(ctx context.Context) (float64, string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && n > 0 {
			return float64(n), "getconf CLK_TCK"
		}
	}
	return 100, "assumed; getconf CLK_TCK failed"
}

// childEnv is the environment for the targets: the caller's, minus what
// would change orchestratord's settings behind the config file's back.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "ORCHESTRATOR_ADMIN_TOKEN", "HOST", "PORT", "CONFIG_PATH", "LOG_LEVEL":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// buildInTemp builds the binaries into a new temporary directory named
// with prefix, which the caller removes; on an error nothing is left.
func buildInTemp(ctx context.Context, prefix string, cfg config, stderr io.Writer) (string, binaries, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", binaries{}, err
	}
	fmt.Fprintf(stderr, "loadbench: building into %s\n", dir)
	bins, err := build(ctx, dir, cfg.orchestratord)
	if err != nil {
		os.RemoveAll(dir)
		return "", binaries{}, err
	}
	return dir, bins, nil
}

// startGateway writes conf to dir/NAME.yaml and starts orchestratord on it,
// on a free loopback port, the config not watched: what the kill and
// overload modes run.
func (ps *procs) startGateway(ctx context.Context, bins binaries, dir, name string, conf []byte, env []string) (*proc, error) {
	confPath := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		return nil, err
	}
	return ps.start(ctx, "orchestratord", bins.orchestratord, filepath.Join(dir, "orchestratord.log"), env,
		"--config", confPath, "--host", "127.0.0.1", "--port", "0", "--watch=false")
}
