package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// WriteFile writes content to path (created or truncated, mode 0600) and
// fails the test if it cannot.
func WriteFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
}

// ReplaceFile replaces path's content the way most editors save a file: a
// new file written beside it and renamed over it, so that a watcher sees
// the old inode go away and the new content appear at once, never a
// truncated file.
func ReplaceFile(t testing.TB, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	WriteFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatalf("renaming %s over %s: %v", tmp, path, err)
	}
}

// ConfigFile writes content to config.yaml in a new temporary directory of
// the test, removed when it ends, and returns the file's path.
func ConfigFile(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	WriteFile(t, path, content)
	return path
}
