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

// TestCheckSeesThroughZonesAndEmbeddedIPv4 covers the forms a refused
// address can hide in: an IPv6 zone (netip.Prefix.Contains is false for
// any zoned address, so fe80::1%eth0 used to pass), Alibaba Cloud's
// metadata address outside link-local, and IPv6 addresses that carry an
// IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4). Loopback
// embedded the same way stays allowed, as 127.0.0.1 itself is, except on
// the gateway's own listening port. Nothing here dials.
func TestCheckSeesThroughZonesAndEmbeddedIPv4(t *testing.T) {
	g, err := New(nil)
	require.NoError(t, err)
	g.SetListeners("127.0.0.1:8000", "[::]:9000")
	tests := []struct {
		addr    string
		refused bool
		inErr   []string // substrings the refusal must name
	}{
		{"[fe80::1%eth0]:80", true, []string{"fe80::1%eth0", "registry.allowed_upstreams"}},
		{"[fe80::1%4]:80", true, []string{"fe80::1%4", "registry.allowed_upstreams"}},
		{"[fe80::1%25eth0]:80", true, []string{"fe80::1%25eth0"}}, // a zone left percent-encoded
		{"[febf:ffff::1%eth1]:80", true, nil},                     // the top of fe80::/10
		{"[fd00:ec2::254%eth0]:80", true, []string{"fd00:ec2::254%eth0"}},
		{"[::ffff:169.254.169.254%eth0]:80", true, nil},
		{"[::169.254.169.254]:80", true, []string{"::a9fe:a9fe", "169.254.169.254", "registry.allowed_upstreams"}},
		{"[::ffff:169.254.169.254]:80", true, []string{"169.254.169.254", "registry.allowed_upstreams"}},
		{"[64:ff9b::a9fe:a9fe]:80", true, []string{"64:ff9b::a9fe:a9fe", "169.254.169.254", "registry.allowed_upstreams"}},
		{"[64:ff9b::a9fe:a9fe%eth0]:80", true, []string{"64:ff9b::a9fe:a9fe%eth0", "169.254.169.254"}},
		{"[2002:a9fe:a9fe::1]:80", true, []string{"2002:a9fe:a9fe::1", "169.254.169.254", "registry.allowed_upstreams"}},
		{"[2002:a9fe:1::]:80", true, []string{"169.254.0.1"}},
		{"100.100.100.200:80", true, []string{"100.100.100.200", "registry.allowed_upstreams"}},
		{"[::ffff:100.100.100.200]:80", true, []string{"100.100.100.200"}},
		{"[::100.100.100.200]:80", true, []string{"100.100.100.200"}},
		{"[64:ff9b::6464:64c8]:80", true, []string{"100.100.100.200"}},
		{"[2002:6464:64c8::]:80", true, []string{"100.100.100.200"}},
		// Loopback, however written, is not link-local or metadata...
		{"127.0.0.1:80", false, nil},
		{"[::1]:80", false, nil},
		{"[::1%lo]:80", false, nil},
		{"[::127.0.0.1]:80", false, nil},
		{"[2002:7f00:1::]:80", false, nil},
		{"[64:ff9b::7f00:1]:80", false, nil},
		// ...but it must not reach the gateway's own listener.
		{"[::1%lo]:9000", true, []string{"own listener"}},
		{"[2002:7f00:1::]:8000", true, []string{"127.0.0.1:8000", "own listener"}},
		{"[64:ff9b::7f00:1]:9000", true, []string{"own listener"}},
		{"[::127.0.0.1]:8000", true, []string{"own listener"}},
		// An unspecified destination is this host: connect(2) sends it to loopback.
		{"0.0.0.0:8000", true, []string{"own listener"}},
		{"[::]:8000", true, []string{"own listener"}},
		{"0.0.0.0:8001", false, nil},
		// Neighbours of the refused addresses, and ordinary public ones.
		{"100.100.100.199:80", false, nil},
		{"100.100.100.201:80", false, nil},
		{"100.64.0.1:80", false, nil},
		{"[fec0::1%eth0]:80", false, nil},
		{"[fd00:ec2::253%eth0]:80", false, nil},
		{"[64:ff9b::808:808]:80", false, nil},
		{"[2002:c000:201::1]:80", false, nil},
		{"[2001:db8::a9fe:a9fe]:80", false, nil}, // 169.254.169.254's bits, but in no embedding prefix
		{"[::2]:80", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			ap := netip.MustParseAddrPort(tt.addr)
			err := g.Check(ap.Addr(), ap.Port())
			require.Equal(t, tt.refused, err != nil, "Check(%s): got %v; want refused=%v", tt.addr, err, tt.refused)
			for _, s := range tt.inErr {
				assert.Contains(t, err.Error(), s, "Check(%s): the reason must name it", tt.addr)
			}
			cerr := g.Control("tcp", tt.addr, nil)
			var blocked *BlockedError
			assert.Equal(t, tt.refused, errors.As(cerr, &blocked), "Control(%s): got %v", tt.addr, cerr)
		})
	}
}

