package yamlconf

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"reflect"

	"github.com/goccy/go-yaml"
)

// This file decodes a tree into a Go value the way the reference path
// does: check (every rule of the check function in yamlconf.go) and then
// goccy/go-yaml's reflective decoder, whose rules it copies for the types
// it supports. Where it would report a problem, meets a type it does not
// support or is in any doubt, it gives up, and the caller takes the
// reference path, which then gives the same value or the same located
// problems as before.

// decoder decodes a tree into typed values, panicking with bail to give up.
type decoder struct {
	t       *tree
	scratch []byte
	// checked holds a value per planText type to run the check's
	// UnmarshalText on, reset to zero before each use.
	checked map[reflect.Type]encoding.TextUnmarshaler
	// unmarshal is the callback passed to UnmarshalYAML methods, for the
	// node in current; bailed is set when it gives up.
	unmarshal func(any) error
	current   int32
	bailed    bool
}

func newDecoder(t *tree) *decoder {
	d := &decoder{t: t}
	d.unmarshal = func(v any) error {
		rv := reflect.ValueOf(v)
		if !rv.IsValid() || rv.Kind() != reflect.Pointer || rv.IsNil() ||
			rv.Elem().Kind() != reflect.Interface || rv.Elem().NumMethod() != 0 {
			d.bailed = true
			return errBail
		}
		if x := d.any(d.current, 0); x != nil {
			rv.Elem().Set(reflect.ValueOf(x))
		} else {
			rv.Elem().Set(reflect.Zero(rv.Elem().Type()))
		}
		return nil
	}
	return d
}

var errBail = errors.New("yamlconf: left to goccy/go-yaml")

// decodeTree decodes t into v, a pointer to a zero value, or reports false
// when the reference path must decide.
func decodeTree(t *tree, v any) (ok bool) {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || rv.Kind() != reflect.Pointer || rv.IsNil() {
		return false
	}
	target := rv.Elem()
	if !target.IsZero() {
		return false // goccy/go-yaml keeps what it does not overwrite
	}
	if t.root < 0 {
		return true
	}
	if t.nodes[t.root].kind == kindNull {
		return false
	}
	pl := planFor(target.Type())
	if pl.kind == planPointer {
		return false
	}
	defer func() {
		if r := recover(); r != nil {
			if _, isBail := r.(bail); !isBail {
				panic(r)
			}
			ok = false
		}
	}()
	d := newDecoder(t)
	fresh := reflect.New(target.Type()).Elem()
	d.value(fresh, pl, t.root, 0)
	target.Set(fresh)
	return true
}

func (d *decoder) fail() { panic(bail{}) }

// fresh decodes node n into dst, a zero value of pl.typ, as goccy/go-yaml's
// createDecodedNewValue: null leaves the zero value.
func (d *decoder) fresh(dst reflect.Value, pl *plan, n int32, depth int) {
	if d.t.nodes[n].kind == kindNull {
		return
	}
	if pl.kind == planPointer {
		v := reflect.New(pl.elem.typ)
		d.value(v.Elem(), pl.elem, n, depth)
		dst.Set(v)
		return
	}
	d.value(dst, pl, n, depth)
}

// value decodes the non-null node n into dst, a zero value of pl.typ.
func (d *decoder) value(dst reflect.Value, pl *plan, n int32, depth int) {
	if depth > maxDepth {
		d.fail()
	}
	nd := &d.t.nodes[n]
	switch pl.kind {
	case planText:
		d.text(dst, pl, n)
	case planSelf:
		// The type reads a generic value, which holds whatever keys the
		// document has: the check must pass on the node first, or an
		// unknown key would be dropped rather than reported (the check
		// then reports it, located).
		c := treeChecker{t: d.t, exact: true}
		c.check(n, pl.typ, "")
		if !c.exact || len(c.problems) > 0 {
			d.fail()
		}
		d.current = n
		err := dst.Addr().Interface().(yaml.InterfaceUnmarshaler).UnmarshalYAML(d.unmarshal)
		if d.bailed || err != nil {
			d.fail()
		}
	case planBool:
		if nd.kind != kindBool {
			d.fail()
		}
		dst.SetBool(boolValue(d.t.text(nd)))
	case planInt:
		if nd.kind != kindInt || !intChecks(d.t.text(nd)) {
			d.fail()
		}
		v, signed, ok := intValue(d.t.text(nd))
		if !ok || (!signed && v > math.MaxInt64) || dst.OverflowInt(int64(v)) {
			d.fail()
		}
		dst.SetInt(int64(v))
	case planUint:
		if nd.kind != kindInt || !intChecks(d.t.text(nd)) {
			d.fail()
		}
		v, signed, ok := intValue(d.t.text(nd))
		if !ok || (signed && int64(v) < 0) || dst.OverflowUint(v) {
			d.fail()
		}
		dst.SetUint(v)
	case planFloat:
		switch nd.kind {
		case kindInt:
			v, signed, ok := intValue(d.t.text(nd))
			switch {
			case !ok:
				d.fail()
			case signed:
				dst.SetFloat(float64(int64(v)))
			default:
				dst.SetFloat(float64(v))
			}
		case kindFloat:
			dst.SetFloat(floatValue(d.t.text(nd)))
		default:
			d.fail()
		}
	case planString:
		if !nd.kind.isScalar() {
			d.fail()
		}
		dst.SetString(d.t.scalarString(nd))
	case planSlice:
		if nd.kind != kindSequence {
			d.fail()
		}
		s := reflect.MakeSlice(pl.typ, nd.count(), nd.count())
		i := 0
		for c := d.t.first(n); c >= 0; c = d.t.nodes[c].next {
			d.fresh(s.Index(i), pl.elem, c, depth+1)
			i++
		}
		dst.Set(s)
	case planMap:
		d.mapping(dst, pl, n, depth)
	case planStruct:
		d.structure(dst, pl, n, depth)
	case planInterface:
		if v := d.any(n, depth); v != nil {
			dst.Set(reflect.ValueOf(v))
		}
	default:
		d.fail()
	}
}

