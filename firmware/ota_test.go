package firmware_test

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tbsim/tbsim/firmware"
	"github.com/tbsim/tbsim/firmware/firmwaretest"
	"github.com/tbsim/tbsim/firmware/tbapi"
)

// image returns n bytes that start like an ESP image.
func image(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	b[0] = 0xE9
	return b
}

// assignment is the fw_* shared attributes ThingsBoard pushes for data.
func assignment(title, version string, data []byte, alg tbapi.Algorithm) string {
	f := tbapi.FwInfo{Title: title, Version: version, Size: int64(len(data)), Algorithm: alg.String(), Checksum: tbapi.ChecksumHex(alg, data)}
	return string(tbapi.AppendValue(nil, tbapi.Value{Kind: tbapi.Object, Members: f.Members()}))
}

// server answers chunk requests from data, like ThingsBoard's
// getOtaPackageCallback: bytes [size*n, size*n+size), size 0 = whole file.
type server struct {
	data     []byte
	answered int
	drop     map[int]int // chunk index -> requests to leave unanswered
	mangle   func(n int, p []byte) []byte
}

func (s *server) serve(t *testing.T, r *firmwaretest.Rig) {
	t.Helper()
	for guard := 0; guard < 100000; guard++ {
		reqs := r.Session.On("v2/fw/request/")
		if s.answered >= len(reqs) {
			return
		}
		m := reqs[s.answered]
		s.answered++
		c, ok := tbapi.ParseChunkTopic(m.Topic)
		if !ok {
			t.Fatalf("bad chunk request topic %s", m.Topic)
			return
		}
		if s.drop[c.Chunk] > 0 {
			s.drop[c.Chunk]--
			continue
		}
		size, _, err := tbapi.ParseChunkSize([]byte(m.Payload))
		if err != nil {
			t.Fatalf("chunk size %q: %v", m.Payload, err)
			return
		}
		var p []byte
		if size == 0 {
			p = s.data
		} else if start := size * c.Chunk; start < len(s.data) {
			p = s.data[start:min(start+size, len(s.data))]
		}
		if s.mangle != nil {
			p = s.mangle(c.Chunk, p)
		}
		c.Request = false
		r.Message(c.String(), string(p))
	}
	t.Fatal("chunk loop did not end")
}

// states returns the fw_state values the device reported, in order.
func states(r *firmwaretest.Rig) []string {
	var out []string
	for _, m := range r.Session.On(tbapi.TopicTelemetry) {
		v, err := tbapi.Parse([]byte(m.Payload))
		if err != nil {
			continue
		}
		if s, ok := v.Get(tbapi.KeyFwState); ok {
			out = append(out, s.Str)
		}
	}
	return out
}

func ackLast(r *firmwaretest.Rig, state string) {
	for _, m := range r.Session.On(tbapi.TopicTelemetry) {
		if strings.Contains(m.Payload, `"fw_state":"`+state+`"`) {
			r.Ack(m.ID)
		}
	}
}

func TestOTAHappyPath(t *testing.T) {
	data := image(10000)
	r := online(t, cfg())
	r.Message(tbapi.TopicAttributes, assignment("CORE_ESP32", "1.1.0", data, tbapi.SHA256))
	(&server{data: data}).serve(t, r)
	if got, want := strings.Join(states(r), ","), "DOWNLOADING,DOWNLOADED,VERIFIED,UPDATING"; got != want {
		t.Fatalf("fw_state sequence = %s; want %s", got, want)
		return
	}
	if !bytes.Equal(r.OTA.Written, data) {
		t.Fatal("slot contents differ from the image")
		return
	}
	if reqs := r.Session.On("v2/fw/request/"); len(reqs) != 3 || reqs[2].Payload != "4096" {
		t.Fatalf("chunk requests = %+v; want 3 of size 4096", reqs)
		return
	}
	if r.OTA.Restarts != 0 {
		t.Fatal("restarted before UPDATING was acknowledged")
		return
	}
	ackLast(r, "UPDATING")
	if r.OTA.Restarts != 1 {
		t.Fatal("no restart after UPDATING was acknowledged")
		return
	}
	// The new image boots, connects and reports UPDATED once ThingsBoard's
	// attributes say the running version is the assigned one.
	r.WiFiUp()
	r.Connected()
	if !r.Console.Has("Version: 1.1.0") {
		t.Fatal("rebooted banner does not show 1.1.0")
		return
	}
	if r.OTA.Valid != 1 {
		t.Fatalf("MarkValid calls = %d; want 1 (at boot, stock Arduino)", r.OTA.Valid)
		return
	}
	req, _ := r.Session.Last(tbapi.TopicAttrRequestPrefix)
	id, _ := tbapi.ParseAttrRequestTopic(req.Topic)
	r.Message(tbapi.AttrResponseTopic(id), `{"shared":`+assignment("CORE_ESP32", "1.1.0", data, tbapi.SHA256)+`}`)
	last, _ := r.Session.Last(tbapi.TopicTelemetry)
	if want := `{"current_fw_title":"CORE_ESP32","current_fw_version":"1.1.0","fw_state":"UPDATED"}`; last.Payload != want {
		t.Fatalf("after reboot = %s; want %s", last.Payload, want)
		return
	}
	if st := r.M.Status(); st.Version != "1.1.0" || st.OTAState != tbapi.FwUpdated {
		t.Fatalf("status = %+v", st)
		return
	}
}

