// The typed decoder's plans: how each Go type is decoded, worked out once
// per type from its fields and the unmarshalers it implements, as
// goccy/go-yaml's decoder would treat it.

package yamlconf

import (
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/goccy/go-yaml"
)

// planKind is how a type is decoded.
type planKind uint8

const (
	planUnsupported planKind = iota
	planBool
	planInt
	planUint
	planFloat
	planString
	planSlice
	planMap
	planStruct
	planPointer
	planInterface
	// planText is a type with an UnmarshalText method: checked with it on
	// the scalar as written, then decoded with goccy/go-yaml's
	// InterfaceUnmarshaler when it has one, else with UnmarshalText.
	planText
	// planSelf is a type that is not text but decodes itself through
	// goccy/go-yaml's InterfaceUnmarshaler (the gateway's rate_limit: one
	// mapping or a list): the check checks it by kind, and the decoder
	// hands it the node as a generic value, as goccy/go-yaml would when it
	// asks for an interface.
	planSelf
)

// plan says how to decode one type.
type plan struct {
	typ  reflect.Type
	kind planKind
	// elem is the plan of a slice's items, a map's values or a pointer's
	// target.
	elem *plan
	// fields maps a struct's keys to its fields: only the keys that both
	// the check and goccy/go-yaml resolve to the same field.
	fields map[string]fieldPlan
	// iface says a planText type decodes through UnmarshalYAML.
	iface bool
}

type fieldPlan struct {
	index []int
	plan  *plan
	// ord numbers the keys of a struct, to find a key given twice.
	ord int
}

var (
	plans   sync.Map // reflect.Type -> *plan
	plansMu sync.Mutex
)

func planFor(t reflect.Type) *plan {
	if p, ok := plans.Load(t); ok {
		return p.(*plan)
	}
	plansMu.Lock()
	defer plansMu.Unlock()
	building := map[reflect.Type]*plan{}
	p := buildPlan(t, building)
	for t, p := range building {
		plans.Store(t, p)
	}
	return p
}

var (
	interfaceUnmarshaler = reflect.TypeFor[yaml.InterfaceUnmarshaler]()
	// The other unmarshalers goccy/go-yaml calls, which the fast path
	// leaves to it.
	otherUnmarshalers = []reflect.Type{
		reflect.TypeFor[yaml.BytesUnmarshaler](),
		reflect.TypeFor[yaml.BytesUnmarshalerContext](),
		reflect.TypeFor[yaml.InterfaceUnmarshalerContext](),
		reflect.TypeFor[yaml.NodeUnmarshaler](),
		reflect.TypeFor[yaml.NodeUnmarshalerContext](),
	}
)

func buildPlan(t reflect.Type, building map[reflect.Type]*plan) *plan {
	if p, ok := plans.Load(t); ok {
		return p.(*plan)
	}
	if p := building[t]; p != nil {
		return p
	}
	p := &plan{typ: t}
	building[t] = p
	if t.Kind() == reflect.Pointer {
		// goccy/go-yaml decodes into the pointed-to value; a pointer to a
		// pointer it cannot assign.
		if t.Elem().Kind() != reflect.Pointer {
			p.kind, p.elem = planPointer, buildPlan(t.Elem(), building)
		}
		return p
	}
	pt := reflect.PointerTo(t)
	for _, u := range otherUnmarshalers {
		if pt.Implements(u) {
			return p
		}
	}
	switch t {
	case reflect.TypeFor[time.Time](), reflect.TypeFor[time.Duration](),
		reflect.TypeFor[yaml.MapSlice](), reflect.TypeFor[yaml.MapItem]():
		return p
	}
	if pt.Implements(textUnmarshaler) {
		p.kind, p.iface = planText, pt.Implements(interfaceUnmarshaler)
		return p
	}
	if pt.Implements(interfaceUnmarshaler) {
		p.kind = planSelf // checked by kind, decoded by UnmarshalYAML: not followed
		return p
	}
	switch t.Kind() {
	case reflect.Bool:
		p.kind = planBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		p.kind = planInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		p.kind = planUint
	case reflect.Float32, reflect.Float64:
		p.kind = planFloat
	case reflect.String:
		p.kind = planString
	case reflect.Slice:
		p.kind, p.elem = planSlice, buildPlan(t.Elem(), building)
	case reflect.Map:
		if k := t.Key(); k.Kind() != reflect.String || hasUnmarshaler(k) {
			return p
		}
		p.kind, p.elem = planMap, buildPlan(t.Elem(), building)
	case reflect.Struct:
		if fields, ok := structPlan(t, building); ok {
			p.kind, p.fields = planStruct, fields
		}
	case reflect.Interface:
		if t.NumMethod() == 0 {
			p.kind = planInterface
		}
	}
	return p
}

