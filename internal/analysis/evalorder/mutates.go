package evalorder

import (
	"go/ast"
	"go/token"
	"go/types"

	"golang.org/x/tools/go/analysis"
)

// mutators finds which pointer-receiver methods declared in the package may
// change their receiver: they assign through it, take an address rooted at
// it, pass it (or a reference-typed part of it) to a call, or call such a
// method on it. A method that only reads (s.base(i), it.key()) is not a
// write, so calls to it are not reported. Methods of other packages stay
// suspect.
func mutators(pass *analysis.Pass) map[*types.Func]bool {
	type fn struct {
		decl *ast.FuncDecl
		obj  *types.Func
		vars []*types.Var // the receiver of a pointer method, or the reference-typed parameters of a function
	}
	var fns []fn
	for _, f := range pass.Files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			obj, _ := pass.TypesInfo.Defs[fd.Name].(*types.Func)
			if obj == nil {
				continue
			}
			sig := obj.Type().(*types.Signature)
			var vars []*types.Var
			if sig.Recv() != nil {
				if _, ptr := sig.Recv().Type().(*types.Pointer); !ptr {
					continue
				}
				vars = append(vars, sig.Recv())
			} else {
				for i := 0; i < sig.Params().Len(); i++ {
					if p := sig.Params().At(i); isReference(p.Type()) {
						vars = append(vars, p)
					}
				}
			}
			fns = append(fns, fn{fd, obj, vars})
		}
	}
	writes := map[*types.Func]bool{}
	known := map[*types.Func]bool{}
	for _, f := range fns {
		known[f.obj] = true
	}
	for changed := true; changed; {
		changed = false
		for _, f := range fns {
			if writes[f.obj] {
				continue
			}
			for _, v := range f.vars {
				if mayWrite(pass, f.decl.Body, v, writes, known) {
					writes[f.obj] = true
					changed = true
					break
				}
			}
		}
	}
	for f := range known {
		if !writes[f] {
			writes[f] = false
		}
	}
	return writes
}

// readOnly are functions of other packages known not to write through their
// arguments.
var readOnly = map[string]bool{
	"hash/crc32.Update": true, "hash/crc32.Checksum": true, "hash/crc32.ChecksumIEEE": true,
	"bytes.Equal": true, "bytes.Compare": true, "bytes.HasPrefix": true, "bytes.HasSuffix": true,
	"bytes.Index": true, "bytes.IndexByte": true, "bytes.Contains": true,
}

// mayWrite reports whether body may change what recv points to.
func mayWrite(pass *analysis.Pass, body *ast.BlockStmt, recv *types.Var, writes, known map[*types.Func]bool) bool {
	info := pass.TypesInfo
	rooted := func(e ast.Expr) bool {
		for {
			switch x := ast.Unparen(e).(type) {
			case *ast.Ident:
				return info.Uses[x] == recv
			case *ast.SelectorExpr:
				e = x.X
			case *ast.IndexExpr:
				e = x.X
			case *ast.SliceExpr:
				e = x.X
			case *ast.StarExpr:
				e = x.X
			default:
				return false
			}
		}
	}
	isRecv := func(e ast.Expr) bool {
		id, ok := ast.Unparen(e).(*ast.Ident)
		return ok && info.Uses[id] == recv
	}
	found := false
	ast.Inspect(body, func(n ast.Node) bool {
		if found {
			return false
		}
		switch n := n.(type) {
		case *ast.AssignStmt:
			for _, l := range n.Lhs {
				if rooted(l) && !isRecv(l) {
					found = true
				}
			}
		case *ast.IncDecStmt:
			found = rooted(n.X)
		case *ast.UnaryExpr:
			found = n.Op == token.AND && rooted(n.X)
		case *ast.RangeStmt:
			found = n.Key != nil && rooted(n.Key) || n.Value != nil && rooted(n.Value)
		case *ast.CallExpr:
			found = callMayWrite(info, n, rooted, writes, known)
		}
		return !found
	})
	return found
}

func callMayWrite(info *types.Info, c *ast.CallExpr, rooted func(ast.Expr) bool, writes, known map[*types.Func]bool) bool {
	if sel, ok := ast.Unparen(c.Fun).(*ast.SelectorExpr); ok && rooted(sel.X) {
		if s := info.Selections[sel]; s != nil && s.Kind() == types.MethodVal {
			fn, _ := s.Obj().(*types.Func)
			sig, _ := fn.Type().(*types.Signature)
			if _, ptr := sig.Recv().Type().(*types.Pointer); ptr {
				if !known[fn] || writes[fn] {
					return true
				}
			}
		}
	}
	if id, ok := ast.Unparen(c.Fun).(*ast.Ident); ok {
		if b, ok := info.Uses[id].(*types.Builtin); ok {
			switch b.Name() {
			case "copy", "clear":
				return len(c.Args) > 0 && rooted(c.Args[0])
			case "len", "cap", "append", "min", "max", "print", "println", "panic":
				return false
			}
		}
	}
	var callee *types.Func
	switch f := ast.Unparen(c.Fun).(type) {
	case *ast.Ident:
		callee, _ = info.Uses[f].(*types.Func)
	case *ast.SelectorExpr:
		callee, _ = info.Uses[f.Sel].(*types.Func)
	}
	if callee != nil && (known[callee] && !writes[callee] || readOnly[callee.FullName()]) {
		return false
	}
	for _, a := range c.Args {
		if rooted(a) && isReference(info.TypeOf(a)) {
			return true // the callee gets a way to write into the receiver
		}
	}
	return false
}

func isReference(t types.Type) bool {
	switch underlying(t).(type) {
	case *types.Pointer, *types.Slice, *types.Map, *types.Chan, *types.Interface, *types.Signature:
		return true
	}
	return false
}
