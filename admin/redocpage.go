package admin

import (
	"strconv"
	"strings"
)

// redocPage is what redoc.html renders: the document's operations grouped
// by tag, its security schemes and its component schemas.
type redocPage struct {
	Title, Version, Description string
	Security                    []redocScheme
	Tags                        []redocTag
	Schemas                     []redocSchema
}

// redocScheme is one security scheme of the document.
type redocScheme struct {
	Name, Type, Scheme, Description string
}

// redocTag is a group of operations: a tag of the document, in its order.
type redocTag struct {
	Name, Description, Anchor string
	Ops                       []redocOp
}

// redocOp is one operation: a method of a path.
type redocOp struct {
	// Method is lower-case, as the document's keys spell it.
	Method, Path, Anchor string
	Summary, Description string
	// Open is true when the operation declares security: [], no
	// authentication.
	Open       bool
	Deprecated bool
	Params     []redocParam
	Body       *redocBody
	Responses  []redocResponse
}

// redocParam is one parameter of an operation.
type redocParam struct {
	Name, In, Description string
	Required              bool
	Schema                schemaView
}

// redocBody is an operation's request body.
type redocBody struct {
	Description string
	Required    bool
	Content     []redocMedia
}

// redocMedia is one media type of a body and its schema.
type redocMedia struct {
	Type   string
	Schema *schemaView
}

// redocResponse is one response of an operation.
type redocResponse struct {
	// Status is the code ("200", "4XX", "default"); Class its first
	// character, for the colour.
	Status, Class, Description string
	Headers                    []redocParam
	Content                    []redocMedia
}

// redocSchema is one schema of components.schemas, with a section of its own.
type redocSchema struct {
	Name, Anchor string
	Schema       schemaView
}

// schemaView is a schema as the page shows it. A $ref to a component
// schema is a link to that schema's section, never expanded, so that the
// view is finite whatever the document's cycles; other $refs are resolved
// in place.
type schemaView struct {
	// Ref names the component schema this schema refers to; RefAnchor is
	// the id of its section.
	Ref, RefAnchor string
	// Type is the type as the page spells it: "object", "string | null";
	// "any" when the schema says nothing.
	Type        string
	Description string
	Notes       []schemaNote
	Properties  []schemaProperty
	// Items is an array's element schema, Values a map's (a schema in
	// additionalProperties).
	Items, Values *schemaView
	// Variants are the schemas of oneOf, anyOf or allOf; VariantKind says
	// which ("one of").
	VariantKind string
	Variants    []schemaView
}

// schemaNote is a constraint or an example of a schema, such as format
// "uri" or values "config", "api" (its enum).
type schemaNote struct {
	Name, Value string
}

// schemaProperty is one property of an object schema.
type schemaProperty struct {
	Name     string
	Required bool
	Schema   schemaView
}

// maxSchemaDepth bounds the nesting of inline schemas, in case a document
// loops through $refs that are not component schemas.
const maxSchemaDepth = 32

// schemaPrefix starts every $ref to a component schema.
const schemaPrefix = "#/components/schemas/"

// redocMethods are the operation keys of a path item, in the order the
// page lists them.
var redocMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// redocBuilder turns the decoded document into a redocPage.
type redocBuilder struct {
	root    *jsonObject
	schemas map[string]string // component schema name to its section's id
	anchors map[string]bool   // ids given out, so that each is unique
}

// newRedocBuilder gives each component schema the id of its section.
func newRedocBuilder(root *jsonObject) *redocBuilder {
	b := &redocBuilder{root: root, schemas: map[string]string{}, anchors: map[string]bool{}}
	root.obj("components").obj("schemas").each(func(name string, _ *jsonObject) {
		b.schemas[name] = b.uniqueAnchor("schema", name)
	})
	return b
}

// uniqueAnchor returns an element id for name that no other element has.
func (b *redocBuilder) uniqueAnchor(prefix, name string) string {
	id := anchor(prefix, name)
	for i := 2; b.anchors[id]; i++ {
		id = anchor(prefix, name+"-"+strconv.Itoa(i))
	}
	b.anchors[id] = true
	return id
}

// page builds the whole view.
func (b *redocBuilder) page() redocPage {
	info := b.root.obj("info")
	p := redocPage{Title: info.str("title"), Version: info.str("version"), Description: info.str("description")}
	if p.Title == "" {
		p.Title = "API"
	}
	b.root.obj("components").obj("securitySchemes").each(func(name string, s *jsonObject) {
		p.Security = append(p.Security, redocScheme{Name: name, Type: s.str("type"), Scheme: s.str("scheme"), Description: s.str("description")})
	})
	p.Tags = b.tags()
	b.root.obj("components").obj("schemas").each(func(name string, s *jsonObject) {
		p.Schemas = append(p.Schemas, redocSchema{Name: name, Anchor: b.schemas[name], Schema: b.schema(s, 0)})
	})
	return p
}

