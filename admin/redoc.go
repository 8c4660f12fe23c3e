package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// The /redoc page: a read-only reference of openapi.json, rendered once in
// Go from the embedded document, without a script and without loading
// anything from elsewhere. redocpage.go builds the view it renders.

// jsonObject is a decoded JSON object that keeps its keys in document
// order, so that the page lists paths, properties and responses as the
// document does.
type jsonObject struct {
	keys []string
	vals map[string]any
}

// decodeOrdered decodes the next JSON value of dec: objects as
// *jsonObject, arrays as []any, numbers as json.Number (dec must use
// UseNumber), and strings, booleans and null as encoding/json does.
func decodeOrdered(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		obj := &jsonObject{vals: map[string]any{}}
		for dec.More() {
			keyTok, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key, _ := keyTok.(string)
			v, err := decodeOrdered(dec)
			if err != nil {
				return nil, err
			}
			if _, dup := obj.vals[key]; !dup {
				obj.keys = append(obj.keys, key)
			}
			obj.vals[key] = v
		}
		_, err := dec.Token() // }
		return obj, err
	case json.Delim('['):
		arr := []any{}
		for dec.More() {
			v, err := decodeOrdered(dec)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err := dec.Token() // ]
		return arr, err
	}
	return tok, nil
}

// get returns the value of key, nil when o is nil or lacks it.
func (o *jsonObject) get(key string) any {
	if o == nil {
		return nil
	}
	return o.vals[key]
}

// obj returns the object at key, nil when there is none.
func (o *jsonObject) obj(key string) *jsonObject {
	v, _ := o.get(key).(*jsonObject)
	return v
}

// str returns the string at key, "" when there is none.
func (o *jsonObject) str(key string) string {
	v, _ := o.get(key).(string)
	return v
}

// arr returns the array at key, nil when there is none.
func (o *jsonObject) arr(key string) []any {
	v, _ := o.get(key).([]any)
	return v
}

// each calls fn with every member of o whose value is an object, in
// document order.
func (o *jsonObject) each(fn func(key string, v *jsonObject)) {
	if o == nil {
		return
	}
	for _, k := range o.keys {
		if v, ok := o.vals[k].(*jsonObject); ok {
			fn(k, v)
		}
	}
}

// literal spells a scalar JSON value as the document does: strings quoted,
// numbers, booleans and null bare. ok is false for objects and arrays.
func literal(v any) (s string, ok bool) {
	switch v.(type) {
	case *jsonObject, []any:
		return "", false
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // html/template escapes the page
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v), true
	}
	return strings.TrimSuffix(buf.String(), "\n"), true
}

// anchorUnsafe matches what an element id built from a name should not
// hold, so that ids and the #fragments naming them read the same.
var anchorUnsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// anchor makes an element id from a prefix and a name.
func anchor(prefix, name string) string {
	return prefix + "-" + strings.Trim(anchorUnsafe.ReplaceAllString(name, "-"), "-")
}

// renderRedoc builds the /redoc page from the OpenAPI document and its
// Content-Security-Policy, which allows its one inline style by hash and
// nothing else: the page runs no script and loads nothing.
func renderRedoc(openapi []byte, pageHTML, css string) (page []byte, csp string, err error) {
	dec := json.NewDecoder(bytes.NewReader(openapi))
	dec.UseNumber()
	v, err := decodeOrdered(dec)
	if err != nil {
		return nil, "", fmt.Errorf("decoding openapi.json: %w", err)
	}
	root, ok := v.(*jsonObject)
	if !ok {
		return nil, "", fmt.Errorf("openapi.json is not a JSON object")
	}
	if !strings.Contains(pageHTML, "/*STYLE*/") {
		return nil, "", fmt.Errorf("redoc.html lacks its /*STYLE*/ placeholder")
	}
	tmpl, err := template.New("redoc").Funcs(template.FuncMap{
		"upper": strings.ToUpper,
	}).Parse(strings.Replace(pageHTML, "/*STYLE*/", css, 1))
	if err != nil {
		return nil, "", fmt.Errorf("parsing redoc.html: %w", err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, newRedocBuilder(root).page()); err != nil {
		return nil, "", fmt.Errorf("rendering redoc.html: %w", err)
	}
	csp = fmt.Sprintf("default-src 'none'; style-src '%s'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'", cspHash(css))
	return buf.Bytes(), csp, nil
}

func (h *Handler) getRedoc(w http.ResponseWriter, r *http.Request) error {
	setPageHeaders(w, h.pages.redocCSP)
	w.Header().Set("Content-Length", strconv.Itoa(len(h.pages.redoc)))
	w.Write(h.pages.redoc)
	return nil
}
