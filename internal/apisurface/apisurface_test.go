package apisurface

import (
	"go/ast"
	"go/parser"
	"go/token"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCountRule pins the counting rule on a small package.
func TestCountRule(t *testing.T) {
	src := `package p
type T struct { A, b int; C string; *D; e }
type D struct{}
type e int
func (T) M() {}
func (e) N() {}
func (T) m() {}
func F() {}
func f() {}
var V, w = 1, 2
const (C1 = iota; C2; c3)
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	require.NoError(t, err)
	// T, A, C, D(embedded), D, M, F, V, C1, C2 (not e.N: e is unexported)
	assert.Equal(t, 10, countPackage(&ast.Package{Name: "p", Files: map[string]*ast.File{"p.go": f}}))
}

// TestReport prints the module's exported surface (go test -v -run
// TestReport ./internal/apisurface).
func TestReport(t *testing.T) {
	counts, err := Count("../..")
	require.NoError(t, err)
	require.NotZero(t, counts["."], "the tor package has exported names")
	t.Logf("exported identifiers per package:\n%s", Report(counts))
}