func TestOTARestartsWithoutAck(t *testing.T) {
	data := image(5000)
	r := online(t, cfg())
	r.Message(tbapi.TopicAttributes, assignment("CORE_ESP32", "1.1.0", data, tbapi.MD5))
	(&server{data: data}).serve(t, r)
	r.Advance(2 * time.Second)
	if r.OTA.Restarts != 1 {
		t.Fatal("no restart after RestartAckTimeout")
		return
	}
}

func TestOTAEveryAlgorithmAndSize(t *testing.T) {
	sizes := []struct {
		name      string
		size      int
		chunk     int
		wantChunk int
	}{
		{"short last chunk", 10000, 4096, 3},
		{"exact multiple", 8192, 4096, 2},
		{"one byte", 1, 4096, 1},
		{"whole file", 70000, 0, 1},
		{"64KiB chunks", 200000, 65536, 4},
	}
	for _, alg := range tbapi.Algorithms {
		for _, sz := range sizes {
			t.Run(alg.String()+"/"+sz.name, func(t *testing.T) {
				c := cfg()
				c.ChunkSize = sz.chunk
				data := image(sz.size)
				r := online(t, c)
				r.Message(tbapi.TopicAttributes, assignment("CORE_ESP32", "2.0", data, alg))
				(&server{data: data}).serve(t, r)
				if got := strings.Join(states(r), ","); got != "DOWNLOADING,DOWNLOADED,VERIFIED,UPDATING" {
					t.Fatalf("states = %s", got)
					return
				}
				if n := len(r.Session.On("v2/fw/request/")); n != sz.wantChunk {
					t.Fatalf("chunk requests = %d; want %d", n, sz.wantChunk)
					return
				}
				if !bytes.Equal(r.OTA.Written, data) {
					t.Fatal("slot differs from image")
					return
				}
			})
		}
	}
}

func TestOTAChecksumMismatchEveryAlgorithm(t *testing.T) {
	for _, alg := range tbapi.Algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			data := image(9000)
			r := online(t, cfg())
			r.Message(tbapi.TopicAttributes, assignment("CORE_ESP32", "1.1.0", data, alg))
			corrupt := &server{data: data, mangle: func(n int, p []byte) []byte {
				if n == 1 {
					p = append([]byte(nil), p...)
					p[10] ^= 0xFF
				}
				return p
			}}
			corrupt.serve(t, r)
			assertFailed(t, r, "checksum mismatch ("+alg.String()+")")
		})
	}
}

// assertFailed checks FAILED with the reason, the old image kept, and the
// device back to normal operation.
func assertFailed(t *testing.T, r *firmwaretest.Rig, reason string) {
	t.Helper()
	last := lastReport(r)
	v, _ := tbapi.Parse([]byte(last.Payload))
	st, _ := v.Get(tbapi.KeyFwState)
	fe, _ := v.Get(tbapi.KeyFwError)
	if st.Str != "FAILED" || !strings.Contains(fe.Str, reason) {
		t.Fatalf("last report = %s; want FAILED with %q", last.Payload, reason)
		return
	}
	if r.OTA.Pending != nil || r.OTA.Restarts != 0 {
		t.Fatal("a failed update switched the boot slot or restarted")
		return
	}
	if s := r.M.Status(); s.Version != "1.0.0" || s.Downloading || s.State != firmware.StateOnline {
		t.Fatalf("status after failure = %+v", s)
		return
	}
	n := len(r.Session.On(tbapi.TopicTelemetry))
	r.Advance(5 * time.Second)
	if len(r.Session.On(tbapi.TopicTelemetry)) != n+1 {
		t.Fatal("telemetry did not go on after the failure")
		return
	}
}

