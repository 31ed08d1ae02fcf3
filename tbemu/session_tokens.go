package tbemu

import (
	"sync"
	"time"
)

var timeAfter = time.After

// sessionTokens are the REST login tokens (opaque, 9000 s like ThingsBoard's JWT).
type sessionTokens struct {
	mu sync.Mutex
	m  map[string]time.Time
}

const tokenLifetime = 9000 * time.Second

func (t *sessionTokens) issue() string {
	tok := randomAlphanumeric(40)
	t.mu.Lock()
	t.m[tok] = time.Now().Add(tokenLifetime)
	t.mu.Unlock()
	return tok
}

func (t *sessionTokens) valid(tok string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	exp, ok := t.m[tok]
	if ok && time.Now().After(exp) {
		delete(t.m, tok)
		return false
	}
	return ok
}
