package admin

// An internal test: the admin API's response types are unexported, and it
// is their JSON fields that the document has to describe.

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orchestrator-go/orchestrator"
)

// schemaTypes maps each object schema of openapi.json's components to the
// Go type whose JSON encoding (or decoding, for Endpoint and its parts) it
// describes.
var schemaTypes = map[string]reflect.Type{
	"Problem":                   reflect.TypeFor[document](),
	"FieldError":                reflect.TypeFor[orchestrator.FieldError](),
	"CircuitBreakerConfig":      reflect.TypeFor[orchestrator.CircuitBreakerConfig](),
	"HealthCheckConfig":         reflect.TypeFor[orchestrator.HealthCheckConfig](),
	"FallbackConfig":            reflect.TypeFor[orchestrator.FallbackConfig](),
	"HeaderRules":               reflect.TypeFor[orchestrator.HeaderRules](),
	"RateLimitConfig":           reflect.TypeFor[orchestrator.RateLimitConfig](),
	"AdaptiveConcurrencyConfig": reflect.TypeFor[orchestrator.AdaptiveConcurrencyConfig](),
	"Endpoint":                  reflect.TypeFor[orchestrator.Endpoint](),
	"HealthReport":              reflect.TypeFor[orchestrator.HealthReport](),
	"TrafficReport":             reflect.TypeFor[orchestrator.TrafficReport](),
	"RegisteredEndpoint":        reflect.TypeFor[orchestrator.RegisteredEndpoint](),
	"Target":                    reflect.TypeFor[orchestrator.Target](),
	"TargetTLS":                 reflect.TypeFor[orchestrator.TargetTLS](),
	"LoadBalancingConfig":       reflect.TypeFor[orchestrator.LoadBalancingConfig](),
	"StickyConfig":              reflect.TypeFor[orchestrator.StickyConfig](),
	"OutlierDetectionConfig":    reflect.TypeFor[orchestrator.OutlierDetectionConfig](),
	"RetryConfig":               reflect.TypeFor[orchestrator.RetryConfig](),
	"TargetReport":              reflect.TypeFor[orchestrator.TargetReport](),
	"EndpointList":              reflect.TypeFor[endpointList](),
	"ConfigEndpointList":        reflect.TypeFor[configEndpointList](),
	"Liveness":                  reflect.TypeFor[liveness](),
	"GatewayStatus":             reflect.TypeFor[gatewayStatus](),
	"HealthSummary":             reflect.TypeFor[healthSummary](),
	"RegistryStats":             reflect.TypeFor[registryStats](),
	"ConfigStatus":              reflect.TypeFor[ConfigStatus](),
	"ValidateResult":            reflect.TypeFor[validateResult](),
	"BreakerStatus":             reflect.TypeFor[breakerView](),
	"BreakerList":               reflect.TypeFor[breakerList](),
	"RouteInfo":                 reflect.TypeFor[orchestrator.RouteInfo](),
	"RouteList":                 reflect.TypeFor[routeList](),
	"Resolution":                reflect.TypeFor[resolution](),
	"RouteTest":                 reflect.TypeFor[routeTest](),
	"TargetCheck":               reflect.TypeFor[orchestrator.TargetCheck](),
	"Plan":                      reflect.TypeFor[orchestrator.Plan](),
	"PlannedEndpoint":           reflect.TypeFor[orchestrator.PlannedEndpoint](),
	"PlannedTarget":             reflect.TypeFor[orchestrator.PlannedTarget](),
	"EndpointChange":            reflect.TypeFor[orchestrator.EndpointChange](),
	"TargetChange":              reflect.TypeFor[orchestrator.TargetChange](),
	"FieldChange":               reflect.TypeFor[orchestrator.FieldChange](),
}

// scalarSchemas are the component schemas that describe a Go type encoded
// as a JSON string, not an object: they have no properties to compare, but
// a property that refers to one must have its Go type.
var scalarSchemas = map[string]reflect.Type{
	"Duration":     reflect.TypeFor[orchestrator.Duration](),
	"HealthStatus": reflect.TypeFor[orchestrator.HealthStatus](),
	"BreakerState": reflect.TypeFor[orchestrator.BreakerState](),
}

// schemaException is a property that is deliberately in only one of a
// schema and its Go type.
type schemaException struct {
	schema   string // as reported: "Problem", or "GatewayStatus.endpoints" for an inline object
	property string
	inGo     bool // true: a Go field the schema leaves out; false: a schema property Go lacks
	reason   string
}

var schemaExceptions = []schemaException{
	{"Problem", "endpoint_id", true, "problem.Details is shared with the proxy, whose problems name the endpoint; " +
		"the admin API never sets it, and omitempty leaves it out of every admin problem"},
}

// jsonFields returns the JSON member names that encoding/json uses for
// struct type t, with each field's Go type: the json tag's name, or the
// field name when the tag has none; fields tagged "-" and unexported
// fields are left out; the fields of an embedded struct without a tag name
// are promoted unless a shallower field has the same name.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				embedded = append(embedded, et)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	for _, et := range embedded {
		for name, ft := range jsonFields(et) {
			if _, ok := fields[name]; !ok {
				fields[name] = ft
			}
		}
	}
	return fields
}

// element strips pointers, slices and arrays: the type a $ref or an
// items.$ref describes.
func element(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
		t = t.Elem()
	}
	return t
}

var jsonMarshaler = reflect.TypeFor[json.Marshaler]()

