//go:build !linux

package main

import "os/exec"

// setDeathSignal does nothing here: the roles of this binary still exit
// when their stdin closes, and orchestratord is killed by the cleanup.
func setDeathSignal(cmd *exec.Cmd) {}
