package yamlconf

import (
	"unicode/utf8"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// parseGuarded parses data with goccy/go-yaml, as parser.ParseBytes does,
// but refuses between its scanner and its parser what would cost the
// parser more than linear time (read from its own tokens: see
// guardTokens), and after the parser what would cost its decoder more (the
// nodes aliases add: see guardAliases). prescan refuses the same before
// any of it runs; this holds where prescan reads a file otherwise.
func parseGuarded(data []byte) (*ast.File, []Problem) {
	tokens := lexer.Tokenize(string(data))
	if tokens.InvalidToken() == nil {
		if p := guardTokens(tokens); p != nil {
			return nil, []Problem{*p}
		}
	}
	file, err := parser.Parse(tokens, 0)
	if err != nil {
		return nil, []Problem{fromYAMLError(err)}
	}
	if p := guardAliases(file); p != nil {
		return nil, []Problem{*p}
	}
	return file, nil
}

// guardTokens feeds goccy/go-yaml's tokens to a tracker: the nesting, the
// keys of block mappings, the paths, and the documents, as prescan counts
// them from the text. Aliases are left to guardAliases.
func guardTokens(tokens token.Tokens) *Problem {
	var t tracker
	var pend *token.Token // a scalar that the next token makes a key, or a value
	settle := func() {
		if pend != nil {
			t.scalar(tokenPos(pend))
			pend = nil
		}
	}
	directiveLine := 0
	for i := 0; i < len(tokens) && t.problem == nil; i++ {
		tk := tokens[i]
		at := tokenPos(tk)
		if tk.Type == token.CommentType || at.line == directiveLine {
			continue
		}
		if tk.Type != token.MappingValueType {
			settle()
		}
		switch tk.Type {
		case token.DirectiveType:
			directiveLine = at.line // the directive's name and values
		case token.DocumentHeaderType:
			t.docStart(at)
		case token.DocumentEndType:
			t.docEnd()
		case token.SequenceStartType, token.MappingStartType:
			t.flowOpen(at, tk.Type == token.SequenceStartType)
		case token.SequenceEndType, token.MappingEndType:
			t.flowClose()
		case token.CollectEntryType:
			t.flowEntry()
		case token.SequenceEntryType:
			t.entry(at)
		case token.MappingKeyType:
			t.key(at, 0)
		case token.MappingValueType:
			if pend != nil {
				t.key(tokenPos(pend), utf8.RuneCountInString(pend.Value))
				pend = nil
			} else {
				t.key(at, 0)
			}
		case token.AnchorType, token.AliasType:
			t.node(at)
			if i+1 < len(tokens) && tokens[i+1].Type != token.CommentType {
				i++ // the name; the node an anchor names, and an alias, are counted by guardAliases
			}
		case token.TagType:
		case token.LiteralType, token.FoldedType:
			t.scalar(at)
			if i+1 < len(tokens) && tokens[i+1].Type == token.StringType {
				i++ // the block scalar's text
			}
		default:
			pend = tk
		}
	}
	settle()
	if t.problem == nil {
		t.end()
	}
	return t.problem
}

func tokenPos(tk *token.Token) pos {
	if tk.Position == nil {
		return pos{1, 1}
	}
	return pos{tk.Position.Line, tk.Position.Column}
}

// guardAliases counts, in source order, the nodes each anchor's node holds
// and what each alias adds (its anchor's nodes, with what aliases in them
// add), as goccy/go-yaml's decoder copies them, and refuses the file at
// the alias past which they add up to more than maxAliasNodes.
func guardAliases(file *ast.File) *Problem {
	g := aliasGuard{sizes: make(map[string]int)}
	for _, doc := range file.Docs {
		g.size(doc.Body, 0)
		if g.problem != nil {
			return g.problem
		}
	}
	return nil
}

type aliasGuard struct {
	sizes    map[string]int
	expanded int
	problem  *Problem
}

// size returns the nodes n holds, aliases expanded. depth guards the
// recursion on a tree guardTokens has already held to maxDepth.
func (g *aliasGuard) size(n ast.Node, depth int) int {
	if n == nil || g.problem != nil || depth > 2*maxDepth+8 {
		return 0
	}
	switch v := n.(type) {
	case *ast.AnchorNode:
		s := g.size(v.Value, depth+1)
		if v.Name != nil {
			g.sizes[v.Name.GetToken().Value] = s
		}
		return s
	case *ast.AliasNode:
		s := 1
		if v.Value != nil {
			if size, ok := g.sizes[v.Value.GetToken().Value]; ok {
				s = size
			}
		}
		g.expanded += s
		if g.expanded > maxAliasNodes && g.problem == nil {
			line, column := position(v)
			g.problem = &Problem{Line: line, Column: column, Message: msgAliases}
		}
		return s
	case *ast.TagNode:
		return g.size(v.Value, depth+1)
	case *ast.MappingKeyNode:
		return g.size(v.Value, depth+1)
	case *ast.MappingNode:
		s := 1
		for _, kv := range v.Values {
			s += g.size(kv.Key, depth+1) + g.size(kv.Value, depth+1)
		}
		return s
	case *ast.MappingValueNode:
		return 1 + g.size(v.Key, depth+1) + g.size(v.Value, depth+1)
	case *ast.SequenceNode:
		s := 1
		for _, item := range v.Values {
			s += g.size(item, depth+1)
		}
		return s
	case *ast.CommentGroupNode, *ast.DirectiveNode:
		return 0
	}
	return 1
}
