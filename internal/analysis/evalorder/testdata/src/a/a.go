package a

type Value struct{ S string }

type Response struct {
	Token string
	Basic struct{ User string }
	N     int
}

func (r *Response) decodeBasic(v Value) error { r.Basic.User = v.S; return nil }
func (r *Response) grow() int                 { r.N++; return r.N }
func (r Response) copyOf() Response           { return r }

// The line of issue 11 (firmware/tbapi/provision.go before the fix).
func decode(cv Value) (Response, error) {
	var r Response
	return r, r.decodeBasic(cv) // want `r is read in the same statement as the call r.decodeBasic`
}

func fixed(cv Value) (Response, error) {
	var r Response
	err := r.decodeBasic(cv)
	return r, err
}

func fill(p *Response) error { p.Token = "t"; return nil }

func addr() (Response, error) {
	var r Response
	return r, fill(&r) // want `r is read in the same statement as the call fill`
}

func field() (string, error) {
	var r Response
	return r.Basic.User, r.decodeBasic(Value{}) // want `r.Basic.User is read`
}

func otherField() (string, error) {
	var r Response
	return r.Token, fill2(&r.Basic.User) // distinct fields: fill2 cannot change r.Token
}

func fill2(s *string) error { *s = "x"; return nil }

func composite() []int {
	var r Response
	return []int{r.N, r.grow()} // want `r.N is read`
}

func opAssign() {
	var r Response
	r.N += r.grow() // want `r.N is read`
}

func assignTarget() {
	var r Response
	r.N = r.grow() // the target is assigned after the call: fine
	_ = r
}

func argsOfTheCallItself(p *Response) {
	var r Response
	_ = fill3(r, &r) // r is an argument of the same call: read before it runs
	_ = p
}

func fill3(v Response, p *Response) error { *p = v; return nil }

func pointerVar(m *Response) (int, int) {
	return m.N, m.grow() // want `m.N is read`
}

func pointerItself(m *Response) (*Response, int) {
	return m, m.grow() // the pointer itself does not change
}

func argInside(m *Response) {
	use(m.N + m.grow()) // want `m.N is read`
	use(m.grow())
	use2(m.Token)
}

func valueReceiver() (Response, Response) {
	var r Response
	return r.copyOf(), r // no pointer method, no address: fine
}

func closure() (Response, func()) {
	var r Response
	return r, func() { _ = r.grow() } // runs later
}

func ifCond() {
	var r Response
	if r.N > r.grow() { // want `r.N is read`
	}
}

func use(int)     {}
func use2(string) {}

func logical() bool {
	var r Response
	return r.grow() > 0 && r.N > 1 // && orders its operands: fine
}

func logicalOutside() (int, bool) {
	var r Response
	return r.N, r.grow() > 0 && true // want `r.N is read`
}
