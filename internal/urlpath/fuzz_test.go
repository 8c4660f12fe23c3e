package urlpath

import (
	"net/url"
	"path"
	"strings"
	"testing"
)

// FuzzJoinStaysInsideBase checks the promise routing makes: a rest that
// HasDotSegment accepts, joined to a base path, can never leave that base,
// even for an upstream that decodes %2F and %5C and treats backslashes as
// slashes before it resolves dot segments.
func FuzzJoinStaysInsideBase(f *testing.F) {
	for _, seed := range []string{"/users/1", "/a%2Fb", "/..", "/%2e%2e/x", "/.%2E/", "/..%2F..", "/a/..%5c..", "/a\\..\\b", "/;/..;/x", "/a/b/", "", "/", "/%00", "/%zz/.."} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, rest string) {
		if rest != "" && rest[0] != '/' {
			rest = "/" + rest
		}
		const base = "/base"
		joined := Join(base, rest)
		if !strings.HasPrefix(joined, base) {
			t.Fatalf("Join(%q, %q) = %q: does not start with the base", base, rest, joined)
		}
		if HasDotSegment(rest) {
			return // answered 400, never forwarded
		}
		decoded, err := url.PathUnescape(joined)
		if err != nil {
			return // an invalid escape is forwarded as is; no decoder turns it into a dot segment
		}
		for _, p := range []string{decoded, strings.ReplaceAll(decoded, "\\", "/")} {
			// Servers that strip ;params before resolving dot segments.
			segs := strings.Split(p, "/")
			for i, s := range segs {
				if j := strings.IndexByte(s, ';'); j >= 0 {
					segs[i] = s[:j]
				}
			}
			clean := path.Clean(strings.Join(segs, "/"))
			if clean != base && !strings.HasPrefix(clean, base+"/") {
				t.Fatalf("rest %q accepted, but %q resolves to %q outside %q", rest, joined, clean, base)
			}
		}
	})
}

// FuzzNextSegment checks that splitting never loses or invents bytes.
func FuzzNextSegment(f *testing.F) {
	for _, seed := range []string{"/a/b", "/", "", "a", "//", "/a%2Fb/c"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, p string) {
		seg, rest, ok := NextSegment(p)
		if !ok {
			if p != "" && p[0] == '/' {
				t.Fatalf("NextSegment(%q) refused a path that starts with /", p)
			}
			return
		}
		if "/"+seg+rest != p {
			t.Fatalf("NextSegment(%q) = %q, %q: they do not rebuild the input", p, seg, rest)
		}
		if strings.Contains(seg, "/") || (rest != "" && rest[0] != '/') {
			t.Fatalf("NextSegment(%q) = %q, %q: bad split", p, seg, rest)
		}
	})
}
