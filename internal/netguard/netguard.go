// Package netguard decides which upstream addresses the gateway may dial.
// A gateway that lets API clients register upstreams is a server-side
// request forgery risk: an endpoint pointing at the cloud metadata service
// (169.254.169.254, fd00:ec2::254, 100.100.100.200), at link-local addresses
// or back at the gateway's own listeners would let a caller read what only
// the gateway's host should. The Guard refuses those unless explicitly
// allowed, both when an endpoint is registered (after DNS resolution) and at
// every dial (so a name that later resolves elsewhere, DNS rebinding, is
// still caught).
//
// An address is judged whatever its spelling: an IPv6 zone (fe80::1%eth0)
// is ignored, an IPv4-mapped address (::ffff:a.b.c.d) is its IPv4 address,
// and an IPv6 address that carries an IPv4 one (IPv4-compatible ::a.b.c.d,
// NAT64 64:ff9b::a.b.c.d, 6to4 2002:aabb:ccdd::) is refused when that IPv4
// address would be.
package netguard

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// deniedRanges are refused unless allowed: link-local (which holds the
// AWS, GCP, Azure and Oracle metadata address 169.254.169.254), its IPv6
// counterpart, the AWS IPv6 metadata address, and Alibaba Cloud's metadata
// address. Alibaba's sits outside link-local, in the shared address space
// 100.64.0.0/10; only that one address is refused, because the rest of
// 100.64.0.0/10 is carrier-grade NAT and cluster networks that may well
// hold real upstreams.
var deniedRanges = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("fd00:ec2::254/128"),
	netip.MustParsePrefix("100.100.100.200/32"),
}

// IPv6 prefixes whose addresses carry an IPv4 address, which a host with a
// tunnel or translator for them reaches: dialling 64:ff9b::a9fe:a9fe
// through a NAT64 on the gateway's host reaches 169.254.169.254 there.
// The local-use NAT64 prefix 64:ff9b:1::/48 (RFC 8215) is not decoded:
// where its IPv4 address sits depends on the prefix length the operator
// chose (RFC 6052), so any position would be a guess.
var (
	ipv4Compatible = netip.MustParsePrefix("::/96")        // ::a.b.c.d, deprecated (RFC 4291)
	nat64          = netip.MustParsePrefix("64:ff9b::/96") // 64:ff9b::a.b.c.d (RFC 6052)
	sixToFour      = netip.MustParsePrefix("2002::/16")    // 2002:aabb:ccdd:: (RFC 3056)
)

// canonical is ip as the rules see it: without its zone, because
// netip.Prefix.Contains is false for any zoned address (so fe80::1%eth0
// would escape fe80::/10) and a zone only picks the interface, not the
// host reached; and IPv4-mapped addresses as their IPv4 address, which is
// what a dial to them reaches.
func canonical(ip netip.Addr) netip.Addr { return ip.WithZone("").Unmap() }

