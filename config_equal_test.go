package orchestrator

import (
	"encoding/json"
	"reflect"
	"regexp"
	"testing"
	"time"
)

// endpointVariants returns endpoints that each differ from base in one
// field, found by reflection (nested configs included), plus the empty
// forms that JSON treats as missing: a field added to Endpoint is covered
// without this test changing.
func endpointVariants(t *testing.T, base Endpoint) []Endpoint {
	t.Helper()
	var out []Endpoint
	var walk func(path string, get func(e *Endpoint) reflect.Value, typ reflect.Type)
	walk = func(path string, get func(e *Endpoint) reflect.Value, typ reflect.Type) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			if f.Tag.Get("json") == "-" {
				// In-process only (a custom Selector): compared by
				// identity, and not part of the JSON form.
				continue
			}
			i := i
			field := func(e *Endpoint) reflect.Value { return get(e).Field(i) }
			name := path + f.Name
			ft := f.Type
			if ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct {
				// Set but zero, then each field of the pointed-to struct.
				e := base
				field(&e).Set(reflect.New(ft.Elem()))
				out = append(out, e)
				walk(name+".", func(e *Endpoint) reflect.Value {
					p := field(e)
					if p.IsNil() {
						p.Set(reflect.New(ft.Elem()))
					}
					return p.Elem()
				}, ft.Elem())
				continue
			}
			for _, v := range sampleValues(t, name, ft) {
				e := deepCopyEndpoint(t, base)
				field(&e).Set(v)
				out = append(out, e)
			}
		}
	}
	walk("", func(e *Endpoint) reflect.Value { return reflect.ValueOf(e).Elem() }, reflect.TypeOf(Endpoint{}))
	return out
}

// sampleValues returns non-zero values of type typ, and for slices and maps
// an empty non-nil one too.
func sampleValues(t *testing.T, name string, typ reflect.Type) []reflect.Value {
	t.Helper()
	v := reflect.New(typ).Elem()
	switch typ.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Float64:
		v.SetFloat(2.5)
	case reflect.Int, reflect.Int64:
		if typ == reflect.TypeOf(Duration(0)) {
			v.SetInt(int64(5 * time.Second))
		} else {
			v.SetInt(7)
		}
	case reflect.Pointer:
		switch typ.Elem().Kind() {
		case reflect.Bool:
			f, tr := reflect.New(typ.Elem()), reflect.New(typ.Elem())
			tr.Elem().SetBool(true)
			return []reflect.Value{f, tr}
		case reflect.Int:
			zero, seven := reflect.New(typ.Elem()), reflect.New(typ.Elem())
			seven.Elem().SetInt(7)
			return []reflect.Value{zero, seven}
		case reflect.Struct:
			p := reflect.New(typ.Elem())
			p.Elem().Set(sampleValues(t, name, typ.Elem())[0])
			return []reflect.Value{reflect.New(typ.Elem()), p}
		case reflect.Slice:
			// Set to each sample of the slice: empty and one item.
			var out []reflect.Value
			for _, sv := range sampleValues(t, name, typ.Elem()) {
				p := reflect.New(typ.Elem())
				p.Elem().Set(sv)
				out = append(out, p)
			}
			return out
		}
		t.Fatalf("%s: no sample for %v; teach the test", name, typ)
	case reflect.Struct:
		// Every field set (a list element such as a Target).
		for i := 0; i < typ.NumField(); i++ {
			if typ.Field(i).Tag.Get("json") != "-" {
				vals := sampleValues(t, name+"."+typ.Field(i).Name, typ.Field(i).Type)
				v.Field(i).Set(vals[len(vals)-1])
			}
		}
	case reflect.Slice:
		one := reflect.MakeSlice(typ, 1, 1)
		one.Index(0).Set(sampleValues(t, name+"[]", typ.Elem())[0])
		return []reflect.Value{reflect.MakeSlice(typ, 0, 0), one}
	case reflect.Map:
		one := reflect.MakeMap(typ)
		one.SetMapIndex(sampleValues(t, name+" key", typ.Key())[0], sampleValues(t, name+" value", typ.Elem())[0])
		return []reflect.Value{reflect.MakeMap(typ), one}
	default:
		t.Fatalf("%s: no sample for %v; teach the test", name, typ)
	}
	return []reflect.Value{v}
}

// deepCopyEndpoint copies e through JSON, so that setting a nested field of
// the copy leaves e alone.
func deepCopyEndpoint(t *testing.T, e Endpoint) Endpoint {
	t.Helper()
	var out Endpoint
	if err := json.Unmarshal(mustJSON(e), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestEndpointsEqualMatchesJSON: endpointsEqual says equal exactly when the
// JSON forms are equal, for endpoints differing in any one field (nested
// ones included) and for every pair of them.
func TestEndpointsEqualMatchesJSON(t *testing.T) {
	off := false
	bases := []Endpoint{
		{Name: "a", URL: "http://127.0.0.1:1"},
		{Name: "a", Version: "v1", URL: "http://127.0.0.1:1", Methods: []string{"GET"},
			CircuitBreaker: &CircuitBreakerConfig{Disabled: &off, FailureStatuses: []int{502}},
			HealthCheck:    &HealthCheckConfig{Enabled: &off},
			Fallback:       &FallbackConfig{Headers: map[string]string{"A": "b"}}},
	}
	for _, base := range bases {
		all := append([]Endpoint{base}, endpointVariants(t, base)...)
		if len(all) < 30 {
			t.Fatalf("only %d variants; the walk missed fields", len(all))
		}
		for i, a := range all {
			for j, b := range all {
				want := string(mustJSON(a)) == string(mustJSON(b))
				if got := endpointsEqual(a, b); got != want {
					t.Fatalf("variants %d and %d: endpointsEqual %v, JSON equal %v\n%s\n%s", i, j, got, want, mustJSON(a), mustJSON(b))
				}
			}
		}
	}
}

// FuzzValidSegment: validSegment accepts exactly what the pattern of names,
// versions and ids does.
func FuzzValidSegment(f *testing.F) {
	re := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	for _, s := range []string{"", "a", ".", "..", "a.b", "-a", "a-", "é", "a\n", "A_9", "a b", "svc9999_v1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if want := re.MatchString(s); validSegment(s) != want {
			t.Fatalf("%q: validSegment %v, pattern %v", s, !want, want)
		}
	})
}
