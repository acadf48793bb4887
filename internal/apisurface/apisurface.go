// Package apisurface counts a module's exported identifiers, so that the
// size of the public API can be measured before and after a change.
//
// The counting rule, what go doc lists: in every non-test package outside
// internal/ and examples/, each package-level exported func, type, var and
// const (one per name, so a const block of five names counts five), each
// exported method of an exported type, and each exported field of an
// exported struct type (embedded fields counted by their type name).
// Methods of interfaces and of unexported types are not counted; main
// packages are skipped.
package apisurface

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
)

// Count walks the module rooted at root and returns the number of exported
// identifiers per package directory (relative to root, "." for the root
// package).
func Count(root string) (map[string]int, error) {
	names, err := Names(root)
	counts := map[string]int{}
	for pkg, ns := range names {
		counts[pkg] = len(ns)
	}
	return counts, err
}

// Names walks the module rooted at root and returns the exported
// identifiers per package directory, counted as [Count] counts them, each
// as "Name", "Type.Field" or "Type.Method" (sorted), so that two versions
// of the module can be compared name by name.
func Names(root string) (map[string][]string, error) {
	names := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		base := d.Name()
		if rel != "." && (strings.HasPrefix(base, ".") || base == "testdata" || base == "internal" || base == "examples") {
			return filepath.SkipDir
		}
		pkgs, err := parser.ParseDir(fset, path, func(fi fs.FileInfo) bool {
			return !strings.HasSuffix(fi.Name(), "_test.go")
		}, 0)
		if err != nil {
			return err
		}
		for name, pkg := range pkgs {
			if name == "main" {
				continue
			}
			k := filepath.ToSlash(rel)
			names[k] = append(names[k], packageNames(pkg)...)
			sort.Strings(names[k])
		}
		return nil
	})
	return names, err
}

func countPackage(pkg *ast.Package) int { return len(packageNames(pkg)) }

func packageNames(pkg *ast.Package) []string {
	var n []string
	for _, f := range pkg.Files {
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Name.IsExported() && d.Recv == nil {
					n = append(n, d.Name.Name)
				} else if d.Name.IsExported() && exportedRecv(d.Recv) {
					n = append(n, recvName(d.Recv)+"."+d.Name.Name)
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.ValueSpec:
						for _, id := range s.Names {
							if id.IsExported() {
								n = append(n, id.Name)
							}
						}
					case *ast.TypeSpec:
						if !s.Name.IsExported() {
							continue
						}
						n = append(n, s.Name.Name)
						if st, ok := s.Type.(*ast.StructType); ok {
							for _, f := range exportedFields(st) {
								n = append(n, s.Name.Name+"."+f)
							}
						}
					}
				}
			}
		}
	}
	return n
}

// exportedRecv reports whether a method's receiver type is exported.
func exportedRecv(fl *ast.FieldList) bool { return ast.IsExported(recvName(fl)) }

// recvName returns the name of a method's receiver type.
func recvName(fl *ast.FieldList) string {
	t := fl.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	switch x := t.(type) {
	case *ast.IndexExpr: // generic receiver
		t = x.X
	case *ast.IndexListExpr:
		t = x.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

func exportedFields(st *ast.StructType) []string {
	var n []string
	for _, f := range st.Fields.List {
		if len(f.Names) == 0 { // embedded
			t := f.Type
			if s, ok := t.(*ast.StarExpr); ok {
				t = s.X
			}
			switch x := t.(type) {
			case *ast.Ident:
				if x.IsExported() {
					n = append(n, x.Name)
				}
			case *ast.SelectorExpr:
				if x.Sel.IsExported() {
					n = append(n, x.Sel.Name)
				}
			}
			continue
		}
		for _, id := range f.Names {
			if id.IsExported() {
				n = append(n, id.Name)
			}
		}
	}
	return n
}

// Report formats counts as "package count" lines, sorted, with a total.
func Report(counts map[string]int) string {
	keys := make([]string, 0, len(counts))
	total := 0
	for k, v := range counts {
		keys = append(keys, k)
		total += v
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%-24s %4d\n", k, counts[k])
	}
	fmt.Fprintf(&b, "%-24s %4d\n", "total", total)
	return b.String()
}
