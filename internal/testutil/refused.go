package testutil

import (
	"net"
	"testing"
)

// RefusedURL returns an http URL on a loopback port nothing listens on: a
// dial to it is refused at once, with no traffic leaving the machine. The
// port was free a moment ago; another test taking it in between would
// answer instead, which loopback ports handed out by the kernel make
// rare.
func RefusedURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on a loopback port: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("close the loopback listener: %v", err)
	}
	return "http://" + addr
}
