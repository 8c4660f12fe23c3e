// Package jsondiff lists the leaves in which two values' JSON forms
// differ, each by its dotted path: what a config change preview shows an
// operator (timeout: 30 -> 10). Comparing JSON forms is the notion of
// change the gateway applies (two decodings of one file compare equal;
// pointers are looked through; an empty list equals a missing one).
package jsondiff

import (
	"encoding/json"
	"reflect"
	"sort"
)

// Change is one leaf's change. Old is nil when the leaf was not set, New
// when it no longer is. Values are as encoding/json decodes them into an
// any: float64, string, bool, []any, map[string]any.
type Change struct {
	Field string
	Old   any
	New   any
}

// decode turns v into its JSON form's generic value. A value that cannot
// be marshalled (none of the config types) compares as null.
func decode(v any, into *any) {
	raw, err := json.Marshal(v)
	if err != nil {
		return
	}
	json.Unmarshal(raw, into)
}

// Leaves compares two values through their JSON forms and returns each
// leaf that differs, under prefix, in path order. Lists are leaves:
// methods: [GET] -> [GET, POST] reads better whole.
func Leaves(prefix string, old, cur any) []Change {
	var a, b any
	decode(old, &a)
	decode(cur, &b)
	var out []Change
	diffJSON(prefix, a, b, &out)
	return out
}

func diffJSON(path string, a, b any, out *[]Change) {
	am, aIsMap := a.(map[string]any)
	bm, bIsMap := b.(map[string]any)
	if aIsMap && bIsMap {
		keys := make([]string, 0, len(am)+len(bm))
		for k := range am {
			keys = append(keys, k)
		}
		for k := range bm {
			if _, dup := am[k]; !dup {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			sub := k
			if path != "" {
				sub = path + "." + k
			}
			diffJSON(sub, am[k], bm[k], out)
		}
		return
	}
	if reflect.DeepEqual(a, b) {
		return
	}
	if (aIsMap && b == nil) || (bIsMap && a == nil) {
		// A section set on one side only: its leaves against nothing, or
		// the section itself when it has none (circuit_breaker: {}).
		before := len(*out)
		if aIsMap {
			diffJSON(path, a, map[string]any{}, out)
		} else {
			diffJSON(path, map[string]any{}, b, out)
		}
		if len(*out) > before {
			return
		}
	}
	*out = append(*out, Change{Field: path, Old: a, New: b})
}