func TestOTAFailures(t *testing.T) {
	data := image(9000)
	cases := []struct {
		name   string
		setup  func(r *firmwaretest.Rig)
		assign string
		act    func(t *testing.T, r *firmwaretest.Rig)
		reason string
	}{
		{"image rejected", func(r *firmwaretest.Rig) { r.OTA.EndErr = errString("ESP_ERR_OTA_VALIDATE_FAILED: wrong chip") },
			assignment("CORE_ESP32", "1.1.0", data, tbapi.SHA256),
			func(t *testing.T, r *firmwaretest.Rig) { (&server{data: data}).serve(t, r) }, "image rejected: ESP_ERR_OTA_VALIDATE_FAILED"},
		{"fw error", nil, assignment("CORE_ESP32", "1.1.0", data, tbapi.SHA256),
			func(t *testing.T, r *firmwaretest.Rig) { r.Message(tbapi.TopicFwError, "NOT_FOUND") }, "server error: NOT_FOUND"},
		{"larger than the slot", func(r *firmwaretest.Rig) { r.OTA.SlotSize = 4096 },
			assignment("CORE_ESP32", "1.1.0", data, tbapi.SHA256), nil, "begin update: UPDATE_ERROR_SIZE"},
		{"unknown algorithm", nil, `{"fw_title":"CORE_ESP32","fw_version":"1.1.0","fw_size":10,"fw_checksum":"x","fw_checksum_algorithm":"SHA1"}`,
			nil, `checksum algorithm "SHA1" is not supported`},
		{"missing keys", nil, `{"fw_title":"CORE_ESP32","fw_version":"1.1.0"}`, nil, "missing shared attribute firmware keys: fw_size,fw_checksum,fw_checksum_algorithm"},
		{"write error", func(r *firmwaretest.Rig) { r.OTA.WriteErr = errString("UPDATE_ERROR_WRITE") },
			assignment("CORE_ESP32", "1.1.0", data, tbapi.SHA256),
			func(t *testing.T, r *firmwaretest.Rig) { (&server{data: data}).serve(t, r) }, "write chunk 0: UPDATE_ERROR_WRITE"},
		{"retries exhausted", nil, assignment("CORE_ESP32", "1.1.0", data, tbapi.SHA256),
			func(t *testing.T, r *firmwaretest.Rig) {
				s := &server{data: data, drop: map[int]int{1: 100}}
				for i := 0; i < 14; i++ {
					s.serve(t, r)
					r.Advance(5 * time.Second)
				}
				if n := r.Console.Count("[OTA] Chunk 1 timeout"); n != 12 {
					t.Fatalf("chunk 1 retries = %d; want 12", n)
					return
				}
			}, "chunk 1: no answer after 12 retries"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := online(t, cfg())
			if c.setup != nil {
				c.setup(r)
			}
			r.Message(tbapi.TopicAttributes, c.assign)
			if c.act != nil {
				c.act(t, r)
			}
			assertFailed(t, r, c.reason)
			if r.OTA.Begun {
				t.Fatal("update left open (no Abort)")
				return
			}
			// The same assignment again does not loop; a new one starts afresh.
			reqs := len(r.Session.On("v2/fw/request/"))
			r.Message(tbapi.TopicAttributes, c.assign)
			if len(r.Session.On("v2/fw/request/")) != reqs {
				t.Fatal("the failed assignment was retried at once")
				return
			}
			r.OTA.SlotSize, r.OTA.EndErr, r.OTA.WriteErr = 0x330000, nil, nil
			r.Message(tbapi.TopicAttributes, assignment("CORE_ESP32", "1.2.0", data, tbapi.SHA256))
			first, ok := r.Session.Last("v2/fw/request/")
			if !ok {
				t.Fatal("new assignment did not start a download")
				return
			}
			if !strings.HasSuffix(first.Topic, "/chunk/0") || reqs > 0 && topicRequestID(t, first.Topic) == topicRequestID(t, r.Session.On("v2/fw/request/")[reqs-1].Topic) {
				t.Fatalf("new download request %s reuses the old request id", first.Topic)
				return
			}
		})
	}
}