// tags groups the operations by their first tag: the document's tags in
// its order, then any tag it uses without declaring, then "other" for
// operations without one. Empty tags are left out.
func (b *redocBuilder) tags() []redocTag {
	var out []redocTag
	index := map[string]int{}
	add := func(name, description string) {
		index[name] = len(out)
		out = append(out, redocTag{Name: name, Description: description})
	}
	for _, t := range b.root.arr("tags") {
		if t, ok := t.(*jsonObject); ok && t.str("name") != "" {
			if _, dup := index[t.str("name")]; !dup {
				add(t.str("name"), t.str("description"))
			}
		}
	}
	b.root.obj("paths").each(func(path string, item *jsonObject) {
		for _, m := range redocMethods {
			op := item.obj(m)
			if op == nil {
				continue
			}
			tag := "other"
			if tags := op.arr("tags"); len(tags) > 0 {
				if s, ok := tags[0].(string); ok && s != "" {
					tag = s
				}
			}
			if _, ok := index[tag]; !ok {
				add(tag, "")
			}
			out[index[tag]].Ops = append(out[index[tag]].Ops, b.operation(path, m, item, op))
		}
	})
	kept := out[:0]
	for _, t := range out {
		if len(t.Ops) > 0 {
			t.Anchor = b.uniqueAnchor("tag", t.Name)
			kept = append(kept, t)
		}
	}
	return kept
}

// operation builds one operation of a path item.
func (b *redocBuilder) operation(path, method string, item, op *jsonObject) redocOp {
	id := op.str("operationId")
	if id == "" {
		id = method + path
	}
	security, hasSecurity := op.get("security").([]any)
	v := redocOp{
		Method:      method,
		Path:        path,
		Anchor:      b.uniqueAnchor("op", id),
		Summary:     op.str("summary"),
		Description: op.str("description"),
		Open:        hasSecurity && len(security) == 0,
		Deprecated:  op.get("deprecated") == true,
		Params:      b.parameters(item.arr("parameters"), op.arr("parameters")),
	}
	if body := b.resolve(op.obj("requestBody")); body != nil {
		v.Body = &redocBody{Description: body.str("description"), Required: body.get("required") == true, Content: b.content(body.obj("content"))}
	}
	op.obj("responses").each(func(status string, r *jsonObject) {
		r = b.resolve(r)
		resp := redocResponse{Status: status, Class: strings.ToLower(status[:min(1, len(status))]), Description: r.str("description"), Content: b.content(r.obj("content"))}
		r.obj("headers").each(func(name string, h *jsonObject) {
			h = b.resolve(h)
			resp.Headers = append(resp.Headers, redocParam{Name: name, In: "header", Description: h.str("description"),
				Required: h.get("required") == true, Schema: b.schema(h.obj("schema"), 0)})
		})
		v.Responses = append(v.Responses, resp)
	})
	return v
}

// parameters merges a path item's parameters with an operation's, which
// override those of the same name and location.
func (b *redocBuilder) parameters(lists ...[]any) []redocParam {
	var out []redocParam
	at := map[string]int{}
	for _, list := range lists {
		for _, raw := range list {
			p, _ := raw.(*jsonObject)
			p = b.resolve(p)
			if p == nil {
				continue
			}
			v := redocParam{Name: p.str("name"), In: p.str("in"), Description: p.str("description"),
				Required: p.get("required") == true, Schema: b.schema(p.obj("schema"), 0)}
			if ex, ok := literal(p.get("example")); ok && p.get("example") != nil {
				v.Schema.Notes = append(v.Schema.Notes, schemaNote{"example", ex})
			}
			key := v.In + "\x00" + v.Name
			if i, seen := at[key]; seen {
				out[i] = v
				continue
			}
			at[key] = len(out)
			out = append(out, v)
		}
	}
	return out
}

// content lists the media types of a body or a response with their schemas.
func (b *redocBuilder) content(c *jsonObject) []redocMedia {
	var out []redocMedia
	c.each(func(mediaType string, m *jsonObject) {
		media := redocMedia{Type: mediaType}
		if s := m.obj("schema"); s != nil {
			v := b.schema(s, 0)
			media.Schema = &v
		}
		out = append(out, media)
	})
	return out
}

