package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if ips, ok := f[host]; ok {
		return ips, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func TestCheckRefusesMetadataLinkLocalAndOwnListeners(t *testing.T) {
	g, err := New(nil)
	require.NoError(t, err)
	g.SetListeners("127.0.0.1:8000", "[::]:9000")
	tests := []struct {
		addr    string
		refused bool
	}{
		{"169.254.169.254:80", true},
		{"169.254.0.1:443", true},
		{"[fe80::1]:80", true},
		{"[fd00:ec2::254]:80", true},
		{"[::ffff:169.254.169.254]:80", true},
		{"127.0.0.1:8000", true},
		{"127.0.0.1:9000", true},  // the unspecified listener covers loopback
		{"[::1]:9000", true},      // and IPv6 loopback
		{"127.0.0.1:8001", false}, // another local service
		{"10.1.2.3:8000", false},
		{"[2001:db8::1]:443", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			ap := netip.MustParseAddrPort(tt.addr)
			err := g.Check(ap.Addr(), ap.Port())
			assert.Equal(t, tt.refused, err != nil, "Check(%s): got %v; want refused=%v", tt.addr, err, tt.refused)
			cerr := g.Control("tcp", tt.addr, nil)
			var blocked *BlockedError
			assert.Equal(t, tt.refused, errors.As(cerr, &blocked), "Control(%s): got %v", tt.addr, cerr)
		})
	}
}

func TestAllowedEntriesOverrideTheRules(t *testing.T) {
	g, err := New([]string{"169.254.170.0/24", "fd00:ec2::254", "metadata.internal"})
	require.NoError(t, err)
	assert.NoError(t, g.Check(netip.MustParseAddr("169.254.170.2"), 80))
	assert.Error(t, g.Check(netip.MustParseAddr("169.254.169.254"), 80))
	assert.NoError(t, g.Check(netip.MustParseAddr("fd00:ec2::254"), 80))
	assert.True(t, g.AllowedHost("METADATA.internal"))
	assert.NoError(t, g.CheckHost(context.Background(), "metadata.internal", 80))

	_, err = New([]string{"10.0.0.0/33"})
	assert.Error(t, err)
}

func TestCheckHostResolvesNames(t *testing.T) {
	g, err := New(nil)
	require.NoError(t, err)
	g.Resolver = fakeResolver{
		"rebind.test": {netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("169.254.169.254")},
		"fine.test":   {netip.MustParseAddr("93.184.216.34")},
	}
	err = g.CheckHost(context.Background(), "rebind.test", 80)
	require.Error(t, err, "a name with one forbidden address must be refused")
	assert.Contains(t, err.Error(), "rebind.test resolves to 169.254.169.254")
	assert.NoError(t, g.CheckHost(context.Background(), "fine.test", 80))
	assert.NoError(t, g.CheckHost(context.Background(), "unknown.test", 80), "an unresolvable name is left to the dial-time check")
	assert.Error(t, g.CheckHost(context.Background(), "169.254.169.254", 80))
	assert.Error(t, g.CheckHost(context.Background(), "[fe80::1]", 80))
}