// lastReport returns the last telemetry message carrying fw_state.
func lastReport(r *firmwaretest.Rig) firmwaretest.Message {
	var last firmwaretest.Message
	for _, m := range r.Session.On(tbapi.TopicTelemetry) {
		if strings.Contains(m.Payload, `"fw_state"`) {
			last = m
		}
	}
	return last
}

type errString string

func (e errString) Error() string { return string(e) }

func topicRequestID(t *testing.T, topic string) int {
	c, ok := tbapi.ParseChunkTopic(topic)
	if !ok {
		t.Fatalf("bad topic %s", topic)
		return 0
	}
	return c.RequestID
}

func TestOTAChunkTimeoutThenSuccess(t *testing.T) {
	data := image(9000)
	r := online(t, cfg())
	r.Message(tbapi.TopicAttributes, assignment("CORE_ESP32", "1.1.0", data, tbapi.CRC32))
	s := &server{data: data, drop: map[int]int{1: 2}}
	s.serve(t, r)
	r.Advance(5 * time.Second)
	s.serve(t, r)
	r.Advance(5 * time.Second)
	s.serve(t, r)
	if got := strings.Join(states(r), ","); got != "DOWNLOADING,DOWNLOADED,VERIFIED,UPDATING" {
		t.Fatalf("states = %s", got)
		return
	}
	if n := r.Console.Count("[OTA] Chunk 1 timeout"); n != 2 {
		t.Fatalf("timeouts = %d; want 2", n)
		return
	}
}

func TestOTAIgnoresWrongChunks(t *testing.T) {
	data := image(9000)
	r := online(t, cfg())
	r.Message(tbapi.TopicAttributes, assignment("CORE_ESP32", "1.1.0", data, tbapi.SHA256))
	req, _ := r.Session.Last("v2/fw/request/")
	id := topicRequestID(t, req.Topic)
	r.Message(tbapi.FwResponseTopic(id, 0), string(data[:100]))      // short
	r.Message(tbapi.FwResponseTopic(id+5, 0), string(data[:4096]))   // other request
	r.Message(tbapi.FwResponseTopic(id, 3), string(data[8192:9000])) // other index
	if len(r.OTA.Written) != 0 {
		t.Fatalf("wrote %d bytes of wrong chunks", len(r.OTA.Written))
		return
	}
	(&server{data: data}).serve(t, r)
	r.Advance(5 * time.Second)
	(&server{data: data, answered: len(r.Session.On("v2/fw/request/")) - 1}).serve(t, r)
	if !bytes.Equal(r.OTA.Written, data) {
		t.Fatal("download did not complete after the retry")
		return
	}
}

func TestOTASameVersionReportsUpdated(t *testing.T) {
	r := online(t, cfg())
	r.Message(tbapi.TopicAttributes, assignment("CORE_ESP32", "1.0.0", image(100), tbapi.SHA256))
	if got := strings.Join(states(r), ","); got != "UPDATED" {
		t.Fatalf("states = %s; want UPDATED only", got)
		return
	}
	if len(r.Session.On("v2/fw/request/")) != 0 || r.OTA.Begun {
		t.Fatal("downloaded the running version")
		return
	}
}

// An update assigned while the device was offline arrives as the answer to the
// fw_* attribute request sent on connect.
func TestOTAAssignedWhileOffline(t *testing.T) {
	data := image(6000)
	r := online(t, cfg())
	req, _ := r.Session.Last(tbapi.TopicAttrRequestPrefix)
	id, _ := tbapi.ParseAttrRequestTopic(req.Topic)
	r.Message(tbapi.AttrResponseTopic(id+1), `{"shared":`+assignment("X", "9", data, tbapi.SHA256)+`}`) // not ours
	if len(r.Session.On("v2/fw/request/")) != 0 {
		t.Fatal("acted on a response to another request")
		return
	}
	r.Message(tbapi.AttrResponseTopic(id), `{"shared":`+assignment("CORE_ESP32", "1.1.0", data, tbapi.SHA256)+`}`)
	(&server{data: data}).serve(t, r)
	if got := strings.Join(states(r), ","); got != "DOWNLOADING,DOWNLOADED,VERIFIED,UPDATING" {
		t.Fatalf("states = %s", got)
		return
	}
	// Nothing assigned: ThingsBoard answers {} and nothing happens.
	r2 := online(t, cfg())
	req, _ = r2.Session.Last(tbapi.TopicAttrRequestPrefix)
	id, _ = tbapi.ParseAttrRequestTopic(req.Topic)
	r2.Message(tbapi.AttrResponseTopic(id), `{}`)
	if len(states(r2)) != 0 {
		t.Fatalf("states for {} = %v", states(r2))
		return
	}
}

