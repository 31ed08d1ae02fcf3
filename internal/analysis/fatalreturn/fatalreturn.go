package fatalreturn

import (
	"go/ast"
	"go/types"

	"golang.org/x/tools/go/analysis"
)

// Analyzer reports t.Fatal-like calls that a return does not follow.
var Analyzer = &analysis.Analyzer{
	Name: "fatalreturn",
	Doc:  "report t.Fatal/FailNow/Skip calls not followed by return (TinyGo's testing does not stop the test there)",
	Run:  run,
}

// stoppers are the testing methods that end a test under gc only.
var stoppers = map[string]bool{
	"Fatal": true, "Fatalf": true, "FailNow": true,
	"Skip": true, "Skipf": true, "SkipNow": true,
}

func run(pass *analysis.Pass) (any, error) {
	for _, f := range pass.Files {
		bodies := map[*ast.BlockStmt]bool{}
		ast.Inspect(f, func(n ast.Node) bool {
			switch fn := n.(type) {
			case *ast.FuncDecl:
				bodies[fn.Body] = true
			case *ast.FuncLit:
				bodies[fn.Body] = true
			case *ast.BlockStmt:
				checkBlock(pass, fn.List, bodies[fn])
			case *ast.CaseClause:
				checkBlock(pass, fn.Body, false)
			case *ast.CommClause:
				checkBlock(pass, fn.Body, false)
			}
			return true
		})
	}
	return nil, nil
}

// checkBlock reports stopper calls in list whose next statement is not a
// return. The last statement of a function body ends the test anyway.
func checkBlock(pass *analysis.Pass, list []ast.Stmt, funcBody bool) {
	for i, s := range list {
		name, ok := stopper(pass, s)
		if !ok {
			continue
		}
		if i+1 < len(list) {
			if _, isReturn := list[i+1].(*ast.ReturnStmt); isReturn {
				continue
			}
		} else if funcBody {
			continue
		}
		pass.Reportf(s.Pos(), "%s does not stop the test under TinyGo: add a return after it", name)
	}
}

func stopper(pass *analysis.Pass, s ast.Stmt) (string, bool) {
	es, ok := s.(*ast.ExprStmt)
	if !ok {
		return "", false
	}
	call, ok := es.X.(*ast.CallExpr)
	if !ok {
		return "", false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || !stoppers[sel.Sel.Name] {
		return "", false
	}
	fn, ok := pass.TypesInfo.Uses[sel.Sel].(*types.Func)
	if !ok || fn.Pkg() == nil || fn.Pkg().Path() != "testing" {
		return "", false
	}
	return types.ExprString(call.Fun), true
}