// TestListenersAndLocalAddressesIgnoreZones: the own-listener rule compares
// addresses without their zones, both the listener's and the dialled one.
func TestListenersAndLocalAddressesIgnoreZones(t *testing.T) {
	g, err := New(nil)
	require.NoError(t, err)
	local := netip.MustParseAddr("2001:db8::5")
	g.localIPs = append(g.localIPs, local) // as if an interface had it
	g.SetListeners("[::]:9000", "[2001:db8::7%eth0]:8000")

	for _, addr := range []string{"[2001:db8::5%eth0]:9000", "[2001:db8::5]:9000", "[2001:db8::7]:8000", "[2001:db8::7%eth1]:8000"} {
		ap := netip.MustParseAddrPort(addr)
		err := g.Check(ap.Addr(), ap.Port())
		if assert.Error(t, err, "Check(%s)", addr) {
			assert.Contains(t, err.Error(), "own listener")
		}
	}
	assert.NoError(t, g.Check(netip.MustParseAddr("2001:db8::7%eth0"), 8001))
	assert.NoError(t, g.Check(netip.MustParseAddr("2001:db8::6%eth0"), 9000))
}

// TestControlRefusesAnEmptyOrUnreadableAddress: the dialler formats a
// missing IP as ":port", which connects to loopback; and an address the
// guard cannot read must not be waved through on an IP network.
func TestControlRefusesAnEmptyOrUnreadableAddress(t *testing.T) {
	g, err := New(nil)
	require.NoError(t, err)
	g.SetListeners("127.0.0.1:8000")
	var blocked *BlockedError
	assert.ErrorAs(t, g.Control("tcp", ":8000", nil), &blocked)
	assert.NoError(t, g.Control("tcp", ":8001", nil))
	assert.ErrorAs(t, g.Control("tcp6", "[fe80::1%eth0", nil), &blocked)
	assert.NoError(t, g.Control("unix", "/run/orchestrator.sock", nil), "not an IP network: not the guard's business")
}

// TestAllowedEntriesCoverZonedAndEmbeddedForms: an allowed_upstreams entry
// allows an address in any of its forms: with or without a zone, and an
// IPv6 address that embeds an IPv4 one is allowed when either the IPv6
// address or the embedded IPv4 address is listed.
func TestAllowedEntriesCoverZonedAndEmbeddedForms(t *testing.T) {
	g, err := New([]string{"fe80::1%eth0", "169.254.170.2", "64:ff9b::/96", "::ffff:169.254.171.0/120"})
	require.NoError(t, err)
	for _, a := range []string{
		"fe80::1", "fe80::1%eth0", "fe80::1%eth1", // a zone on an entry is ignored
		"169.254.170.2", "::ffff:169.254.170.2", "::169.254.170.2", "2002:a9fe:aa02::1", // the embedded IPv4 is listed
		"64:ff9b::a9fe:a9fe", // the IPv6 form is listed
		"169.254.171.9",      // an IPv4-mapped CIDR allows the IPv4 addresses it maps
	} {
		assert.NoError(t, g.Check(netip.MustParseAddr(a), 80), "Check(%s)", a)
	}
	for _, a := range []string{
		"fe80::2", "fe80::2%eth0",
		"169.254.169.254", "::169.254.169.254", "2002:a9fe:a9fe::1",
		"169.254.172.1",
	} {
		assert.Error(t, g.Check(netip.MustParseAddr(a), 80), "Check(%s)", a)
	}
}

// noDNS fails the test if the guard tries to resolve anything: every host
// below is an IP literal.
type noDNS struct{ t *testing.T }

func (r noDNS) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.t.Errorf("CheckHost resolved %q; an IP literal must be checked as such", host)
	return nil, &net.DNSError{Err: "no DNS in this test", Name: host, IsNotFound: true}
}

// TestCheckHostReadsZonedLiterals: CheckHost gets url.URL.Hostname() (zone
// decoded: fe80::1%eth0) or a raw URL host (brackets, zone still encoded
// as %25); each is an address, checked without its zone.
func TestCheckHostReadsZonedLiterals(t *testing.T) {
	g, err := New(nil)
	require.NoError(t, err)
	g.Resolver = noDNS{t}
	for _, host := range []string{
		"fe80::1%eth0", "[fe80::1%eth0]", "fe80::1%25eth0", "[fe80::1%25eth0]", "[fe80::1%254]", "fe80::1%4",
		"[fd00:ec2::254%25eth0]",
		"169.254.169.254%eth0", // not an address to netip, but it names one
		"[::169.254.169.254]", "::ffff:169.254.169.254", "[64:ff9b::a9fe:a9fe]", "2002:a9fe:a9fe::1",
		"100.100.100.200",
	} {
		err := g.CheckHost(context.Background(), host, 80)
		if assert.Error(t, err, "CheckHost(%s)", host) {
			assert.Contains(t, err.Error(), "registry.allowed_upstreams", "CheckHost(%s)", host)
		}
	}
	for _, host := range []string{"127.0.0.1", "[::1]", "::1%lo", "[2002:7f00:1::]", "64:ff9b::7f00:1"} {
		assert.NoError(t, g.CheckHost(context.Background(), host, 80), "CheckHost(%s)", host)
	}
}