// embeddedIPv4 returns the IPv4 address an IPv6 address carries, if it is
// in one of the prefixes above. :: and ::1 are not IPv4-compatible
// addresses but the unspecified and loopback addresses.
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	ip = canonical(ip)
	if !ip.Is6() {
		return netip.Addr{}, false
	}
	b := ip.As16()
	switch {
	case nat64.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case ipv4Compatible.Contains(ip) && !ip.IsUnspecified() && !ip.IsLoopback():
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

func denied(ip netip.Addr) bool {
	for _, p := range deniedRanges {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Guard holds the rules. The zero value is not usable; use New. Safe for
// concurrent use once built; SetListeners may be called at any time.
type Guard struct {
	// Resolver looks up host names for CheckHost. Nil: net.DefaultResolver.
	Resolver interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	}

	allowedPrefixes []netip.Prefix
	allowedHosts    map[string]bool
	listeners       atomic.Pointer[[]netip.AddrPort] // the gateway's own addresses
	localIPs        []netip.Addr                     // this host's interface addresses
}

// New builds a guard. allowed lists CIDRs, IP addresses or host names
// (exact, case-insensitive) that may be dialled even where the rules would
// refuse them. A zone on an allowed address is ignored, as it is on the
// addresses checked, and an IPv4-mapped entry stands for the IPv4
// addresses it maps. An IPv6 address that embeds an IPv4 one is allowed
// when either address is listed: listing 169.254.170.2 also allows
// 64:ff9b::a9fe:aa02, and listing 64:ff9b::/96 allows all of NAT64.
func New(allowed []string) (*Guard, error) {
	g := &Guard{allowedHosts: map[string]bool{}}
	for _, a := range allowed {
		a = strings.TrimSpace(a)
		switch {
		case a == "":
			return nil, fmt.Errorf("empty entry")
		case strings.Contains(a, "/"):
			p, err := netip.ParsePrefix(a)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR", a)
			}
			p = p.Masked()
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				// Checked addresses are unmapped, so the entry must be too.
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			g.allowedPrefixes = append(g.allowedPrefixes, p)
		default:
			if ip, err := netip.ParseAddr(strings.Trim(a, "[]")); err == nil {
				ip = canonical(ip)
				g.allowedPrefixes = append(g.allowedPrefixes, netip.PrefixFrom(ip, ip.BitLen()))
			} else {
				g.allowedHosts[strings.ToLower(a)] = true
			}
		}
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					g.localIPs = append(g.localIPs, canonical(ip))
				}
			}
		}
	}
	return g, nil
}

// SetListeners records the gateway's own listening addresses ("host:port");
// an unspecified host (0.0.0.0, ::) stands for every local address. A zone
// is dropped: the listener is the same socket whichever interface names it.
func (g *Guard) SetListeners(addrs ...string) {
	var list []netip.AddrPort
	if cur := g.listeners.Load(); cur != nil {
		list = append(list, *cur...)
	}
	defer func() { g.listeners.Store(&list) }()
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			continue
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			if host == "" || host == "localhost" {
				ip = netip.IPv6Unspecified()
			} else {
				continue
			}
		}
		list = append(list, netip.AddrPortFrom(canonical(ip), uint16(p)))
	}
}

// AllowedHost reports whether a host name is explicitly allowed.
func (g *Guard) AllowedHost(host string) bool { return g.allowedHosts[strings.ToLower(host)] }

// Check returns why ip:port may not be dialled, or nil. The address is
// judged without its zone and, when it is IPv4-mapped, as its IPv4
// address. An IPv6 address that embeds an IPv4 address (IPv4-compatible,
// NAT64, 6to4) is also refused when the IPv4 address would be, unless one
// of the two is allowed. Loopback so embedded is not link-local or
// metadata and is allowed, as 127.0.0.1 is, but not on the gateway's own
// listening port. The reason names ip as given, zone included, so that
// the operator recognises it.
func (g *Guard) Check(ip netip.Addr, port uint16) error {
	addr := canonical(ip)
	if g.allowed(addr) {
		return nil
	}
	if denied(addr) {
		return fmt.Errorf("%s is a link-local or cloud-metadata address; list it in registry.allowed_upstreams to allow it", ip)
	}
	v4, embeds := embeddedIPv4(addr)
	embeds = embeds && !g.allowed(v4)
	if embeds && denied(v4) {
		return fmt.Errorf("%s embeds %s, a link-local or cloud-metadata address; list either address in registry.allowed_upstreams to allow it", ip, v4)
	}
	if g.ownListener(addr, port) {
		return fmt.Errorf("%s is the gateway's own listener; an endpoint must not route back to the gateway", netip.AddrPortFrom(ip, port))
	}
	if embeds && g.ownListener(v4, port) {
		return fmt.Errorf("%s embeds %s, the gateway's own listener; an endpoint must not route back to the gateway", ip, netip.AddrPortFrom(v4, port))
	}
	return nil
}

