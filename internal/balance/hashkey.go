package balance

import (
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"strings"
)

// KeySource is where a HashKey reads a request's key.
type KeySource int

// The sources of a hash key.
const (
	// FromHeader reads the first value of a request header.
	FromHeader KeySource = iota + 1
	// FromCookie reads a cookie's value.
	FromCookie
	// FromQuery reads a query parameter's first value, percent-decoded.
	FromQuery
	// FromClientIP reads the client's address from the request's
	// RemoteAddr, without the port.
	FromClientIP
)

// HashKey is a parsed load_balancing.hash_key: where the hash policy reads
// a request's key. Build it with ParseHashKey.
type HashKey struct {
	// Source is where the key is read.
	Source KeySource
	// Name is the header (canonical form), cookie or query parameter
	// name; empty for FromClientIP.
	Name string
}

// ParseHashKey parses a hash_key string: header:NAME, cookie:NAME,
// query:NAME or client_ip. The error quotes the string and names the part
// that is wrong; the caller prefixes the field.
func ParseHashKey(s string) (HashKey, error) {
	const want = "want header:NAME, cookie:NAME, query:NAME or client_ip"
	if s == "client_ip" {
		return HashKey{Source: FromClientIP}, nil
	}
	kind, name, found := strings.Cut(s, ":")
	var k HashKey
	switch kind {
	case "header":
		k.Source = FromHeader
	case "cookie":
		k.Source = FromCookie
	case "query":
		k.Source = FromQuery
	case "client_ip":
		return HashKey{}, fmt.Errorf("%q: client_ip takes no name", s)
	default:
		return HashKey{}, fmt.Errorf("%q: unknown source %q; %s", s, kind, want)
	}
	if !found || name == "" {
		return HashKey{}, fmt.Errorf("%q: the %s name is empty; %s", s, kind, want)
	}
	for i := 0; i < len(name); i++ {
		if !validNameByte(k.Source, name[i]) {
			return HashKey{}, fmt.Errorf("%q: %s name %q has an invalid character %q", s, kind, name, name[i])
		}
	}
	k.Name = name
	if k.Source == FromHeader {
		k.Name = textproto.CanonicalMIMEHeaderKey(name)
	}
	return k, nil
}

// validNameByte reports whether b may appear in a name of the source:
// a header or cookie name is an RFC 9110 token; a query parameter name is
// anything but a control character or a byte that ends the name or the
// query; it is compared with the request's names after percent-decoding, so
// "query:user name" matches user+name and user%20name.
func validNameByte(src KeySource, b byte) bool {
	if src == FromQuery {
		return b >= ' ' && b != 0x7f && b != '&' && b != '=' && b != '#'
	}
	return isTokenByte(b)
}

// isTokenByte reports whether b is a tchar of RFC 9110, section 5.6.2.
func isTokenByte(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}

// String returns the key as hash_key spells it.
func (k HashKey) String() string {
	switch k.Source {
	case FromHeader:
		return "header:" + k.Name
	case FromCookie:
		return "cookie:" + k.Name
	case FromQuery:
		return "query:" + k.Name
	case FromClientIP:
		return "client_ip"
	}
	return ""
}

// hash returns the hash of r's key, and false when r has none (missing or
// empty). It allocates nothing: it reads the header map, the Cookie lines
// and the raw query in place rather than through r.Cookie or URL.Query.
func (k HashKey) hash(r *http.Request) (uint64, bool) {
	var v string
	switch k.Source {
	case FromHeader:
		if vs := r.Header[k.Name]; len(vs) > 0 {
			v = vs[0]
		}
	case FromCookie:
		v = cookieValue(r.Header["Cookie"], k.Name)
	case FromQuery:
		if r.URL == nil {
			return 0, false
		}
		raw, ok := queryValue(r.URL.RawQuery, k.Name)
		if !ok || raw == "" {
			return 0, false
		}
		return unescapedHash(raw), true
	case FromClientIP:
		v = clientIP(r.RemoteAddr)
	}
	if v == "" {
		return 0, false
	}
	return stringHash(v), true
}

// cookieValue returns the value of the first cookie called name in the
// Cookie header lines, without the quotes a value may carry, or "".
func cookieValue(lines []string, name string) string {
	for _, line := range lines {
		for part := range strings.SplitSeq(line, ";") {
			n, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok || n != name {
				continue
			}
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v
		}
	}
	return ""
}

// queryValue returns the raw (still escaped) value of the first parameter
// whose decoded name is name.
func queryValue(raw, name string) (string, bool) {
	for part := range strings.SplitSeq(raw, "&") {
		n, v, _ := strings.Cut(part, "=")
		if unescapedEqual(n, name) {
			return v, true
		}
	}
	return "", false
}

// unescape decodes the query escape at s[i] ('+' or %XX) and returns the
// byte and the escape's length; a malformed escape stands for itself.
func unescape(s string, i int) (byte, int) {
	switch s[i] {
	case '+':
		return ' ', 1
	case '%':
		if i+2 < len(s) {
			if hi, ok := unhex(s[i+1]); ok {
				if lo, ok := unhex(s[i+2]); ok {
					return hi<<4 | lo, 3
				}
			}
		}
	}
	return s[i], 1
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// unescapedEqual reports whether the query-escaped s decodes to plain.
func unescapedEqual(s, plain string) bool {
	j := 0
	for i := 0; i < len(s); {
		b, n := unescape(s, i)
		if j >= len(plain) || plain[j] != b {
			return false
		}
		i += n
		j++
	}
	return j == len(plain)
}

// unescapedHash is stringHash of the query-escaped s decoded, so that
// ?user=a%20b and ?user=a+b hash alike, without building the decoded
// string.
func unescapedHash(s string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(s); {
		b, n := unescape(s, i)
		h ^= uint64(b)
		h *= fnvPrime
		i += n
	}
	return h
}

// clientIP is the host part of a RemoteAddr ("ip:port", "[ipv6]:port"),
// or the whole of it when it has no port.
func clientIP(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
