package tbemu

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

func firmwareBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	b[0] = 0xE9
	return b
}

// download plays the device side of an update with the given chunk size and
// returns the bytes received.
func download(t *testing.T, c *client, reqID int, size int64, chunk int) []byte {
	t.Helper()
	var got []byte
	for n := 0; int64(len(got)) < size; n++ {
		c.pub(t, tbapi.FwRequestTopic(reqID, n), strconv.Itoa(chunk))
		p := c.expect(t, tbapi.FwResponseTopic(reqID, n))
		require.NotEmpty(t, p, "chunk %d empty before the end", n)
		got = append(got, p...)
	}
	return got
}

// A full OTA through the emulator: 1 MiB for every checksum algorithm, with
// chunks of 4096, 65536 and the whole file.
func TestOTAFullRollout(t *testing.T) {
	s := startServer(t, Options{})
	for ai, alg := range tbapi.Algorithms {
		for _, chunk := range []int{4096, 65536, 0} {
			t.Run(alg.String()+"/"+strconv.Itoa(chunk), func(t *testing.T) {
				name := alg.String() + "-" + strconv.Itoa(chunk)
				prof, err := s.CreateProfile(ProfileSpec{Name: name})
				require.NoError(t, err)
				d, err := s.CreateDevice(DeviceSpec{Name: name, ProfileID: prof.ID})
				require.NoError(t, err)
				c := connectTCP(t, s, name, d.Credentials.Token, "")
				c.sub(t, tbapi.TopicAttributes)
				data := firmwareBytes(1<<20, uint64(ai))
				pkg, err := s.AddFirmware(PackageSpec{Title: "CORE_ESP32", Version: name, ProfileID: prof.ID}, data, alg)
				require.NoError(t, err)
				require.Equal(t, tbapi.ChecksumHex(alg, data), pkg.Checksum)
				require.NoError(t, s.AssignProfileFirmware(prof.ID, pkg.ID))

				// ThingsBoard first pushes the deletion of fw_tag and fw_url.
				require.Equal(t, `{"deleted":["fw_tag","fw_url"]}`, string(c.expect(t, tbapi.TopicAttributes)))
				push, err := tbapi.DecodeAttrUpdate(c.expect(t, tbapi.TopicAttributes))
				require.NoError(t, err)
				var fw tbapi.FwInfo
				require.True(t, fw.Merge(push.Values))
				require.True(t, fw.Complete(), "all five keys in one push: %+v", push.Values)
				require.Equal(t, int64(1<<20), fw.Size)
				require.Equal(t, alg.String(), fw.Algorithm)
				require.Equal(t, "INITIATED", s.Latest(d.ID)[tbapi.KeyFwState].Value.Str)
				require.Equal(t, name, s.Latest(d.ID)[tbapi.KeyTargetFwVersion].Value.Str)
				require.Contains(t, s.Latest(d.ID), tbapi.KeyTargetFwTs)

				c.pub(t, tbapi.TopicTelemetry, `{"fw_state":"DOWNLOADING"}`)
				got := download(t, c, 1, fw.Size, chunk)
				require.True(t, bytes.Equal(data, got), "downloaded bytes differ")
				require.Equal(t, fw.Checksum, tbapi.ChecksumHex(alg, got))
				for _, st := range []string{"DOWNLOADED", "VERIFIED", "UPDATING"} {
					c.pub(t, tbapi.TopicTelemetry, `{"fw_state":"`+st+`"}`)
				}
				c.pub(t, tbapi.TopicTelemetry, `{"current_fw_title":"CORE_ESP32","current_fw_version":"`+name+`","fw_state":"UPDATED"}`)
				require.Equal(t, map[string]int{"UPDATED": 1}, s.OTAProgress()[pkg.ID])
			})
		}
	}
}

func TestChunkServing(t *testing.T) {
	s := startServer(t, Options{})
	d, _ := s.CreateDevice(DeviceSpec{Name: "cs"})
	c := connectTCP(t, s, "cs", d.Credentials.Token, "")
	c.c.Publish(tbapi.FwRequestTopic(1, 0), 1, false, "4096") // the session closes: no PUBACK to wait for
	require.Equal(t, tbapi.FwErrNotFound, string(c.expect(t, tbapi.TopicFwError)), "no package assigned")
	c.closed(t)

	data := firmwareBytes(10000, 9)
	pkg, err := s.AddFirmware(PackageSpec{Title: "T", Version: "cs"}, data, tbapi.MD5)
	require.NoError(t, err)
	require.NoError(t, s.AssignDeviceFirmware(d.ID, pkg.ID))
	c = connectTCP(t, s, "cs", d.Credentials.Token, "")
	c.pub(t, tbapi.FwRequestTopic(2, 2), "4096")
	require.Equal(t, data[8192:], c.expect(t, tbapi.FwResponseTopic(2, 2)), "the short last chunk")
	c.pub(t, tbapi.FwRequestTopic(2, 1), "")
	require.Equal(t, data[4096:8192], c.expect(t, tbapi.FwResponseTopic(2, 1)), "an empty payload reuses the size")
	c.pub(t, tbapi.FwRequestTopic(2, 3), "4096")
	require.Empty(t, c.expect(t, tbapi.FwResponseTopic(2, 3)), "past the end: empty payload")
	c.c.Publish(tbapi.FwRequestTopic(3, 0), 1, false, "65537")
	require.Equal(t, tbapi.FwErrPayloadTooLarge, string(c.expect(t, tbapi.TopicFwError)))
	c.closed(t)
}