// A link lost mid-download is not a failure: the next connection asks again
// and downloads afresh with a new request id.
func TestOTAResumesAfterReconnect(t *testing.T) {
	data := image(20000)
	r := online(t, cfg())
	assign := assignment("CORE_ESP32", "1.1.0", data, tbapi.SHA256)
	r.Message(tbapi.TopicAttributes, assign)
	s := &server{data: data, drop: map[int]int{2: 1}}
	s.serve(t, r)
	oldID := topicRequestID(t, r.Session.On("v2/fw/request/")[0].Topic)
	r.Lost("EOF")
	if r.OTA.Aborts != 1 || strings.Contains(strings.Join(states(r), ","), "FAILED") {
		t.Fatalf("aborts = %d, states = %v; want an abort and no FAILED", r.OTA.Aborts, states(r))
		return
	}
	r.Advance(r.UntilNext())
	r.Connected()
	req, _ := r.Session.Last(tbapi.TopicAttrRequestPrefix)
	id, _ := tbapi.ParseAttrRequestTopic(req.Topic)
	r.Message(tbapi.AttrResponseTopic(id), `{"shared":`+assign+`}`)
	s.serve(t, r)
	if !bytes.Equal(r.OTA.Written, data) {
		t.Fatal("second download incomplete")
		return
	}
	if newID := topicRequestID(t, r.Session.On("v2/fw/request/")[3].Topic); newID == oldID {
		t.Fatalf("request id %d reused after reconnect", newID)
		return
	}
	if !r.Console.Has("[OTA] Download interrupted at 8192 bytes") {
		t.Fatal("no interrupted line")
		return
	}
}

// A new image that cannot confirm itself (mark-valid after connect) refuses
// a further update, as esp_ota_begin does in PENDING_VERIFY.
func TestOTABeginRefusedWhilePendingVerify(t *testing.T) {
	c := cfg()
	c.MarkValid = firmware.MarkValidAfterConnect
	r := firmwaretest.NewRig(c)
	r.NVS.Data["tb/token"] = "T"
	r.OTA.Run = firmware.Image{Title: "CORE_ESP32", Version: "1.1.0", PendingVerify: true}
	r.OTA.Valid = 0
	r.Boot()
	r.WiFiUp()
	r.OTA.Run.PendingVerify = true // MarkValid failed to stick
	r.Message(tbapi.TopicAttributes, assignment("CORE_ESP32", "1.2.0", image(100), tbapi.SHA256))
	if got := strings.Join(states(r), ","); got != "" {
		t.Fatalf("states before connect = %s; want none", got)
		return
	}
	r.Connected()
	r.OTA.Run.PendingVerify = true
	r.Message(tbapi.TopicAttributes, assignment("CORE_ESP32", "1.2.0", image(100), tbapi.SHA256))
	last := lastReport(r)
	if !strings.Contains(last.Payload, "ESP_ERR_OTA_ROLLBACK_INVALID_STATE") {
		t.Fatalf("last report = %s", last.Payload)
		return
	}
}

func TestOTAProgressLines(t *testing.T) {
	data := image(40960)
	r := online(t, cfg())
	r.Message(tbapi.TopicAttributes, assignment("CORE_ESP32", "1.1.0", data, tbapi.SHA256))
	(&server{data: data}).serve(t, r)
	for _, p := range []int{25, 50, 75} {
		if !r.Console.Has("[OTA] Progress " + strconv.Itoa(p) + "%") {
			t.Errorf("no %d%% line", p)
		}
	}
	if n := r.Console.Count("[OTA] Progress"); n != 3 {
		t.Errorf("progress lines = %d; want 3", n)
	}
}

