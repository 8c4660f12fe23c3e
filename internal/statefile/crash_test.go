package statefile_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/internal/statefile"
)

// TestStateFileSurvivesSIGKILL kills a child process that writes the state
// file in a tight loop, over and over at different moments, and checks that
// the file left behind is always complete and parseable, and that the
// registry restores from it. Atomic replacement (temp file, fsync, rename)
// is what makes this hold; a plain os.WriteFile fails it.
func TestStateFileSurvivesSIGKILL(t *testing.T) {
	if os.Getenv("STATEFILE_CRASH_CHILD") != "" {
		crashChild(os.Getenv("STATEFILE_CRASH_CHILD"))
		return
	}
	path := filepath.Join(t.TempDir(), "state.json")
	for round := 0; round < 12; round++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestStateFileSurvivesSIGKILL$", "-test.count=1")
		cmd.Env = append(os.Environ(), "STATEFILE_CRASH_CHILD="+path)
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		// Let the child get a varying number of writes done, then kill it
		// in the middle of whatever it is doing.
		lines := bufio.NewScanner(stdout)
		want := 5 + round*7
		seen := 0
		for seen < want && lines.Scan() {
			if strings.HasPrefix(lines.Text(), "wrote ") {
				seen++
			}
		}
		require.Equal(t, want, seen, "round %d: the child stopped writing early", round)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		cmd.Wait()
		cancel()

		data, err := os.ReadFile(path)
		require.NoError(t, err, "round %d: the state file is gone", round)
		var f struct {
			Version   int                         `json:"version"`
			Endpoints []orchestrator.Registration `json:"endpoints"`
		}
		require.NoError(t, json.Unmarshal(data, &f), "round %d: torn state file: %q", round, data)
		require.Equal(t, 1, f.Version)
		require.NotEmpty(t, f.Endpoints, "round %d", round)
		reg, err := statefile.Open(path)
		require.NoError(t, err, "round %d: the registry cannot restore from the file", round)
		list, err := reg.List(context.Background())
		require.NoError(t, err)
		require.Len(t, list.Registrations, len(f.Endpoints))
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".state.json.tmp-*"))
	// A kill between create and rename may leave a temp file; it must never
	// be mistaken for the state, and there is at most one per kill.
	require.LessOrEqual(t, len(leftovers), 12)
}

// crashChild writes registrations forever, reporting each write.
func crashChild(path string) {
	reg, err := statefile.Open(path)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	for i := 0; ; i++ {
		ep := orchestrator.Endpoint{
			ID:   fmt.Sprintf("ep-%d", i%40),
			Name: fmt.Sprintf("ep-%d", i%40),
			URL:  fmt.Sprintf("http://127.0.0.1:%d/%s", 1000+i%500, strings.Repeat("p", i%300)),
		}
		if _, err := reg.Put(ctx, orchestrator.Registration{Endpoint: ep.Normalized(), Source: orchestrator.SourceAPI}, orchestrator.IfAny); err != nil {
			fmt.Println("put:", err)
			os.Exit(2)
		}
		fmt.Println("wrote", i)
	}
}
