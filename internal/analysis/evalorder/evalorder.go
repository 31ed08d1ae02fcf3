package evalorder

import (
	"go/ast"
	"go/token"
	"go/types"

	"golang.org/x/tools/go/analysis"
)

// Analyzer flags statements whose result depends on whether a variable is read
// before or after a call in the same statement that may change it.
var Analyzer = &analysis.Analyzer{
	Name: "evalorder",
	Doc:  "report statements that read a variable and also let a call change it (pointer method or &v); gc and TinyGo order these differently",
	Run:  run,
}

func run(pass *analysis.Pass) (any, error) {
	writers := mutators(pass)
	for _, f := range pass.Files {
		ast.Inspect(f, func(n ast.Node) bool {
			if exprs := unitExprs(n); exprs != nil {
				checkUnit(pass, writers, exprs)
			}
			return true
		})
	}
	return nil, nil
}

// unitExprs returns the expressions one statement (or condition) evaluates
// together, or nil if n is not such a unit. Nested statements are units of
// their own: ast.Inspect reaches them separately.
func unitExprs(n ast.Node) []unitExpr {
	var u []unitExpr
	add := func(mode walkMode, es ...ast.Expr) {
		for _, e := range es {
			if e != nil {
				u = append(u, unitExpr{e, mode})
			}
		}
	}
	switch s := n.(type) {
	case *ast.ExprStmt:
		add(modeRead, s.X)
	case *ast.AssignStmt:
		if s.Tok == token.ASSIGN || s.Tok == token.DEFINE {
			add(modeTarget, s.Lhs...)
		} else {
			add(modeRead, s.Lhs...) // x += y reads x
		}
		add(modeRead, s.Rhs...)
	case *ast.ReturnStmt:
		add(modeRead, s.Results...)
	case *ast.SendStmt:
		add(modeRead, s.Chan, s.Value)
	case *ast.IncDecStmt:
		add(modeRead, s.X)
	case *ast.GoStmt:
		add(modeRead, s.Call)
	case *ast.DeferStmt:
		add(modeRead, s.Call)
	case *ast.ValueSpec:
		add(modeRead, s.Values...)
	case *ast.IfStmt:
		add(modeRead, s.Cond)
	case *ast.ForStmt:
		add(modeRead, s.Cond)
	case *ast.SwitchStmt:
		add(modeRead, s.Tag)
	case *ast.CaseClause:
		add(modeRead, s.List...)
	case *ast.RangeStmt:
		add(modeRead, s.X)
	default:
		return nil
	}
	if len(u) == 0 {
		return nil
	}
	return u
}

type walkMode uint8

const (
	modeRead   walkMode = iota // the expression's value is used
	modeTarget                 // assigned to: only its index operands are read
	modeAddr                   // a receiver or &operand: its address is taken, not its value
)

type unitExpr struct {
	e    ast.Expr
	mode walkMode
}

// read is a use of a variable path's value.
type read struct {
	p     path
	node  ast.Expr
	sides []side
}

// write is a call that may change a variable path.
type write struct {
	p     path
	call  *ast.CallExpr
	how   ast.Expr // the receiver or &operand, for the message
	sides []side
}

// side is which operand of a && or || an expression is in. The right
// operand runs after the left one, so a read and a call on different sides of
// the same && are ordered.
type side struct {
	op    *ast.BinaryExpr
	right bool
}

func ordered(a, b []side) bool {
	for _, x := range a {
		for _, y := range b {
			if x.op == y.op && x.right != y.right {
				return true
			}
		}
	}
	return false
}

type unit struct {
	pass    *analysis.Pass
	writers map[*types.Func]bool // methods of this package: may they change the receiver
	reads   []read
	writes  []write
	calls   []*ast.CallExpr // enclosing calls whose arguments are being walked
	sides   []side          // enclosing && and || operands
}

func (u *unit) where() []side { return append([]side(nil), u.sides...) }

func checkUnit(pass *analysis.Pass, writers map[*types.Func]bool, exprs []unitExpr) {
	u := &unit{pass: pass, writers: writers}
	for _, e := range exprs {
		u.walk(e.e, e.mode)
	}
	for _, w := range u.writes {
		for _, r := range u.reads {
			if within(r.node, w.call) || ordered(r.sides, w.sides) || !overlaps(r.p, w.p) {
				continue
			}
			pass.Reportf(r.node.Pos(), "%s is read in the same statement as the call %s, which may change it through %s: "+
				"gc and TinyGo read it at different times; make the call in its own statement first",
				types.ExprString(r.node), types.ExprString(w.call.Fun), types.ExprString(w.how))
			break
		}
	}
}

func within(n ast.Node, outer ast.Node) bool {
	return n.Pos() >= outer.Pos() && n.End() <= outer.End()
}

