package urlpath

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNextSegment(t *testing.T) {
	tests := []struct {
		in      string
		segment string
		rest    string
		ok      bool
	}{
		{in: "", ok: false},
		{in: "svc/v1", ok: false},
		{in: "/", segment: "", rest: "", ok: true},
		{in: "//", segment: "", rest: "/", ok: true},
		{in: "/svc", segment: "svc", rest: "", ok: true},
		{in: "/svc/", segment: "svc", rest: "/", ok: true},
		{in: "/svc/v1", segment: "svc", rest: "/v1", ok: true},
		{in: "/svc/v1/users/42", segment: "svc", rest: "/v1/users/42", ok: true},
		{in: "/a%2Fb/c", segment: "a%2Fb", rest: "/c", ok: true},
		{in: "/svc//x", segment: "svc", rest: "//x", ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			seg, rest, ok := NextSegment(tt.in)
			assert.Equal(t, tt.ok, ok, "NextSegment(%q) ok = %v; want %v", tt.in, ok, tt.ok)
			assert.Equal(t, tt.segment, seg, "NextSegment(%q) segment = %q; want %q", tt.in, seg, tt.segment)
			assert.Equal(t, tt.rest, rest, "NextSegment(%q) rest = %q; want %q", tt.in, rest, tt.rest)
		})
	}
}

func TestHasDotSegment(t *testing.T) {
	dotted := []string{
		".",
		"..",
		"/.",
		"/..",
		"/./",
		"/../",
		"/a/./b",
		"/a/../b",
		"/a/..",
		"/a/.",
		"/%2e",
		"/%2E",
		"/%2e%2e",
		"/%2E%2E",
		"/%2E%2e/x",
		"/.%2e/x",
		"/%2e./x",
		"/a/..;jsessionid=1/b",
		"/a/.;x/b",
		"/a/%2e%2e;p/b",
		"/..;",
		"/..%3B",
		"/..%3bx/b",
		"/%2e%2e%3Bjsessionid=1/b",
		"/..%2F",
		"/..%2f",
		"/a..%2F..%2Fb/..%2F",
		"/a%2F..%2Fb",
		"/a%2f..",
		"/..%5C",
		"/..%5c",
		"/a%5C..%5Cb",
		"/a\\..\\b",
		"/a\\.",
		"\\..",
		"/x/%2e%2E%2F/y",
	}
	for _, p := range dotted {
		assert.True(t, HasDotSegment(p), "HasDotSegment(%q) = false; want true", p)
	}

	clean := []string{
		"",
		"/",
		"//",
		"/a",
		"/a/b/c/",
		"/...",
		"/..../x",
		"/.hidden",
		"/file.txt",
		"/a./b",
		"/..a",
		"/a..",
		"/%2e%2e%2e",
		"/%2ex",
		"/x%2e",
		"/%2",
		"/%2e%2",
		"/a%2Fb",
		"/a%5Cb",
		"/v1.2/x",
		"/;..",
		"/a;../b",
		"/%25%32%65", // "%2e" escaped once more: a literal "%2e" for the backend
		"/.../..../.x/x.",
	}
	for _, p := range clean {
		assert.False(t, HasDotSegment(p), "HasDotSegment(%q) = true; want false", p)
	}
}

func TestJoin(t *testing.T) {
	tests := []struct {
		base, rest, want string
	}{
		{base: "", rest: "", want: "/"},
		{base: "/", rest: "", want: "/"},
		{base: "/api", rest: "", want: "/api"},
		{base: "/api/", rest: "", want: "/api/"},
		{base: "", rest: "/x", want: "/x"},
		{base: "/", rest: "/x", want: "/x"},
		{base: "/api", rest: "/x", want: "/api/x"},
		{base: "/api/", rest: "/x", want: "/api/x"},
		{base: "/api", rest: "x", want: "/api/x"},
		{base: "/api/", rest: "x", want: "/api/x"},
		{base: "/api", rest: "/", want: "/api/"},
		{base: "/api/", rest: "/", want: "/api/"},
		{base: "", rest: "/", want: "/"},
		{base: "/api", rest: "/x/", want: "/api/x/"},
		{base: "/api", rest: "/a%2Fb", want: "/api/a%2Fb"},
		{base: "/a%2Fb", rest: "/c", want: "/a%2Fb/c"},
		{base: "/api", rest: "//x", want: "/api//x"},
	}
	for _, tt := range tests {
		got := Join(tt.base, tt.rest)
		assert.Equal(t, tt.want, got, "Join(%q, %q) = %q; want %q", tt.base, tt.rest, got, tt.want)
	}
}
