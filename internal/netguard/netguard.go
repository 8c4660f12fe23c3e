// Package netguard decides which upstream addresses the gateway may dial.
// A gateway that lets API clients register upstreams is a server-side
// request forgery risk: an endpoint pointing at the cloud metadata service
// (169.254.169.254, fd00:ec2::254), at link-local addresses or back at the
// gateway's own listeners would let a caller read what only the gateway's
// host should. The Guard refuses those unless explicitly allowed, both when
// an endpoint is registered (after DNS resolution) and at every dial (so a
// name that later resolves elsewhere, DNS rebinding, is still caught).
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
// AWS, GCP and Azure metadata address 169.254.169.254), its IPv6
// counterpart, and the AWS IPv6 metadata address.
var deniedRanges = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("fd00:ec2::254/128"),
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
// refuse them.
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
			g.allowedPrefixes = append(g.allowedPrefixes, p.Masked())
		default:
			if ip, err := netip.ParseAddr(strings.Trim(a, "[]")); err == nil {
				g.allowedPrefixes = append(g.allowedPrefixes, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
			} else {
				g.allowedHosts[strings.ToLower(a)] = true
			}
		}
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					g.localIPs = append(g.localIPs, ip.Unmap())
				}
			}
		}
	}
	return g, nil
}

// SetListeners records the gateway's own listening addresses ("host:port");
// an unspecified host (0.0.0.0, ::) stands for every local address.
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
		list = append(list, netip.AddrPortFrom(ip.Unmap(), uint16(p)))
	}
}

// AllowedHost reports whether a host name is explicitly allowed.
func (g *Guard) AllowedHost(host string) bool { return g.allowedHosts[strings.ToLower(host)] }

// Check returns why ip:port may not be dialled, or nil.
func (g *Guard) Check(ip netip.Addr, port uint16) error {
	ip = ip.Unmap()
	for _, p := range g.allowedPrefixes {
		if p.Contains(ip) {
			return nil
		}
	}
	for _, p := range deniedRanges {
		if p.Contains(ip) {
			return fmt.Errorf("%s is a link-local or cloud-metadata address; list it in registry.allowed_upstreams to allow it", ip)
		}
	}
	var listeners []netip.AddrPort
	if cur := g.listeners.Load(); cur != nil {
		listeners = *cur
	}
	for _, l := range listeners {
		if l.Port() != port {
			continue
		}
		if l.Addr() == ip || (l.Addr().IsUnspecified() && g.isLocal(ip)) {
			return fmt.Errorf("%s is the gateway's own listener; an endpoint must not route back to the gateway", netip.AddrPortFrom(ip, port))
		}
	}
	return nil
}

func (g *Guard) isLocal(ip netip.Addr) bool {
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
func (g *Guard) CheckHost(ctx context.Context, host string, port uint16) error {
	if g.AllowedHost(host) {
		return nil
	}
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return g.Check(ip, port)
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
// addresses at connect time, after DNS resolution.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil
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
