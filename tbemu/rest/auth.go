package rest

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tbsim/tbsim/tbemu/core"
)

// Token kinds: an access token authenticates requests, a refresh token
// only gets new tokens (ThingsBoard's JwtTokenFactory.parseRefreshToken
// refuses a token without the REFRESH_TOKEN scope, and an access token is
// checked as one).
const (
	accessToken = iota
	refreshToken
)

// Lifetimes of ThingsBoard's defaults (JWT_TOKEN_EXPIRATION_TIME,
// JWT_REFRESH_TOKEN_EXPIRATION_TIME).
const (
	accessLifetime  = 9000 * time.Second
	refreshLifetime = 604800 * time.Second
)

// maxTokens bounds the live tokens: a client logging in in a loop evicts
// the oldest ones instead of growing the map for 9000 s.
const maxTokens = 10000

// loginTokens are the REST login tokens (opaque, not JWTs), drawn from the
// core's random source and timed by its clock.
type loginTokens struct {
	c     *core.Core
	mu    sync.Mutex
	m     map[string]tokenInfo
	order []string // issue order, for eviction
}

type tokenInfo struct {
	exp  time.Time
	kind int
}

func newLoginTokens(c *core.Core) *loginTokens {
	return &loginTokens{c: c, m: map[string]tokenInfo{}}
}

func (t *loginTokens) issue(kind int) string {
	tok := t.c.RandomString(40)
	life := accessLifetime
	if kind == refreshToken {
		life = refreshLifetime
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m[tok] = tokenInfo{t.c.Now().Add(life), kind}
	t.order = append(t.order, tok)
	for len(t.m) > maxTokens {
		delete(t.m, t.order[0])
		t.order = t.order[1:]
	}
	if len(t.order) > 2*maxTokens { // drop the names of expired or evicted tokens
		live := t.order[:0]
		for _, k := range t.order {
			if _, ok := t.m[k]; ok {
				live = append(live, k)
			}
		}
		t.order = live
	}
	return tok
}

// Results of check.
const (
	tokenGood      = iota
	tokenExpired   // expired, or unknown (issued by an earlier run)
	tokenWrongKind // an access token where a refresh token belongs, or back
)

// check says what tok is for a use of that kind.
func (t *loginTokens) check(tok string, kind int) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	info, ok := t.m[tok]
	switch {
	case ok && t.c.Now().After(info.exp):
		delete(t.m, tok)
		return tokenExpired
	case !ok:
		return tokenExpired
	case info.kind != kind:
		return tokenWrongKind
	}
	return tokenGood
}

// loginLimiter counts failed logins per client address in a token bucket:
// LoginFailures of them, refilled over LoginWindow. ThingsBoard locks the
// user after too many failures (its security settings); this limits the
// guesser, not the user, so a flood from one address cannot lock out the
// operator who logs in from another.
type loginLimiter struct {
	c      *core.Core
	burst  float64
	refill float64 // per second
	mu     sync.Mutex
	m      map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxAddresses bounds the addresses tracked; full buckets are dropped
// first, since they carry no state.
const maxAddresses = 10000

func newLoginLimiter(c *core.Core, failures int, window time.Duration) *loginLimiter {
	return &loginLimiter{c: c, burst: float64(failures), refill: float64(failures) / window.Seconds(), m: map[string]*bucket{}}
}

// fill returns addr's bucket refilled up to now; the caller holds mu.
func (l *loginLimiter) fill(addr string) *bucket {
	now := l.c.Now()
	b := l.m[addr]
	if b == nil {
		if len(l.m) >= maxAddresses {
			for k, o := range l.m {
				if o.tokens+now.Sub(o.last).Seconds()*l.refill >= l.burst {
					delete(l.m, k)
				}
			}
		}
		b = &bucket{tokens: l.burst, last: now}
		if len(l.m) < maxAddresses {
			l.m[addr] = b
		}
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.refill)
	b.last = now
	return b
}

// wait returns how long addr must wait before its next login attempt (0:
// it may try now).
func (l *loginLimiter) wait(addr string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.fill(addr)
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) / l.refill * float64(time.Second))
}

// failed takes one attempt from addr's bucket.
func (l *loginLimiter) failed(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.fill(addr)
	b.tokens = math.Max(0, b.tokens-1)
}

// clientAddr is the request's peer address without its port (forwarded
// headers are not trusted: anyone can set them).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	addr := clientAddr(r)
	if wait := h.logins.wait(addr); wait > 0 {
		secs := int64(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		h.fail(w, http.StatusTooManyRequests, codeTooManyRequests,
			"Too many failed logins from this address: try again in "+itoa(secs)+" s")
		return
	}
	var req struct{ Username, Password string }
	if err := h.decodeBody(w, r, &req); err != nil || req.Username != h.opts.User || req.Password != h.opts.Password {
		h.logins.failed(addr)
		h.log.Warn("REST login failed", "from", addr, "user", req.Username)
		h.fail(w, http.StatusUnauthorized, codeAuthentication, "Invalid username or password")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": h.tokens.issue(accessToken), "refreshToken": h.tokens.issue(refreshToken)})
}

func (h *handler) refresh(w http.ResponseWriter, r *http.Request) {
	var req struct{ RefreshToken string }
	if err := h.decodeBody(w, r, &req); err != nil || req.RefreshToken == "" {
		h.fail(w, http.StatusUnauthorized, codeAuthentication, "Authentication failed")
		return
	}
	switch h.tokens.check(req.RefreshToken, refreshToken) {
	case tokenExpired:
		h.tokenExpired(w)
		return
	case tokenWrongKind:
		h.fail(w, http.StatusUnauthorized, codeAuthentication, "Authentication failed")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": h.tokens.issue(accessToken), "refreshToken": h.tokens.issue(refreshToken)})
}
