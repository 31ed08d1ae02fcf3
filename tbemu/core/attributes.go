package core

import (
	"fmt"
	"sort"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

func (c *Core) setAttr(id, scope, key string, v tbapi.Value) {
	st := c.store.stateOf(id)
	if st == nil {
		return
	}
	tv := TsValue{Ts: c.nowMs(), Value: v}
	st.mu.Lock()
	st.Attrs[scope][key] = tv
	st.mu.Unlock()
	c.store.markDirty(id, st)
}

// SetSharedAttributes saves shared attributes and pushes the changed keys, in
// one message, to the device's sessions that subscribed to them. They are
// written to the state file at once.
func (c *Core) SetSharedAttributes(id string, values []tbapi.Member) error {
	return c.setScopeAttributes(id, SharedScope, values)
}

// SetServerAttributes saves server attributes (never pushed).
func (c *Core) SetServerAttributes(id string, values []tbapi.Member) error {
	return c.setScopeAttributes(id, ServerScope, values)
}

func (c *Core) setScopeAttributes(id, scope string, values []tbapi.Member) error {
	st := c.store.stateOf(id)
	if st == nil {
		return fmt.Errorf("%w: device %s", ErrNotFound, id)
	}
	now := c.nowMs()
	st.mu.Lock()
	for _, m := range values {
		st.Attrs[scope][m.Key] = TsValue{Ts: now, Value: m.Value}
	}
	st.mu.Unlock()
	c.store.markDirty(id, st)
	if err := c.store.flushDirty(); err != nil {
		return err
	}
	if scope == SharedScope && len(values) > 0 {
		c.push(id, tbapi.AttrUpdate{Values: values}.Encode())
	}
	return nil
}

// DeleteSharedAttributes removes keys and pushes {"deleted":[...]}.
func (c *Core) DeleteSharedAttributes(id string, keys []string) error {
	return c.DeleteAttributes(id, SharedScope, keys)
}

// DeleteAttributes removes keys of a scope (missing ones are ignored); for
// the shared scope the device's subscribed sessions get {"deleted":[...]}
// with every key asked for, in the order asked, whether it existed or not,
// as ThingsBoard 4.3 pushes them (seen against it: a REST deletion of "p2"
// and a missing "nope" pushes {"deleted":["p2","nope"]}).
func (c *Core) DeleteAttributes(id, scope string, keys []string) error {
	return c.deleteAttributes(id, scope, keys, true)
}

func (c *Core) deleteAttributes(id, scope string, keys []string, pushAll bool) error {
	st := c.store.stateOf(id)
	if st == nil {
		return fmt.Errorf("%w: device %s", ErrNotFound, id)
	}
	var gone []string
	st.mu.Lock()
	for _, k := range keys {
		if _, ok := st.Attrs[scope][k]; ok {
			delete(st.Attrs[scope], k)
			gone = append(gone, k)
		}
	}
	st.mu.Unlock()
	c.store.markDirty(id, st)
	if pushAll {
		gone = keys
	}
	if scope == SharedScope && len(gone) > 0 {
		c.push(id, tbapi.AttrUpdate{Deleted: gone}.Encode())
	}
	return c.store.flushDirty()
}

// push sends a shared-attribute update to the device's subscribed sessions,
// in connect order.
func (c *Core) push(id string, payload []byte) {
	for _, s := range c.deviceSessions(id) {
		if _, ok := s.subscribedQoS(tbapi.TopicAttributes); ok {
			c.deliver(s, tbapi.TopicAttributes, payload)
		}
	}
}

// Attributes returns a copy of a device's attributes in a scope.
func (c *Core) Attributes(id, scope string) map[string]TsValue {
	out := map[string]TsValue{}
	if st := c.store.stateOf(id); st != nil {
		st.mu.Lock()
		for k, v := range st.Attrs[scope] {
			out[k] = v
		}
		st.mu.Unlock()
	}
	return out
}

// Latest returns a copy of a device's latest telemetry.
func (c *Core) Latest(id string) map[string]TsValue {
	out := map[string]TsValue{}
	if st := c.store.stateOf(id); st != nil {
		st.mu.Lock()
		for k, v := range st.Latest {
			out[k] = v
		}
		st.mu.Unlock()
	}
	return out
}

// History returns the kept values of a telemetry key, oldest first.
func (c *Core) History(id, key string) []TsValue {
	if st := c.store.stateOf(id); st != nil {
		st.mu.Lock()
		defer st.mu.Unlock()
		return append([]TsValue(nil), st.History[key]...)
	}
	return nil
}

// DeviceCounters are a device's message and data-point counts.
type DeviceCounters struct {
	Msgs, Points, LastActivity, LastConnect int64
}

// Counters returns a device's counters.
func (c *Core) Counters(id string) DeviceCounters {
	if st := c.store.stateOf(id); st != nil {
		st.mu.Lock()
		defer st.mu.Unlock()
		return DeviceCounters{st.Msgs, st.Points, st.LastActivity, st.LastConnect}
	}
	return DeviceCounters{}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
