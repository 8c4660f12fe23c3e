// Package requestid generates and checks X-Request-ID values.
package requestid

import (
	"encoding/hex"
	"math/rand/v2"
)

// MaxLen is the longest client-supplied id the gateway keeps.
const MaxLen = 128

// Valid reports whether a client-supplied id is sane enough to keep and log:
// 1 to MaxLen characters of letters, digits and -_.:+/=@ (UUIDs, ULIDs,
// base64 and Envoy/Traefik-style ids all pass; spaces, quotes and control
// bytes that could forge log lines do not).
func Valid(id string) bool {
	if len(id) == 0 || len(id) > MaxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == ':' || c == '+' || c == '/' || c == '=' || c == '@':
		default:
			return false
		}
	}
	return true
}

// New returns a random version-4 UUID string. It uses the runtime's
// per-thread ChaCha8 generator: unpredictable, lock-free and one allocation.
func New() string {
	var b [16]byte
	hi, lo := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		b[i] = byte(hi >> (56 - 8*i))
		b[8+i] = byte(lo >> (56 - 8*i))
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return string(out[:])
}
