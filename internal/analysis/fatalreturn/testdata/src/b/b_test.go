package b

import "testing"

func TestBad(t *testing.T) {
	var p *int
	if p == nil {
		t.Fatal("nil") // want `t.Fatal does not stop the test under TinyGo`
	}
	_ = *p
}

func TestGood(t *testing.T) {
	var p *int
	if p == nil {
		t.Fatal("nil")
		return
	}
	_ = *p
	t.Fatalf("last statement of the function: %d", *p)
}

func helper(t testing.TB) *int {
	t.Helper()
	t.Skip("x") // want `t.Skip does not stop the test under TinyGo`
	t.FailNow()
	return nil
}

func TestSub(t *testing.T) {
	t.Run("x", func(t *testing.T) {
		t.Fatal("end of the literal's body")
	})
	for i := 0; i < 2; i++ {
		switch i {
		case 1:
			t.Errorf("not a stopper")
			t.Fatalf("in a case") // want `t.Fatalf does not stop the test under TinyGo`
		}
	}
	_ = helper
}
