package apisurface

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strings"
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
	pkg := &ast.Package{Name: "p", Files: map[string]*ast.File{"p.go": f}}
	assert.Equal(t, []string{"C1", "C2", "D", "F", "T", "T.A", "T.C", "T.D", "T.M", "V"}, sorted(packageNames(pkg)))
	assert.Equal(t, 10, countPackage(&ast.Package{Name: "p", Files: map[string]*ast.File{"p.go": f}}))
}

// TestReport prints the module's exported surface (go test -v -run
// TestReport ./internal/apisurface).
func TestReport(t *testing.T) {
	counts, err := Count("../..")
	require.NoError(t, err)
	require.NotZero(t, counts["."], "the tor package has exported names")
	t.Logf("exported identifiers per package:\n%s", Report(counts))
	// GOTORCON_API_NAMES=file writes every name, one "pkg name" per line,
	// to compare two versions of the module name by name.
	if out := os.Getenv("GOTORCON_API_NAMES"); out != "" {
		names, err := Names("../..")
		require.NoError(t, err)
		var b strings.Builder
		for pkg, ns := range names {
			for _, n := range ns {
				fmt.Fprintf(&b, "%s %s\n", pkg, n)
			}
		}
		require.NoError(t, os.WriteFile(out, []byte(b.String()), 0o644))
	}
}

func sorted(s []string) []string { slices.Sort(s); return s }
