package core_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/tbemu/core"
	"github.com/tbsim/tbsim/tbemu/direct"
)

// In memory and on a manual clock, the core starts no goroutine at all:
// none of the process's goroutines is in its code (counting them would see
// earlier tests' timers come and go).
func TestNoGoroutines(t *testing.T) {
	r := newRig(t, core.Options{OTAPackSize: 1})
	p := r.connect("provision", "provision", "")
	for i := range 20 {
		p.pub(tbapi.TopicProvisionRequest, provisionReq(fmt.Sprint("d", i)))
	}
	prof, _ := r.core.DefaultProfile()
	pkg, err := r.core.AddFirmware(core.PackageSpec{Title: "T", Version: "1"}, []byte("x"), tbapi.MD5)
	require.NoError(t, err)
	require.NoError(t, r.core.AssignProfileFirmware(prof.ID, pkg.ID))
	r.clock.Advance(time.Hour)
	require.Empty(t, goroutinesIn("tbsim/tbemu/core."))
	require.NoError(t, r.core.Close())
	require.Empty(t, goroutinesIn("tbsim/tbemu/core."))
}

// goroutinesIn returns the stacks of the other goroutines with a frame in pkg.
func goroutinesIn(pkg string) []string {
	var buf bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&buf, 2)
	var out []string
	for _, g := range strings.Split(buf.String(), "\n\n") {
		if strings.Contains(g, pkg) && !strings.Contains(g, "goroutinesIn") {
			out = append(out, g)
		}
	}
	return out
}

// Latest values reach the state file FlushInterval after the change, on
// the clock; shared attributes at once.
func TestFlushOnTheClock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	r := newRig(t, core.Options{StatePath: path})
	d, c := r.device("p1", core.DeviceSpec{})
	persisted := func(want string) bool {
		t.Helper()
		cp := filepath.Join(t.TempDir(), "copy.db") // the core holds the file's lock
		copyFile(t, path, cp)
		db, err := bolt.Open(cp, 0o600, &bolt.Options{ReadOnly: true})
		require.NoError(t, err)
		defer db.Close()
		var v []byte
		db.View(func(tx *bolt.Tx) error {
			v = append(v, tx.Bucket([]byte("state")).Get([]byte(d.ID))...)
			return nil
		})
		return bytes.Contains(v, []byte(want))
	}
	r.clock.Advance(10 * time.Second)
	c.pub(tbapi.TopicTelemetry, `{"temperature":12.5}`)
	r.clock.Advance(time.Second - time.Nanosecond)
	require.False(t, persisted("12.5"))
	r.clock.Advance(time.Nanosecond)
	require.True(t, persisted("12.5"))
	require.NoError(t, r.core.SetSharedAttributes(d.ID, []tbapi.Member{{Key: "interval", Value: str("at once")}}))
	require.True(t, persisted("at once"))
	r.clock.Advance(time.Minute)
	c.pub(tbapi.TopicTelemetry, `{"temperature":13.5}`)
	require.NoError(t, r.core.Close())
	require.True(t, persisted("13.5"), "Close writes what is pending")
}

func copyFile(t *testing.T, from, to string) {
	in, err := os.Open(from)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.Create(to)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}

// Close ends every session (in connect order) and every pending call.
func TestClose(t *testing.T) {
	r := newRig(t, core.Options{})
	d, a := r.device("a", core.DeviceSpec{})
	b := r.connect("provision", "provision", "")
	a.sub(tbapi.TopicRPCRequestFilter, 1)
	var rpcErr error
	_, err := r.core.StartRPC(d.ID, "m", tbapi.Value{}, true, time.Minute, func(_ []byte, err error) { rpcErr = err })
	require.NoError(t, err)
	require.NoError(t, r.core.Close())
	require.Equal(t, core.ReasonServerClosing, a.closed)
	require.Equal(t, core.ReasonServerClosing, b.closed)
	require.ErrorIs(t, rpcErr, core.ErrClosed)
	_, code := r.dial("x", d.Credentials.Token, "")
	require.Equal(t, core.ConnRefusedUnavailable, code)
	r.clock.Advance(time.Hour) // nothing runs after Close
}

// In real time the core is called from many goroutines at once (mochi runs
// one per client, the clock its own): the race detector checks this.
func TestConcurrentRealTime(t *testing.T) {
	c, err := core.New(core.Options{OTAPackSize: 3, OTAPackInterval: time.Millisecond, ClientRPCTimeout: time.Millisecond,
		StatePath: filepath.Join(t.TempDir(), "s.db"), FlushInterval: time.Millisecond})
	require.NoError(t, err)
	defer c.Close()
	srv := direct.New(c)
	var pkgs []core.Package
	for _, v := range []string{"1", "2"} {
		pkg, err := c.AddFirmware(core.PackageSpec{Title: "T", Version: v}, make([]byte, 5000), tbapi.SHA256)
		require.NoError(t, err)
		pkgs = append(pkgs, pkg)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := c.CreateDevice(core.DeviceSpec{Name: fmt.Sprint("dev", i)})
			require.NoError(t, err)
			require.NoError(t, c.AssignDeviceFirmware(d.ID, pkgs[0].ID))
			conn := &countConn{}
			s, code := srv.Connect(conn, d.Name, d.Credentials.Token, "")
			require.Equal(t, direct.ConnAccepted, code)
			srv.Subscribe(s, tbapi.TopicAttributes, 1)
			srv.Subscribe(s, tbapi.TopicRPCRequestFilter, 1)
			for n := range 50 {
				srv.Publish(s, tbapi.TopicTelemetry, []byte(`{"n":1}`), 1)
				srv.Publish(s, tbapi.AttrRequestTopic(n), []byte(`{}`), 1)
				srv.Publish(s, tbapi.RPCRequestTopic(n), []byte(`{"method":"x"}`), 1)
				srv.Publish(s, tbapi.FwRequestTopic(1, n%3), []byte("1024"), 1)
				srv.Ping(s)
			}
			srv.Disconnect(s)
			conn.mu.Lock()
			defer conn.mu.Unlock()
			require.GreaterOrEqual(t, conn.n, 100, "attribute responses and chunks")
		}()
	}
	for i := range 20 {
		for _, d := range c.Devices() {
			require.NoError(t, c.AssignDeviceFirmware(d.ID, pkgs[i%2].ID))
			c.SetSharedAttributes(d.ID, []tbapi.Member{{Key: "k", Value: str("v")}})
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			c.SendRPC(ctx, d.ID, "m", tbapi.Value{}, true, time.Millisecond)
			cancel()
		}
		c.Stats()
	}
	wg.Wait()
}

type countConn struct {
	mu sync.Mutex
	n  int
}

func (c *countConn) Deliver(string, []byte, byte) { c.mu.Lock(); c.n++; c.mu.Unlock() }
func (c *countConn) Close(string)                 {}
