package core_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/tbemu/core"
)

// fwStates returns each device's fw_state, by device name.
func (r *rig) fwStates() map[string]string {
	out := map[string]string{}
	for _, d := range r.core.Devices() {
		out[d.Name] = r.core.Latest(d.ID)[tbapi.KeyFwState].Value.Str
	}
	return out
}

func (r *rig) count(state string) int {
	n := 0
	for _, s := range r.fwStates() {
		if s == state {
			n++
		}
	}
	return n
}

// The queue spreads OTAPackSize releases evenly over OTAPackInterval, one
// every interval/size, the first at once, as ThingsBoard's consumer sleeps
// interval/size after each device; in the order the devices were queued (a
// profile's devices by name); and schedules nothing while empty.
func TestOTAQueuePaceExact(t *testing.T) {
	const interval = 200 * time.Millisecond
	const spacing = interval / 2
	r := newRig(t, core.Options{OTAPackSize: 2, OTAPackInterval: interval})
	prof, _ := r.core.DefaultProfile()
	clients := map[string]*client{}
	for _, i := range []int{5, 3, 0, 4, 1, 2} { // created out of order
		name := fmt.Sprintf("q%d", i)
		_, c := r.device(name, core.DeviceSpec{})
		c.sub(tbapi.TopicAttributes, 1)
		clients[name] = c
	}
	idle := r.clock.Pending() // the sessions' inactivity checks
	pkg, err := r.core.AddFirmware(core.PackageSpec{Title: "T", Version: "q"}, []byte("\xE9firmware"), tbapi.SHA256)
	require.NoError(t, err)
	require.NoError(t, r.core.AssignProfileFirmware(prof.ID, pkg.ID))
	require.Equal(t, 6, r.count("QUEUED"), "queued by the call, released by the clock")
	require.Equal(t, idle+1, r.clock.Pending(), "one release scheduled")

	pushedAt := func(name string) time.Time {
		t.Helper()
		// ThingsBoard first pushes the deletion of fw_tag and fw_url, never set.
		require.Equal(t, `{"deleted":["fw_tag","fw_url"]}`, clients[name].take(tbapi.TopicAttributes).payload)
		m := clients[name].take(tbapi.TopicAttributes)
		require.Contains(t, m.payload, `"fw_version":"q`)
		return m.at
	}
	r.clock.Run()
	require.Equal(t, map[string]string{"q0": "INITIATED", "q1": "QUEUED", "q2": "QUEUED", "q3": "QUEUED", "q4": "QUEUED", "q5": "QUEUED"}, r.fwStates())
	r.clock.Advance(spacing - time.Nanosecond)
	require.Equal(t, 1, r.count("INITIATED"))
	r.clock.Advance(time.Nanosecond)
	require.Equal(t, 2, r.count("INITIATED"))
	r.clock.Advance(4 * spacing)
	require.Equal(t, 6, r.count("INITIATED"))
	for i := range 6 {
		require.Equal(t, t0.Add(time.Duration(i)*spacing), pushedAt(fmt.Sprintf("q%d", i)), "q%d", i)
	}
	require.Equal(t, idle, r.clock.Pending(), "an empty queue schedules nothing")

	// A device queued right after a release waits for the spacing; after an
	// idle spell one is released at once.
	pkg2, err := r.core.AddFirmware(core.PackageSpec{Title: "T", Version: "q2"}, []byte("\xE9firmware 2"), tbapi.SHA256)
	require.NoError(t, err)
	reassign := func(name string) {
		t.Helper()
		d, _ := r.core.DeviceByName(name)
		require.NoError(t, r.core.AssignDeviceFirmware(d.ID, pkg2.ID))
	}
	r.clock.AdvanceTo(t0.Add(550 * time.Millisecond)) // q5 was released at 500 ms
	reassign("q0")
	r.clock.AdvanceTo(t0.Add(600*time.Millisecond - time.Nanosecond))
	clients["q0"].none()
	r.clock.AdvanceTo(t0.Add(600 * time.Millisecond))
	require.Equal(t, t0.Add(600*time.Millisecond), pushedAt("q0"))

	r.clock.AdvanceTo(t0.Add(time.Second))
	reassign("q1")
	r.clock.Run()
	require.Equal(t, t0.Add(time.Second), pushedAt("q1"), "released at once")
}

// A whole update through the direct adapter: the push, then every chunk.
func TestOTAUpdate(t *testing.T) {
	r := newRig(t, core.Options{})
	d, c := r.device("dev", core.DeviceSpec{})
	c.sub(tbapi.TopicAttributes, 1)
	data := make([]byte, 10000)
	for i := range data {
		data[i] = byte(i)
	}
	pkg, err := r.core.AddFirmware(core.PackageSpec{Title: "CORE_ESP32", Version: "1.1.0", Tag: "beta"}, data, tbapi.CRC32)
	require.NoError(t, err)
	require.NoError(t, r.core.AssignDeviceFirmware(d.ID, pkg.ID))
	require.Equal(t, "QUEUED", r.core.Latest(d.ID)[tbapi.KeyFwState].Value.Str)
	require.Equal(t, "1.1.0", r.core.Latest(d.ID)[tbapi.KeyTargetFwVersion].Value.Str)
	r.clock.Run()
	// ThingsBoard 4.3 first pushes the deletion of fw_url although it was
	// never set (fw_tag is the package's), then the fw_* values.
	require.Equal(t, `{"deleted":["fw_url"]}`, c.take(tbapi.TopicAttributes).payload)
	push, err := tbapi.DecodeAttrUpdate([]byte(c.take(tbapi.TopicAttributes).payload))
	require.NoError(t, err)
	var fw tbapi.FwInfo
	require.True(t, fw.Merge(push.Values))
	require.True(t, fw.Complete(), "all five keys in one push")
	c.none()
	require.Equal(t, "INITIATED", r.core.Latest(d.ID)[tbapi.KeyFwState].Value.Str)

	var got []byte
	for n := 0; ; n++ {
		require.True(t, c.pub(tbapi.FwRequestTopic(1, n), "4096"))
		p := c.take(tbapi.FwResponseTopic(1, n)).payload
		if p == "" {
			break
		}
		got = append(got, p...)
	}
	require.Equal(t, data, got)
	require.Equal(t, fw.Checksum, tbapi.ChecksumHex(tbapi.CRC32, got))
	c.pub(tbapi.TopicTelemetry, `{"current_fw_title":"CORE_ESP32","current_fw_version":"1.1.0","fw_state":"UPDATED"}`)
	require.Equal(t, map[string]int{"UPDATED": 1}, r.core.OTAProgress()[pkg.ID])

	// Unassigning deletes every fw_* key.
	require.NoError(t, r.core.AssignDeviceFirmware(d.ID, ""))
	// All nine fw_* keys, in the order ThingsBoard 4.3 lists them.
	require.Equal(t, `{"deleted":["fw_checksum_algorithm","fw_version","fw_ts","fw_tag","fw_checksum","fw_title","fw_state","fw_size","fw_url"]}`, c.take(tbapi.TopicAttributes).payload)
	require.Empty(t, r.core.Attributes(d.ID, core.SharedScope))
}