func (g *Guard) allowed(ip netip.Addr) bool {
	for _, p := range g.allowedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ownListener reports whether a dial to ip:port (canonical) reaches one of
// the gateway's listeners. An unspecified destination does whatever the
// listener's address: connect(2) sends 0.0.0.0 and :: to loopback.
func (g *Guard) ownListener(ip netip.Addr, port uint16) bool {
	cur := g.listeners.Load()
	if cur == nil {
		return false
	}
	for _, l := range *cur {
		if l.Port() != port {
			continue
		}
		if l.Addr() == ip || ip.IsUnspecified() || (l.Addr().IsUnspecified() && g.isLocal(ip)) {
			return true
		}
	}
	return false
}

func (g *Guard) isLocal(ip netip.Addr) bool {
	ip = canonical(ip)
	if ip.IsLoopback() || ip.IsUnspecified() {
		return true
	}
	for _, l := range g.localIPs {
		if l == ip {
			return true
		}
	}
	return false
}

// CheckHost resolves host (unless it is an allowed name or an IP literal)
// and checks every address it resolves to. A name that does not resolve is
// not refused here: the dial-time check still applies when it does.
//
// host may be url.URL.Hostname() (fe80::1%eth0) or a raw URL host, in
// brackets and with the zone still percent-encoded ([fe80::1%25eth0]): the
// zone does not matter to the check, so either form is the address before
// the '%'. That also catches an IPv4 literal with a zone, which netip does
// not parse but which is plainly not a host name.
func (g *Guard) CheckHost(ctx context.Context, host string, port uint16) error {
	if g.AllowedHost(host) {
		return nil
	}
	literal := strings.Trim(host, "[]")
	if ip, err := netip.ParseAddr(literal); err == nil {
		return g.Check(ip, port)
	}
	if i := strings.IndexByte(literal, '%'); i > 0 {
		if ip, err := netip.ParseAddr(literal[:i]); err == nil {
			if err := g.Check(ip, port); err != nil {
				return fmt.Errorf("%s: %w", host, err)
			}
			return nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var resolver interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	} = net.DefaultResolver
	if g.Resolver != nil {
		resolver = g.Resolver
	}
	ips, err := resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, ip := range ips {
		if err := g.Check(ip, port); err != nil {
			return fmt.Errorf("%s resolves to %w", host, err)
		}
	}
	return nil
}

// Control is a net.Dialer Control function that refuses forbidden
// addresses at connect time, after DNS resolution. The dialler formats a
// dial with no IP as ":port", which connects to loopback, so that is
// checked as the unspecified address; any other address on an IP network
// that cannot be read is refused rather than waved through.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	if !strings.HasPrefix(network, "tcp") && !strings.HasPrefix(network, "udp") {
		return nil // unix sockets and the like have no IP address to judge
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		host, port, serr := net.SplitHostPort(address)
		p, perr := strconv.ParseUint(port, 10, 16)
		if serr != nil || perr != nil || host != "" {
			return &BlockedError{Address: address, Reason: "the guard cannot read the address"}
		}
		ap = netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(p))
	}
	if err := g.Check(ap.Addr(), ap.Port()); err != nil {
		return &BlockedError{Address: address, Reason: err.Error()}
	}
	return nil
}

// BlockedError is returned by a dial the guard refused.
type BlockedError struct {
	Address string
	Reason  string
}

func (e *BlockedError) Error() string { return "upstream " + e.Address + " refused: " + e.Reason }

// DialContext wraps a dialer: allowed host names dial freely; every other
// dial goes through Control.
func (g *Guard) DialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	guarded := *d
	guarded.Control = g.Control
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, _, err := net.SplitHostPort(addr); err == nil && g.AllowedHost(host) {
			return d.DialContext(ctx, network, addr)
		}
		return guarded.DialContext(ctx, network, addr)
	}
}