// hasUnmarshaler reports whether goccy/go-yaml decodes t with a method.
func hasUnmarshaler(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	if pt.Implements(textUnmarshaler) || pt.Implements(interfaceUnmarshaler) {
		return true
	}
	for _, u := range otherUnmarshalers {
		if pt.Implements(u) {
			return true
		}
	}
	return false
}

// structPlan intersects the fields the check knows (checkFields) with
// those goccy/go-yaml decodes (goccyFields), keeping the keys both resolve
// to the same field.
func structPlan(t reflect.Type, building map[reflect.Type]*plan) (map[string]fieldPlan, bool) {
	goccy, ok := goccyFields(t)
	if !ok {
		return nil, false
	}
	checked := map[string][]int{}
	checkFields(t, nil, checked)
	out := make(map[string]fieldPlan, len(goccy))
	for name, index := range goccy {
		if ci, ok := checked[name]; ok && equalIndex(ci, index) {
			out[name] = fieldPlan{index: index, plan: buildPlan(t.FieldByIndex(index).Type, building), ord: len(out)}
		}
	}
	return out, true
}

func equalIndex(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkFields mirrors structFields with field indexes.
func checkFields(t reflect.Type, prefix []int, out map[string][]int) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		index := append(append([]int(nil), prefix...), i)
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && (name == "" || strings.Contains(opts, "inline")) {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				// structFields flattens it; goccy/go-yaml does not
				// decode through it the same way.
				for ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					inner := map[string][]int{}
					checkFields(ft, index, inner)
					for k := range inner {
						out[k] = nil // never equal to a goccy index
					}
					continue
				}
			} else if ft.Kind() == reflect.Struct {
				checkFields(ft, index, out)
				continue
			}
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = index
	}
}

// goccyFields lists the keys goccy/go-yaml decodes into t's fields (its
// structFieldMap, with inline structs flattened). It reports false where
// goccy/go-yaml errs or decodes one key into several fields.
func goccyFields(t reflect.Type) (map[string][]int, bool) {
	out := map[string][]int{}
	names := map[string]bool{} // render names at this level, inline ones too
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "" {
			tag = f.Tag.Get("json")
		}
		if (f.PkgPath != "" && !f.Anonymous) || tag == "-" {
			continue
		}
		opts := strings.Split(tag, ",")
		name := strings.ToLower(f.Name)
		if opts[0] != "" {
			name = opts[0]
		}
		if names[name] {
			return nil, false // goccy/go-yaml: duplicated struct field name
		}
		names[name] = true
		inline := false
		for _, o := range opts[1:] {
			switch {
			case o == "inline":
				inline = true
			case strings.HasPrefix(o, "alias"), strings.HasPrefix(o, "anchor"):
				return nil, false
			}
		}
		if !inline {
			if _, dup := out[name]; dup {
				return nil, false // also a field of an inline struct
			}
			out[name] = []int{i}
			continue
		}
		if !f.Anonymous || !f.IsExported() || f.Type.Kind() != reflect.Struct || hasUnmarshaler(f.Type) {
			return nil, false
		}
		inner, ok := goccyFields(f.Type)
		if !ok {
			return nil, false
		}
		for k, index := range inner {
			if _, dup := out[k]; dup {
				return nil, false
			}
			out[k] = append([]int{i}, index...)
		}
	}
	return out, true
}

// oneOrList reports whether t, a slice type, decodes itself
// (UnmarshalYAML): such a type may take one item, a mapping, for a list of
// one (the gateway's rate_limit), which the check then checks as that
// item, at the slice's own path.
func oneOrList(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && reflect.PointerTo(t).Implements(interfaceUnmarshaler)
}