// resolve follows o's $ref, if any, to the object it names: a parameter,
// a request body, a response or a header of the components. It returns
// nil when a $ref does not resolve.
func (b *redocBuilder) resolve(o *jsonObject) *jsonObject {
	for range maxSchemaDepth {
		ref := o.str("$ref")
		if ref == "" {
			return o
		}
		o = b.lookup(ref)
	}
	return nil
}

// lookup resolves a local JSON pointer such as "#/components/responses/X".
func (b *redocBuilder) lookup(ref string) *jsonObject {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	cur := b.root
	for _, part := range strings.Split(rest, "/") {
		cur = cur.obj(strings.NewReplacer("~1", "/", "~0", "~").Replace(part))
		if cur == nil {
			return nil
		}
	}
	return cur
}

// schema builds the view of a schema, depth levels below the one the page
// shows at the top of a table.
func (b *redocBuilder) schema(s *jsonObject, depth int) schemaView {
	if s == nil {
		return schemaView{Type: "any"}
	}
	if depth > maxSchemaDepth {
		return schemaView{Type: "…", Description: "nested too deeply to show"}
	}
	if ref := s.str("$ref"); ref != "" {
		if name, ok := strings.CutPrefix(ref, schemaPrefix); ok && b.schemas[name] != "" {
			return schemaView{Ref: name, RefAnchor: b.schemas[name], Description: s.str("description")}
		}
		target := b.lookup(ref)
		if target == nil {
			return schemaView{Type: "unresolved " + ref, Description: s.str("description")}
		}
		v := b.schema(target, depth+1)
		if d := s.str("description"); d != "" {
			v.Description = d
		}
		return v
	}
	v := schemaView{Type: schemaType(s), Description: s.str("description"), Notes: schemaNotes(s)}
	required := map[string]bool{}
	for _, r := range s.arr("required") {
		if r, ok := r.(string); ok {
			required[r] = true
		}
	}
	s.obj("properties").each(func(name string, p *jsonObject) {
		v.Properties = append(v.Properties, schemaProperty{Name: name, Required: required[name], Schema: b.schema(p, depth+1)})
	})
	if items := s.obj("items"); items != nil {
		iv := b.schema(items, depth+1)
		v.Items = &iv
	}
	if values := s.obj("additionalProperties"); values != nil {
		vv := b.schema(values, depth+1)
		v.Values = &vv
	}
	for _, kw := range []struct{ key, kind string }{{"oneOf", "one of"}, {"anyOf", "any of"}, {"allOf", "all of"}} {
		for _, raw := range s.arr(kw.key) {
			if sub, ok := raw.(*jsonObject); ok {
				v.VariantKind = kw.kind
				v.Variants = append(v.Variants, b.schema(sub, depth+1))
			}
		}
	}
	return v
}

// schemaType spells a schema's type: its "type" ("string", or "string |
// null" for a list), else what its keywords imply, else "any".
func schemaType(s *jsonObject) string {
	switch t := s.get("type").(type) {
	case string:
		return t
	case []any:
		var names []string
		for _, n := range t {
			if n, ok := n.(string); ok {
				names = append(names, n)
			}
		}
		return strings.Join(names, " | ")
	}
	switch {
	case s.get("properties") != nil || s.get("additionalProperties") != nil:
		return "object"
	case s.get("items") != nil:
		return "array"
	case s.get("oneOf") != nil || s.get("anyOf") != nil || s.get("allOf") != nil:
		return ""
	case s.get("const") != nil || s.get("enum") != nil:
		return ""
	}
	return "any"
}

// schemaNotes lists a schema's constraints, default and scalar example.
// An example that is an object or an array, or a whole request body's, is
// left to /docs, which fills its body field with it: in a reference it
// would repeat the schema.
func schemaNotes(s *jsonObject) []schemaNote {
	var out []schemaNote
	for _, key := range []string{"format", "pattern", "const", "minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum",
		"minLength", "maxLength", "minItems", "maxItems", "default", "example"} {
		v, ok := s.vals[key]
		if str, isString := v.(string); isString && (key == "format" || key == "pattern") {
			out = append(out, schemaNote{key, str}) // a string by definition: no quotes
		} else if lit, isScalar := literal(v); ok && isScalar {
			out = append(out, schemaNote{key, lit})
		}
	}
	if enum := s.arr("enum"); len(enum) > 0 {
		var vals []string
		for _, e := range enum {
			if lit, ok := literal(e); ok {
				vals = append(vals, lit)
			}
		}
		out = append(out, schemaNote{"values", strings.Join(vals, ", ")})
	}
	if s.get("additionalProperties") == false {
		out = append(out, schemaNote{"additional properties", "refused"})
	}
	return out
}