// Device assignment wins over the profile's; unassigning deletes fw_* keys.
func TestAssignmentPrecedence(t *testing.T) {
	s := startServer(t, Options{})
	prof, _ := s.DefaultProfile()
	d, _ := s.CreateDevice(DeviceSpec{Name: "prec"})
	p1, _ := s.AddFirmware(PackageSpec{Title: "T", Version: "p1"}, firmwareBytes(100, 1), tbapi.SHA256)
	p2, _ := s.AddFirmware(PackageSpec{Title: "T", Version: "p2"}, firmwareBytes(100, 2), tbapi.SHA256)
	require.NoError(t, s.AssignDeviceFirmware(d.ID, p2.ID))
	require.NoError(t, s.AssignProfileFirmware(prof.ID, p1.ID))
	require.Eventually(t, func() bool { return s.Attributes(d.ID, SharedScope)[tbapi.KeyFwVersion].Value.Str == "p2" }, 2*time.Second, 10*time.Millisecond)
	// Queuing would have set the target at once.
	require.Equal(t, "p2", s.Latest(d.ID)[tbapi.KeyTargetFwVersion].Value.Str, "the profile change did not touch it")
	require.Equal(t, "INITIATED", s.Latest(d.ID)[tbapi.KeyFwState].Value.Str)
	require.Error(t, s.DeletePackage(p2.ID), "refused while assigned")

	c := connectTCP(t, s, "prec", d.Credentials.Token, "")
	c.sub(t, tbapi.TopicAttributes)
	require.NoError(t, s.AssignDeviceFirmware(d.ID, ""))
	// Falls back to the profile's package.
	require.Eventually(t, func() bool { return s.Attributes(d.ID, SharedScope)[tbapi.KeyFwVersion].Value.Str == "p1" }, 2*time.Second, 10*time.Millisecond)
	require.NoError(t, s.AssignProfileFirmware(prof.ID, ""))
	require.Eventually(t, func() bool { _, ok := s.Attributes(d.ID, SharedScope)[tbapi.KeyFwTitle]; return !ok }, 2*time.Second, 10*time.Millisecond)
	require.NoError(t, s.DeletePackage(p2.ID))

	other, _ := s.CreateProfile(ProfileSpec{Name: "other"})
	p3, _ := s.AddFirmware(PackageSpec{Title: "T", Version: "p3", ProfileID: other.ID}, firmwareBytes(100, 3), tbapi.SHA256)
	require.ErrorContains(t, s.AssignDeviceFirmware(d.ID, p3.ID), "Can't assign firmware with different deviceProfile!")
	_, err := s.UploadPackage(p3.ID, firmwareBytes(100, 3), "sha256", "deadbeef", "f.bin", "")
	require.ErrorContains(t, err, "Wrong otaPackage file!")
}

// The queue releases 2 per interval spread evenly, one every 100 ms, the
// first at once (ThingsBoard's pacing). The server
// runs on the real clock inside a synctest bubble, so the times are exact
// (this test failed about 3 runs in 40 when the OTA worker slept a whole
// interval whenever it found the queue empty).
func TestOTAQueuePace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := New(Options{OTAPackSize: 2, OTAPackInterval: 200 * time.Millisecond})
		require.NoError(t, err)
		defer s.Close()
		prof, _ := s.DefaultProfile()
		var ids []string
		for i := 0; i < 6; i++ {
			d, _ := s.CreateDevice(DeviceSpec{Name: "q" + strconv.Itoa(i)})
			ids = append(ids, d.ID)
		}
		pkg, _ := s.AddFirmware(PackageSpec{Title: "T", Version: "q"}, firmwareBytes(100, 1), tbapi.SHA256)
		require.NoError(t, s.AssignProfileFirmware(prof.ID, pkg.ID))
		count := func() (q, i int) {
			for _, id := range ids {
				switch s.Latest(id)[tbapi.KeyFwState].Value.Str {
				case "QUEUED":
					q++
				case "INITIATED":
					i++
				}
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
		q, i := count()
		require.Equal(t, 1, i, "one at first")
		require.Equal(t, 5, q)
		time.Sleep(100 * time.Millisecond)
		_, i = count()
		require.Equal(t, 2, i, "the second 100 ms later")
		time.Sleep(400 * time.Millisecond)
		_, i = count()
		require.Equal(t, 6, i)
	})
}
