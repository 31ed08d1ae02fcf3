package evalorder

import (
	"go/ast"
	"go/types"
)

// A path names the storage an expression denotes: a variable, then field
// names, with deref where a pointer is followed and anyElem for an index.
// r.Basic.UserName is {r, Basic, UserName}; m.dl.sum (m a pointer) is
// {m, deref, dl, sum}.
type path []elem

type elem struct {
	v     *types.Var // the root variable (first element only)
	field string
}

var (
	deref   = elem{field: "*"}
	anyElem = elem{field: "[]"}
)

// pathOf returns the path of a variable expression, or false when e is not
// rooted at a variable (a call result, a constant, a function).
func (u *unit) pathOf(e ast.Expr) (path, bool) {
	info := u.pass.TypesInfo
	switch e := e.(type) {
	case *ast.ParenExpr:
		return u.pathOf(e.X)
	case *ast.Ident:
		v, ok := info.Uses[e].(*types.Var)
		if !ok {
			v, ok = info.Defs[e].(*types.Var)
		}
		if !ok || v.IsField() {
			return nil, false
		}
		return path{{v: v}}, true
	case *ast.SelectorExpr:
		if id := identOf(e.X); id != nil {
			if _, isPkg := info.Uses[id].(*types.PkgName); isPkg {
				return u.pathOf(e.Sel)
			}
		}
		s := info.Selections[e]
		if s == nil || s.Kind() != types.FieldVal {
			return nil, false
		}
		p, ok := u.pathOf(e.X)
		if !ok {
			return nil, false
		}
		if _, isPtr := underlying(info.TypeOf(e.X)).(*types.Pointer); isPtr {
			p = append(p, deref)
		}
		// Promoted fields pass through embedded fields, maybe pointers:
		// stopping at the first one is coarser, never wrong.
		if len(s.Index()) > 1 {
			return append(p, anyElem), true
		}
		return append(p, elem{field: e.Sel.Name}), true
	case *ast.StarExpr:
		p, ok := u.pathOf(e.X)
		return append(p, deref), ok
	case *ast.IndexExpr:
		p, ok := u.pathOf(e.X)
		if !ok {
			return nil, false
		}
		switch underlying(info.TypeOf(e.X)).(type) {
		case *types.Array:
			return append(p, anyElem), true
		default: // slice, map, pointer to array, string: the elements live elsewhere
			return append(p, deref, anyElem), true
		}
	}
	return nil, false
}

// overlaps reports whether reading r can see a change a call makes to w.
// Reading a pointer does not read what it points to, so r = {m} does not
// overlap w = {m, deref}; but reading r = {x} reads all of the struct x,
// so it overlaps w = {x, f}.
func overlaps(r, w path) bool {
	n := min(len(r), len(w))
	for i := 0; i < n; i++ {
		a, b := r[i], w[i]
		if i == 0 {
			if a.v != b.v {
				return false
			}
			continue
		}
		if a == anyElem || b == anyElem {
			continue
		}
		if a != b {
			return false
		}
	}
	if len(r) >= len(w) {
		return true // r is inside what w may change
	}
	for _, e := range w[len(r):] {
		if e == deref {
			return false // w changes memory r only points to
		}
	}
	return true
}
