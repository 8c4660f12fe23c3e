package main

import (
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// -baseline adds the baseline target to whatever targets were chosen, once.
func TestBaselineFlagAddsTheBaselineTarget(t *testing.T) {
	cfg, err := parseFlags([]string{"-targets", "bare,orchestratord", "-baseline", "/tmp/old-orchestratord"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []string{"bare", "orchestratord", "baseline"}, cfg.targets)
	assert.Equal(t, "/tmp/old-orchestratord", cfg.baseline)

	cfg, err = parseFlags([]string{"-targets", "baseline,bare", "-baseline", "old"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []string{"baseline", "bare"}, cfg.targets)

	cfg, err = parseFlags(nil, io.Discard)
	require.NoError(t, err)
	assert.NotContains(t, cfg.targets, "baseline", "no -baseline, no baseline target")

	_, err = parseFlags([]string{"-targets", "baseline"}, io.Discard)
	require.ErrorContains(t, err, "-baseline")
}
