package rest

import (
	"sync"
	"time"

	"github.com/tbsim/tbsim/tbemu/core"
)

// loginTokens are the REST login tokens (opaque, 9000 s like ThingsBoard's
// JWT), drawn from the core's random source and timed by its clock.
type loginTokens struct {
	c  *core.Core
	mu sync.Mutex
	m  map[string]time.Time
}

const tokenLifetime = 9000 * time.Second

func (t *loginTokens) issue() string {
	tok := t.c.RandomString(40)
	t.mu.Lock()
	t.m[tok] = t.c.Now().Add(tokenLifetime)
	t.mu.Unlock()
	return tok
}

func (t *loginTokens) valid(tok string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	exp, ok := t.m[tok]
	if ok && t.c.Now().After(exp) {
		delete(t.m, tok)
		return false
	}
	return ok
}
