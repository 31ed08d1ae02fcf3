package core

import (
	"context"

	"strconv"
	"sync"
	"time"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// rpcTable holds the server-side RPCs waiting for an answer.
type rpcTable struct {
	mu   sync.Mutex
	next map[string]int // device id -> last request id
	wait map[string]*pendingRPC
}

type pendingRPC struct {
	done func([]byte, error)
	stop func() bool
}

// DefaultRPCTimeout is a two-way RPC's timeout when none is given.
const DefaultRPCTimeout = 10 * time.Second

// StartRPC sends a server-side RPC to a device's newest session that
// subscribed to v1/devices/me/rpc/request/+ (ErrOffline without one). done
// is called once, from the caller of StartRPC (one-way: once the request is
// written), from the device's publish (the answer, copied) or from the
// clock (ErrTimeout after timeout, DefaultRPCTimeout if <= 0). cancel
// withdraws a pending two-way call; done is then not called.
func (c *Core) StartRPC(id, method string, params tbapi.Value, twoWay bool, timeout time.Duration, done func(resp []byte, err error)) (cancel func(), err error) {
	var target *Session
	for _, s := range c.deviceSessions(id) {
		if _, ok := s.subscribedQoS(tbapi.TopicRPCRequestPrefix + "1"); ok {
			target = s // the newest wins
		}
	}
	if target == nil {
		return func() {}, ErrOffline
	}
	t := &c.rpc
	t.mu.Lock()
	t.next[id]++
	reqID := t.next[id]
	key := id + "/" + strconv.Itoa(reqID)
	if twoWay {
		if timeout <= 0 {
			timeout = DefaultRPCTimeout
		}
		p := &pendingRPC{done: done}
		t.wait[key] = p
		p.stop = c.at(c.clock.Now().Add(timeout), func() {
			if p := t.take(key); p != nil {
				p.done(nil, ErrTimeout)
			}
		})
	}
	t.mu.Unlock()
	c.deliver(target, tbapi.RPCRequestTopic(reqID), tbapi.RPCRequest{Method: method, Params: params}.Encode())
	if !twoWay {
		done(nil, nil)
		return func() {}, nil
	}
	return func() {
		if p := t.take(key); p != nil {
			p.stop()
		}
	}, nil
}

// SendRPC is StartRPC for a caller that can wait: it returns the answer,
// ErrTimeout, or ctx's error. Not for a virtual clock, which only advances
// when its caller returns.
func (c *Core) SendRPC(ctx context.Context, id, method string, params tbapi.Value, twoWay bool, timeout time.Duration) ([]byte, error) {
	type result struct {
		resp []byte
		err  error
	}
	ch := make(chan result, 1)
	cancel, err := c.StartRPC(id, method, params, twoWay, timeout, func(resp []byte, err error) { ch <- result{resp, err} })
	if err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r.resp, r.err
	case <-ctx.Done():
		cancel()
		return nil, ctx.Err()
	}
}

// take removes and returns a pending call.
func (t *rpcTable) take(key string) *pendingRPC {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.wait[key]
	delete(t.wait, key)
	return p
}

// cancelAll ends every pending call with ErrClosed, in key order.
func (t *rpcTable) cancelAll() {
	t.mu.Lock()
	keys := sortedKeys(t.wait)
	ps := make([]*pendingRPC, len(keys))
	for i, k := range keys {
		ps[i] = t.wait[k]
	}
	t.wait = map[string]*pendingRPC{}
	t.mu.Unlock()
	for _, p := range ps {
		p.stop()
		p.done(nil, ErrClosed)
	}
}

// rpcResponse matches a device's answer to its pending call.
func (c *Core) rpcResponse(id string, reqID int, payload []byte) {
	if p := c.rpc.take(id + "/" + strconv.Itoa(reqID)); p != nil {
		p.stop()
		p.done(append([]byte(nil), payload...), nil)
	}
}
