package jsondiff_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/orchestrator-go/orchestrator/internal/jsondiff"
)

type section struct {
	Threshold int `json:"threshold,omitempty"`
}

type doc struct {
	Name    string   `json:"name"`
	Methods []string `json:"methods,omitempty"`
	Breaker *section `json:"breaker,omitempty"`
}

func TestLeaves(t *testing.T) {
	cases := []struct {
		name     string
		old, cur doc
		want     []jsondiff.Change
	}{
		{"equal", doc{Name: "a"}, doc{Name: "a"}, nil},
		{"a scalar", doc{Name: "a"}, doc{Name: "b"}, []jsondiff.Change{{Field: "p.name", Old: "a", New: "b"}}},
		{"a list is one leaf", doc{Methods: []string{"GET"}}, doc{Methods: []string{"GET", "POST"}},
			[]jsondiff.Change{{Field: "p.methods", Old: []any{"GET"}, New: []any{"GET", "POST"}}}},
		{"a section added lists its leaves", doc{}, doc{Breaker: &section{Threshold: 3}},
			[]jsondiff.Change{{Field: "p.breaker.threshold", Old: nil, New: float64(3)}}},
		{"a section removed lists its leaves", doc{Breaker: &section{Threshold: 3}}, doc{},
			[]jsondiff.Change{{Field: "p.breaker.threshold", Old: float64(3), New: nil}}},
		{"an empty section is the section itself", doc{}, doc{Breaker: &section{}},
			[]jsondiff.Change{{Field: "p.breaker", Old: nil, New: map[string]any{}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, jsondiff.Leaves("p", c.old, c.cur))
		})
	}
}