// An update the bootloader rolled back (the new image never confirmed itself)
// is reported FAILED once the old image connects, and not downloaded again.
func TestOTARollbackReported(t *testing.T) {
	c := cfg()
	c.MarkValid = firmware.MarkValidAfterConnect
	data := image(9000)
	r := online(t, c)
	assign := assignment("CORE_ESP32", "1.1.0", data, tbapi.SHA256)
	r.Message(tbapi.TopicAttributes, assign)
	(&server{data: data}).serve(t, r)
	ackLast(r, "UPDATING") // restart into 1.1.0, PENDING_VERIFY
	if st := r.M.Status(); st.Version != "1.1.0" || !st.PendingVerify {
		t.Fatalf("after restart: %+v", st)
		return
	}
	// Power lost before it connects: the bootloader aborts it, 1.0.0 runs.
	r.OTA.Run = firmware.Image{Title: "CORE_ESP32", Version: "1.0.0"}
	r.Boot()
	if !r.Console.Has("[OTA] Rollback: CORE_ESP32 v1.1.0 did not boot or confirm itself") {
		t.Fatal("no rollback line")
		return
	}
	r.WiFiUp()
	r.Connected()
	last := lastReport(r)
	if !strings.Contains(last.Payload, `"fw_state":"FAILED"`) || !strings.Contains(last.Payload, "rollback: CORE_ESP32 v1.1.0 did not boot or was not confirmed") {
		t.Fatalf("report after rollback = %s", last.Payload)
		return
	}
	req, _ := r.Session.Last(tbapi.TopicAttrRequestPrefix)
	id, _ := tbapi.ParseAttrRequestTopic(req.Topic)
	n := len(r.Session.On("v2/fw/request/"))
	r.Message(tbapi.AttrResponseTopic(id), `{"shared":`+assign+`}`)
	if len(r.Session.On("v2/fw/request/")) != n {
		t.Fatal("the rolled-back version was downloaded again in the same boot")
		return
	}
	// A successful update clears the marker: no FAILED after the next boots.
	if _, ok := r.NVS.Data["tb/ota_title"]; ok {
		t.Fatal("pending marker left in NVS")
		return
	}
}

// An assignment whose fw_title is not the running image's is refused as the
// Arduino SDK 0.14.0 refuses it (OTA_Firmware_Update.h FW_NOT_FOR_US):
// FAILED with its message, nothing requested or written, not retried for the
// same assignment. AcceptOtherTitle downloads it instead.
func TestOtherTitleRefused(t *testing.T) {
	data := image(5000)
	r := online(t, cfg())
	r.Message(tbapi.TopicAttributes, assignment("OTHER_BOARD", "2.0.0", data, tbapi.SHA256))
	if got := strings.Join(states(r), ","); got != "FAILED" {
		t.Fatalf("fw_state sequence = %s; want FAILED", got)
		return
	}
	last, _ := r.Session.Last(tbapi.TopicTelemetry)
	want := `"fw_error":"Received firmware title (OTHER_BOARD) is different and not meant for this device (CORE_ESP32)"`
	if !strings.Contains(last.Payload, want) {
		t.Fatalf("report = %s; want %s", last.Payload, want)
		return
	}
	if n := len(r.Session.On("v2/fw/request/")); n != 0 || r.OTA.Begun {
		t.Fatalf("chunk requests = %d, OTA begun %v; want none", n, r.OTA.Begun)
		return
	}
	if f := r.M.Status().Failures; f[firmware.FailOTA] != 1 {
		t.Fatalf("OTA failures = %d; want 1", f[firmware.FailOTA])
		return
	}
	// The same assignment again (a push and a response crossing): no second report.
	r.Message(tbapi.TopicAttributes, assignment("OTHER_BOARD", "2.0.0", data, tbapi.SHA256))
	if got := strings.Join(states(r), ","); got != "FAILED" {
		t.Fatalf("after a repeat: fw_state sequence = %s; want one FAILED", got)
		return
	}
	// The right title afterwards is downloaded as usual.
	r.Message(tbapi.TopicAttributes, assignment("CORE_ESP32", "1.1.0", data, tbapi.SHA256))
	(&server{data: data}).serve(t, r)
	if got := strings.Join(states(r), ","); got != "FAILED,DOWNLOADING,DOWNLOADED,VERIFIED,UPDATING" {
		t.Fatalf("fw_state sequence = %s", got)
		return
	}
}

func TestOtherTitleAcceptedWhenConfigured(t *testing.T) {
	data := image(5000)
	c := cfg()
	c.AcceptOtherTitle = true
	r := online(t, c)
	r.Message(tbapi.TopicAttributes, assignment("OTHER_BOARD", "2.0.0", data, tbapi.SHA256))
	(&server{data: data}).serve(t, r)
	if got, want := strings.Join(states(r), ","), "DOWNLOADING,DOWNLOADED,VERIFIED,UPDATING"; got != want {
		t.Fatalf("fw_state sequence = %s; want %s", got, want)
		return
	}
	if !bytes.Equal(r.OTA.Written, data) {
		t.Fatal("slot contents differ from the image")
		return
	}
}