// TestOpenAPISchemasMatchGoTypes holds every object schema of
// openapi.json's components to the Go type it describes: the schema's
// property names must be the type's JSON field names (but for the
// exceptions listed in schemaExceptions), an inline object property must
// match its struct field the same way, and a property that refers to
// another schema must have that schema's Go type. A schema that maps to no
// Go type fails too, so a new one gets a row in schemaTypes.
func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	raw, err := assets.ReadFile("assets/openapi.json")
	require.NoError(t, err)
	var doc struct {
		Components struct {
			Schemas map[string]map[string]any `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc), "openapi.json is JSON")
	schemas := doc.Components.Schemas
	require.NotEmpty(t, schemas, "openapi.json has components.schemas")

	for name, typ := range schemaTypes {
		_, ok := schemas[name]
		assert.True(t, ok, "components.schemas.%s: got none; want the schema of %v (schemaTypes maps it)", name, typ)
	}
	for name, typ := range scalarSchemas {
		schema, ok := schemas[name]
		if assert.True(t, ok, "components.schemas.%s: got none; want the schema of %v (scalarSchemas names it)", name, typ) {
			assert.NotContains(t, schema, "properties", "%s describes %v, which is not an object", name, typ)
		}
	}

	refType := func(ref string) (reflect.Type, string, bool) {
		name, ok := strings.CutPrefix(ref, "#/components/schemas/")
		if !ok {
			return nil, "", false
		}
		if typ, ok := schemaTypes[name]; ok {
			return typ, name, true
		}
		typ, ok := scalarSchemas[name]
		return typ, name, ok
	}

	used := map[schemaException]bool{}
	exception := func(where, property string, inGo bool) bool {
		for _, e := range schemaExceptions {
			if e.schema == where && e.property == property && e.inGo == inGo {
				used[e] = true
				return true
			}
		}
		return false
	}

	var match func(t *testing.T, where string, schema map[string]any, typ reflect.Type)
	match = func(t *testing.T, where string, schema map[string]any, typ reflect.Type) {
		t.Helper()
		require.Equal(t, reflect.Struct, typ.Kind(), "%s describes %v, which is not a struct", where, typ)
		props, _ := schema["properties"].(map[string]any)
		fields := jsonFields(typ)

		var missing, extra []string
		for name := range fields {
			if _, ok := props[name]; !ok && !exception(where, name, true) {
				missing = append(missing, name)
			}
		}
		for name := range props {
			if _, ok := fields[name]; !ok && !exception(where, name, false) {
				extra = append(extra, name)
			}
		}
		slices.Sort(missing)
		slices.Sort(extra)
		assert.Empty(t, missing, "%s: the JSON fields of %v that the schema has no property for", where, typ)
		assert.Empty(t, extra, "%s: the schema's properties that %v has no JSON field for", where, typ)

		for name, p := range props {
			ft, ok := fields[name]
			prop, isObject := p.(map[string]any)
			if !ok || !isObject {
				continue
			}
			ref, _ := prop["$ref"].(string)
			if items, ok := prop["items"].(map[string]any); ok && ref == "" {
				ref, _ = items["$ref"].(string)
			}
			et := element(ft)
			if et == reflect.TypeFor[orchestrator.Duration]() && ref == "" {
				// Issue 13: every duration in admin JSON is a number of
				// seconds, and the document must say so.
				assert.Equal(t, "number", prop["type"], "%s.%s is a Duration, which encodes as a number of seconds; want type number (or a $ref to Duration)", where, name)
			}
			switch {
			case ref != "":
				want, target, ok := refType(ref)
				if ok && et.Kind() != reflect.Interface {
					assert.Equal(t, want, et, "%s.%s refers to %s, which describes %v; the field is %v", where, name, target, want, ft)
				}
			case prop["properties"] != nil && et.Kind() == reflect.Struct:
				match(t, where+"."+name, prop, et)
			case et.Kind() == reflect.Struct && !et.Implements(jsonMarshaler):
				t.Errorf("%s.%s: the field is the struct %v; want its properties described (inline or by $ref), got neither", where, name, ft)
			}
		}
	}

	names := make([]string, 0, len(schemas))
	for name := range schemas {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		typ, ok := schemaTypes[name]
		if !ok {
			if _, scalar := scalarSchemas[name]; !scalar {
				t.Errorf("components.schemas.%s: got a schema no Go type is mapped to; want a row in schemaTypes (or scalarSchemas)", name)
			}
			continue
		}
		t.Run(name, func(t *testing.T) {
			match(t, name, schemas[name], typ)
		})
	}

	for _, e := range schemaExceptions {
		assert.True(t, used[e], "schemaExceptions lists %s.%s (in Go only: %v), which is not a difference any more; remove the row", e.schema, e.property, e.inGo)
	}
}

// TestJSONFields pins jsonFields to encoding/json's own view of a struct:
// the member names of a marshalled value with every field set.
func TestJSONFields(t *testing.T) {
	type inner struct {
		A string `json:"a"`
		B string // no tag: the field name
		C string `json:"c"` // shadowed by the outer C
	}
	type outer struct {
		inner
		C       string `json:"c,omitempty"`
		D       *int   `json:"d"`
		Skipped string `json:"-"`
		hidden  string
		Named   inner     `json:"named"`
		At      time.Time `json:"at"`
	}
	n := 1
	b, err := json.Marshal(outer{inner: inner{A: "a", B: "b", C: "c"}, C: "c", D: &n, Skipped: "x", hidden: "y"})
	require.NoError(t, err)
	var members map[string]any
	require.NoError(t, json.Unmarshal(b, &members))
	want := make([]string, 0, len(members))
	for k := range members {
		want = append(want, k)
	}
	got := make([]string, 0)
	for k := range jsonFields(reflect.TypeFor[outer]()) {
		got = append(got, k)
	}
	assert.ElementsMatch(t, want, got)
	assert.Equal(t, reflect.TypeFor[inner](), jsonFields(reflect.TypeFor[outer]())["named"])
}
