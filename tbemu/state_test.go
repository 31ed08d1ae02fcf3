package tbemu

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

func TestPersistenceAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tbemu.db")
	s, err := New(Options{StatePath: path, MQTTAddr: "127.0.0.1:0"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	require.Eventually(t, func() bool { return s.MQTTAddr() != "" }, time.Second, 10*time.Millisecond)

	prof, err := s.CreateProfile(ProfileSpec{Name: "p", ProvisionKey: "k2", ProvisionSecret: "s2"})
	require.NoError(t, err)
	d, err := s.CreateDevice(DeviceSpec{Name: "keep-me", ProfileID: prof.ID})
	require.NoError(t, err)
	data := firmwareBytes(30000, 5)
	pkg, err := s.AddFirmware(PackageSpec{Title: "T", Version: "9", ProfileID: prof.ID}, data, tbapi.CRC32)
	require.NoError(t, err)
	require.NoError(t, s.AssignDeviceFirmware(d.ID, pkg.ID))
	d, _ = s.Device(d.ID)
	c := connectTCP(t, s, "keep-me", d.Credentials.Token, "")
	c.pub(t, tbapi.TopicTelemetry, `{"temperature":12.5}`)
	c.pub(t, tbapi.TopicAttributes, `{"model":"v3"}`)
	require.Eventually(t, func() bool { return s.Attributes(d.ID, SharedScope)[tbapi.KeyFwVersion].Value.Str == "9" }, 2*time.Second, 10*time.Millisecond)
	cancel()
	<-done

	s2, err := New(Options{StatePath: path, MQTTAddr: "127.0.0.1:0"})
	require.NoError(t, err)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go s2.Run(ctx2)
	require.Eventually(t, func() bool { return s2.MQTTAddr() != "" }, time.Second, 10*time.Millisecond)
	d2, ok := s2.DeviceByName("keep-me")
	require.True(t, ok)
	require.Equal(t, d, d2)
	require.Len(t, s2.Profiles(), 2, "default + p, no second default")
	got, ok := s2.PackageData(pkg.ID)
	require.True(t, ok)
	require.Equal(t, data, got)
	require.Equal(t, "12.5", s2.Latest(d.ID)["temperature"].Value.Str)
	require.Equal(t, "v3", s2.Attributes(d.ID, ClientScope)["model"].Value.Str)
	require.Equal(t, "9", s2.Attributes(d.ID, SharedScope)[tbapi.KeyFwVersion].Value.Str)
	connectTCP(t, s2, "keep-me", d.Credentials.Token, "") // the token still works
}

// TestKillDuringWrites runs a writer in a child process, kills it with
// SIGKILL mid-stream, and checks that the file opens and is consistent.
func TestKillDuringWrites(t *testing.T) {
	if path := os.Getenv("TBEMU_KILL_CHILD"); path != "" {
		killChild(path)
		return
	}
	if testing.Short() {
		t.Skip("spawns a process")
	}
	path := filepath.Join(t.TempDir(), "tbemu.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillDuringWrites$")
	cmd.Env = append(os.Environ(), "TBEMU_KILL_CHILD="+path)
	require.NoError(t, cmd.Start())
	require.Eventually(t, func() bool { st, err := os.Stat(path); return err == nil && st.Size() > 64<<10 }, 20*time.Second, 20*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	cmd.Wait()

	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	require.NoError(t, err)
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}))
	require.NoError(t, db.Close())
	s, err := New(Options{StatePath: path})
	require.NoError(t, err)
	defer s.Close()
	devs := s.Devices()
	require.NotEmpty(t, devs)
	for _, d := range devs {
		sess, code := s.Connect(discardConn{}, "", d.Credentials.Token, "")
		require.Equal(t, byte(0), code, "device %s has no working token", d.Name)
		require.Equal(t, d.ID, sess.DeviceID())
	}
	t.Logf("%d devices survived the kill", len(devs))
}

func killChild(path string) {
	s, err := New(Options{StatePath: path})
	if err != nil {
		os.Exit(3)
	}
	ctx := context.Background()
	go s.Run(ctx)
	for i := 0; ; i++ {
		d, err := s.CreateDevice(DeviceSpec{Name: "k" + strconv.Itoa(i)})
		if err != nil {
			os.Exit(4)
		}
		sess, _ := s.Connect(discardConn{}, "", d.Credentials.Token, "")
		s.Publish(sess, tbapi.TopicTelemetry, []byte(`{"i":`+strconv.Itoa(i)+`}`), 1)
		s.Disconnect(sess)
		s.SetSharedAttributes(d.ID, []tbapi.Member{{Key: "n", Value: tbapi.Value{Kind: tbapi.Number, Str: strconv.Itoa(i)}}})
	}
}