func (u *unit) walk(e ast.Expr, mode walkMode) {
	switch e := e.(type) {
	case nil:
	case *ast.FuncLit:
		// The body runs later, not as part of this statement.
	case *ast.ParenExpr:
		u.walk(e.X, mode)
	case *ast.Ident:
		u.use(e, mode)
	case *ast.SelectorExpr:
		if sel := u.pass.TypesInfo.Selections[e]; sel != nil && sel.Kind() != types.FieldVal {
			u.walk(e.X, modeRead) // a method value copies or points to its receiver
			return
		}
		u.use(e, mode)
	case *ast.StarExpr:
		u.use(e, mode)
	case *ast.IndexExpr:
		u.use(e, mode)
	case *ast.UnaryExpr:
		if e.Op == token.AND {
			u.addrOf(e)
			return
		}
		u.walk(e.X, modeRead)
	case *ast.CallExpr:
		u.call(e)
	case *ast.BinaryExpr:
		if e.Op != token.LAND && e.Op != token.LOR {
			u.walk(e.X, modeRead)
			u.walk(e.Y, modeRead)
			return
		}
		u.sides = append(u.sides, side{e, false})
		u.walk(e.X, modeRead)
		u.sides[len(u.sides)-1].right = true
		u.walk(e.Y, modeRead)
		u.sides = u.sides[:len(u.sides)-1]
	case *ast.CompositeLit:
		_, isStruct := underlying(u.pass.TypesInfo.TypeOf(e)).(*types.Struct)
		for _, el := range e.Elts {
			if kv, ok := el.(*ast.KeyValueExpr); ok {
				if !isStruct {
					u.walk(kv.Key, modeRead)
				}
				u.walk(kv.Value, modeRead)
				continue
			}
			u.walk(el, modeRead)
		}
	default:
		ast.Inspect(e, func(n ast.Node) bool {
			if n == e {
				return true
			}
			if x, ok := n.(ast.Expr); ok {
				u.walk(x, modeRead)
				return false
			}
			return true
		})
	}
}

// use records a read of a variable path (in modeRead) and walks the
// expressions its evaluation needs (index operands).
func (u *unit) use(e ast.Expr, mode walkMode) {
	p, ok := u.pathOf(e)
	if ok && mode == modeRead {
		u.reads = append(u.reads, read{p, e, u.where()})
	}
	u.walkOperands(e)
}

// walkOperands walks what evaluating a path expression reads besides the
// path itself: indices, and anything that is not a plain path.
func (u *unit) walkOperands(e ast.Expr) {
	switch e := e.(type) {
	case *ast.ParenExpr:
		u.walkOperands(e.X)
	case *ast.SelectorExpr:
		if _, isPkg := u.pass.TypesInfo.Uses[identOf(e.X)].(*types.PkgName); isPkg {
			return
		}
		u.walkOperands(e.X)
	case *ast.StarExpr:
		u.walkOperands(e.X)
	case *ast.IndexExpr:
		u.walkOperands(e.X)
		u.walk(e.Index, modeRead)
	case *ast.Ident:
	default:
		u.walk(e, modeRead)
	}
}

func (u *unit) addrOf(e *ast.UnaryExpr) {
	if p, ok := u.pathOf(e.X); ok && len(u.calls) > 0 {
		u.writes = append(u.writes, write{p, u.calls[len(u.calls)-1], e, u.where()})
	}
	u.walkOperands(e.X)
}

func (u *unit) call(c *ast.CallExpr) {
	if sel, ok := ast.Unparen(c.Fun).(*ast.SelectorExpr); ok {
		if s := u.pass.TypesInfo.Selections[sel]; s != nil && s.Kind() == types.MethodVal {
			u.methodCall(c, sel, s)
		} else {
			u.walk(c.Fun, modeRead)
		}
	} else if tv, ok := u.pass.TypesInfo.Types[c.Fun]; !ok || !tv.IsType() {
		u.walk(c.Fun, modeRead)
	}
	u.calls = append(u.calls, c)
	for _, a := range c.Args {
		u.walk(a, modeRead)
	}
	u.calls = u.calls[:len(u.calls)-1]
}

func (u *unit) methodCall(c *ast.CallExpr, sel *ast.SelectorExpr, s *types.Selection) {
	sig, _ := s.Obj().Type().(*types.Signature)
	if sig == nil || sig.Recv() == nil {
		u.walk(sel.X, modeRead)
		return
	}
	if _, ptrRecv := sig.Recv().Type().(*types.Pointer); !ptrRecv {
		u.walk(sel.X, modeRead) // a value receiver is a copy: a read
		return
	}
	if fn, _ := s.Obj().(*types.Func); fn != nil {
		if w, known := u.writers[fn]; known && !w {
			u.walk(sel.X, modeRead) // a method that only reads its receiver
			return
		}
	}
	if p, ok := u.pathOf(sel.X); ok {
		if _, isPtr := underlying(u.pass.TypesInfo.TypeOf(sel.X)).(*types.Pointer); isPtr {
			p = append(p, deref) // the call may change the pointee, not the pointer
		}
		u.writes = append(u.writes, write{p, c, sel.X, u.where()})
	}
	u.walkOperands(sel.X)
}

func identOf(e ast.Expr) *ast.Ident {
	id, _ := ast.Unparen(e).(*ast.Ident)
	return id
}

func underlying(t types.Type) types.Type {
	if t == nil {
		return nil
	}
	return t.Underlying()
}