// structure decodes the mapping n into the struct dst, field by field.
func (d *decoder) structure(dst reflect.Value, pl *plan, n int32, depth int) {
	if d.t.nodes[n].kind != kindMapping {
		d.fail()
	}
	var set uint64     // the fields set, by ord
	var setMany []bool // the same for a struct of more than 64 keys
	if len(pl.fields) > 64 {
		setMany = make([]bool, len(pl.fields))
	}
	for k := d.t.first(n); k >= 0; k = d.t.nodes[d.t.nodes[k].next].next {
		key := &d.t.nodes[k]
		if key.kind != kindString {
			d.fail()
		}
		f, ok := pl.fields[string(d.t.text(key))]
		if !ok {
			d.fail() // unknown, or not decoded as checked
		}
		// goccy/go-yaml refuses a key given twice, which its parser lets
		// through in a flow mapping ({a, a}).
		if setMany != nil {
			if setMany[f.ord] {
				d.fail()
			}
			setMany[f.ord] = true
		} else {
			if set&(1<<f.ord) != 0 {
				d.fail()
			}
			set |= 1 << f.ord
		}
		var fv reflect.Value
		if len(f.index) == 1 {
			fv = dst.Field(f.index[0])
		} else {
			fv = dst.FieldByIndex(f.index)
		}
		d.fresh(fv, f.plan, key.next, depth+1)
	}
}

func (d *decoder) mapping(dst reflect.Value, pl *plan, n int32, depth int) {
	nd := &d.t.nodes[n]
	if nd.kind != kindMapping {
		d.fail()
	}
	m := reflect.MakeMapWithSize(pl.typ, nd.count())
	keyType, elemType := pl.typ.Key(), pl.typ.Elem()
	plainKey := keyType == reflect.TypeFor[string]()
	for k := d.t.first(n); k >= 0; k = d.t.nodes[d.t.nodes[k].next].next {
		key := &d.t.nodes[k]
		if !key.kind.isScalar() {
			d.fail()
		}
		var s string
		if key.kind != kindNull {
			s = d.t.scalarString(key)
		}
		kv := reflect.ValueOf(s)
		if !plainKey {
			kv = kv.Convert(keyType)
		}
		if m.MapIndex(kv).IsValid() {
			d.fail() // the same key twice once decoded ("1" and 01)
		}
		v := reflect.New(elemType).Elem()
		d.fresh(v, pl.elem, key.next, depth+1)
		m.SetMapIndex(kv, v)
	}
	dst.Set(m)
}

// text decodes a scalar into a type with UnmarshalText.
func (d *decoder) text(dst reflect.Value, pl *plan, n int32) {
	nd := &d.t.nodes[n]
	if !nd.kind.isScalar() {
		d.fail()
	}
	// The check: UnmarshalText on a zero value, with the scalar as written.
	u, ok := d.checked[pl.typ]
	if ok {
		reflect.ValueOf(u).Elem().SetZero()
	} else {
		u = reflect.New(pl.typ).Interface().(encoding.TextUnmarshaler)
		if d.checked == nil {
			d.checked = map[reflect.Type]encoding.TextUnmarshaler{}
		}
		d.checked[pl.typ] = u
	}
	d.scratch = append(d.scratch[:0], d.t.text(nd)...)
	if err := u.UnmarshalText(d.scratch); err != nil {
		d.fail()
	}
	if pl.iface {
		d.current = n
		err := dst.Addr().Interface().(yaml.InterfaceUnmarshaler).UnmarshalYAML(d.unmarshal)
		if d.bailed || err != nil {
			d.fail()
		}
		return
	}
	d.scratch = append(d.scratch[:0], d.t.scalarString(nd)...)
	if err := dst.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText(d.scratch); err != nil {
		d.fail()
	}
}

// any is goccy/go-yaml's nodeToValue: what it stores in an interface.
func (d *decoder) any(n int32, depth int) any {
	if depth > maxDepth {
		d.fail()
	}
	nd := &d.t.nodes[n]
	switch nd.kind {
	case kindMapping:
		m := make(map[string]any, nd.count())
		for k := d.t.first(n); k >= 0; k = d.t.nodes[d.t.nodes[k].next].next {
			key := &d.t.nodes[k]
			var s string
			switch key.kind {
			case kindNull:
				s = "null"
			case kindString:
				s = string(d.t.text(key))
			case kindMapping, kindSequence:
				d.fail()
			default:
				s = fmt.Sprint(d.t.scalarValue(key))
			}
			m[s] = d.any(key.next, depth+1)
		}
		return m
	case kindSequence:
		s := make([]any, 0, nd.count())
		for c := d.t.first(n); c >= 0; c = d.t.nodes[c].next {
			s = append(s, d.any(c, depth+1))
		}
		return s
	}
	return d.t.scalarValue(nd)
}
