// Package urlpath holds the escaped-path arithmetic of routing: splitting a
// gateway path into its route segments, refusing dot segments and joining an
// upstream base path with the rest of a request path. Every function works
// on the escaped form so that "%2F" and other escapes reach the upstream
// byte for byte.
package urlpath

import "strings"

// NextSegment splits p, which must start with "/", into its first segment
// and the remainder (which starts with "/" or is empty). ok is false when p
// does not start with "/".
func NextSegment(p string) (segment, rest string, ok bool) {
	if p == "" || p[0] != '/' {
		return "", "", false
	}
	p = p[1:]
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i], p[i:], true
	}
	return p, "", true
}

// HasDotSegment reports whether the escaped path p holds a "." or ".."
// segment, raw or percent-encoded (%2e, %2E), or a segment that a lenient
// upstream may decode into one: a "%2F" or "%5C" inside a segment that then
// reads as a dot segment (such as "..%2F"), or a backslash-separated one.
func HasDotSegment(p string) bool {
	start := 0
	for i := 0; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' || p[i] == '\\' {
			if isDotSegment(p[start:i]) {
				return true
			}
			start = i + 1
			continue
		}
		if p[i] == '%' && i+2 < len(p) {
			// An encoded slash or backslash also separates segments for an
			// upstream that decodes before it routes.
			if (p[i+1] == '2' && (p[i+2] == 'f' || p[i+2] == 'F')) || (p[i+1] == '5' && (p[i+2] == 'c' || p[i+2] == 'C')) {
				if isDotSegment(p[start:i]) {
					return true
				}
				start = i + 3
				i += 2
			}
		}
	}
	return false
}

// isDotSegment reports whether s decodes to "." or "..", ignoring any
// ";params" (which some servers strip before resolving dot segments) and
// anything after an encoded NUL (where C-string servers cut the path, so
// that "..%00x" reads as "..").
func isDotSegment(s string) bool {
	// A ;param ends the segment for servers that strip path parameters
	// before resolving dot segments ("..;x" is ".." to them), and so does
	// its percent-encoded form for those that decode first ("..%3B").
	for i := 0; i < len(s); i++ {
		if s[i] == ';' || s[i] == '%' && i+2 < len(s) && s[i+1] == '3' && (s[i+2] == 'b' || s[i+2] == 'B') {
			s = s[:i]
			break
		}
	}
	if i := strings.Index(s, "%00"); i >= 0 {
		s = s[:i]
	}
	dots := 0
	for i := 0; i < len(s); {
		switch {
		case s[i] == '.':
			i++
		case s[i] == '%' && i+2 < len(s) && s[i+1] == '2' && (s[i+2] == 'e' || s[i+2] == 'E'):
			i += 3
		default:
			return false
		}
		dots++
		if dots > 2 {
			return false
		}
	}
	return dots == 1 || dots == 2
}

// Join appends rest to the escaped base path with exactly one "/" between
// them. An empty rest yields base itself ("/" when base is empty), so a
// request to the endpoint's root reaches the base path; a trailing slash on
// rest is kept.
func Join(base, rest string) string {
	if rest == "" {
		if base == "" {
			return "/"
		}
		return base
	}
	base = strings.TrimSuffix(base, "/")
	if rest[0] != '/' {
		return base + "/" + rest
	}
	return base + rest
}
