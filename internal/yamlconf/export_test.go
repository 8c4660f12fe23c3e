package yamlconf

import (
	"reflect"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"
)

// DecodeOriginal is Decode as it was before it decoded from its own
// syntax tree, kept as the reference Decode is held to: goccy/go-yaml
// parses, check finds the problems, then goccy/go-yaml parses again and
// decodes.
func DecodeOriginal(data []byte, v any) (*Document, []Problem) {
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, []Problem{fromYAMLError(err)}
	}
	doc := &Document{file: file}
	var problems []Problem
	for _, d := range file.Docs {
		if d.Body == nil {
			continue
		}
		check(d.Body, reflect.TypeOf(v).Elem(), "", &problems)
	}
	if len(problems) > 0 {
		return doc, problems
	}
	if err := yaml.UnmarshalWithOptions(data, v); err != nil {
		return doc, []Problem{fromYAMLError(err)}
	}
	return doc, nil
}
