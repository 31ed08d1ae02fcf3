//go:build go1.23

package firmware

import (
	"strconv"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// download is one OTA transfer in progress.
type download struct {
	active   bool
	target   tbapi.FwInfo
	reqID    int
	chunk    int // index of the chunk being waited for
	received int64
	retries  int
	begun    bool // OTA.Begin succeeded
	sum      *tbapi.Checksum
	logged   int64 // progress already logged, in quarters
}

func targetKey(f tbapi.FwInfo) string { return f.Title + "\x00" + f.Version }

// NVS keys of the update awaiting its first boot: a production firmware's way
// to notice that the bootloader rolled the update back.
const (
	nvsKeyPendingTitle   = "ota_title"
	nvsKeyPendingVersion = "ota_version"
)

// checkRollback runs at boot: an update recorded as pending whose image is
// not the one running was rolled back (it never confirmed itself).
func (m *Machine) checkRollback() {
	ns := m.cfg.NVSNamespace
	title, err1 := m.p.NVS.GetString(ns, nvsKeyPendingTitle)
	version, err2 := m.p.NVS.GetString(ns, nvsKeyPendingVersion)
	if err1 != nil || err2 != nil {
		return
	}
	if title == m.image.Title && version == m.image.Version {
		if !m.image.PendingVerify {
			m.clearPending() // booted and confirmed: the update stuck
		}
		return
	}
	m.clearPending()
	m.rolledBack = title + " v" + version
	m.failed = title + "\x00" + version
	m.log("[OTA] Rollback: " + m.rolledBack + " did not boot or confirm itself; running " + m.image.Title + " v" + m.image.Version)
}

func (m *Machine) clearPending() {
	err1 := m.p.NVS.Erase(m.cfg.NVSNamespace, nvsKeyPendingTitle)
	err2 := m.p.NVS.Erase(m.cfg.NVSNamespace, nvsKeyPendingVersion)
	if err1 != nil || err2 != nil {
		m.fail(FailNVSWrite)
		m.log("[NVS] Failed to clear the update record")
	}
}

// reportRollback tells ThingsBoard, once connected, that the update failed.
func (m *Machine) reportRollback() {
	if m.rolledBack == "" {
		return
	}
	why := "rollback: " + m.rolledBack + " did not boot or was not confirmed, running " + m.image.Title + " v" + m.image.Version
	m.rolledBack = ""
	m.otaError = why
	m.fail(FailOTA)
	m.report(tbapi.FwReport{State: tbapi.FwFailed, Error: why})
}

// checkFirmware decides what the fw_* shared attributes ask for.
func (m *Machine) checkFirmware() {
	f := m.fw
	if !f.Assigned() {
		return
	}
	if f.Title == m.image.Title && f.Version == m.image.Version {
		if m.dl.active {
			m.abortDownload()
		}
		m.report(tbapi.FwReport{State: tbapi.FwUpdated, Title: m.image.Title, Version: m.image.Version})
		m.log("[OTA] Firmware is up to date: " + f.Title + " v" + f.Version)
		return
	}
	if m.dl.active && targetKey(m.dl.target) == targetKey(f) && m.dl.target.Checksum == f.Checksum {
		return // the same assignment again (a push and a response crossing)
	}
	if m.failed == targetKey(f) {
		return // failed this boot already; wait for a new assignment or a reboot
	}
	if m.dl.active {
		m.log("[OTA] New assignment replaces the download in progress")
		m.abortDownload()
	}
	if f.Title != m.image.Title && !m.cfg.AcceptOtherTitle {
		// The Arduino SDK 0.14.0 (OTA_Firmware_Update.h,
		// Firmware_Shared_Attribute_Received) takes another title for
		// another kind of device and refuses it, with this fw_error.
		m.dl = download{target: f}
		m.otaFailed("Received firmware title (" + f.Title + ") is different and not meant for this device (" + m.image.Title + ")")
		return
	}
	m.startDownload(f)
}

func (m *Machine) startDownload(f tbapi.FwInfo) {
	m.log("[OTA] Update available: " + f.Title + " v" + f.Version + " (" + strconv.FormatInt(f.Size, 10) + " bytes)")
	m.dl = download{active: true, target: f}
	if !f.Complete() {
		m.otaFailed("missing shared attribute firmware keys: " + f.Missing())
		return
	}
	alg, ok := tbapi.ParseAlgorithm(f.Algorithm)
	if !ok {
		m.otaFailed("checksum algorithm " + strconv.Quote(f.Algorithm) + " is not supported")
		return
	}
	if f.Size <= 0 {
		m.otaFailed("firmware size " + strconv.FormatInt(f.Size, 10) + " is not positive")
		return
	}
	if err := m.p.OTA.Begin(int(f.Size)); err != nil {
		m.otaFailedKind(FailFlashWrite, "begin update: "+err.Error())
		return
	}
	m.dl.begun = true
	m.dl.sum = tbapi.NewChecksum(alg)
	m.requestID++
	m.dl.reqID = m.requestID
	m.report(tbapi.FwReport{State: tbapi.FwDownloading})
	m.requestChunk()
}

func (m *Machine) requestChunk() {
	m.publish(tbapi.FwRequestTopic(m.dl.reqID, m.dl.chunk), tbapi.ChunkSizePayload(m.cfg.ChunkSize))
	m.setTimer(timerChunk, m.cfg.ChunkTimeout)
}

// chunkLen is how many bytes chunk n must hold.
func (m *Machine) chunkLen(n int) int64 {
	size := m.dl.target.Size
	if m.cfg.ChunkSize == 0 {
		return size
	}
	cs := int64(m.cfg.ChunkSize)
	return min(cs, size-int64(n)*cs)
}

func (m *Machine) chunk(c tbapi.ChunkTopic, payload []byte) {
	if !m.dl.active || c.RequestID != m.dl.reqID || c.Chunk != m.dl.chunk {
		return // stale or foreign: a late answer to a retried request
	}
	if int64(len(payload)) != m.chunkLen(c.Chunk) {
		// As the Arduino SDK does: ignore it, the timeout asks again.
		m.log("[OTA] Chunk " + itoa(c.Chunk) + " has " + itoa(len(payload)) + " bytes, want " +
			strconv.FormatInt(m.chunkLen(c.Chunk), 10) + "; ignored")
		return
	}
	if err := m.p.OTA.Write(payload); err != nil {
		m.otaFailedKind(FailFlashWrite, "write chunk "+itoa(c.Chunk)+": "+err.Error())
		return
	}
	m.dl.sum.Write(payload)
	m.dl.received += int64(len(payload))
	m.written += int64(len(payload))
	m.dl.chunk++
	m.dl.retries = 0
	if q := m.dl.received * 4 / m.dl.target.Size; q > m.dl.logged && m.dl.received < m.dl.target.Size {
		m.dl.logged = q
		m.log("[OTA] Progress " + strconv.FormatInt(q*25, 10) + "% (" + strconv.FormatInt(m.dl.received, 10) + "/" +
			strconv.FormatInt(m.dl.target.Size, 10) + " bytes)")
	}
	if m.dl.received >= m.dl.target.Size {
		m.stopTimer(timerChunk)
		m.finishDownload()
		return
	}
	m.requestChunk()
}

func (m *Machine) chunkTimeout() {
	if !m.dl.active {
		return
	}
	m.dl.retries++
	m.fail(FailChunkTimeout)
	if m.dl.retries > m.cfg.ChunkRetries {
		m.otaFailed("chunk " + itoa(m.dl.chunk) + ": no answer after " + itoa(m.cfg.ChunkRetries) + " retries")
		return
	}
	m.log("[OTA] Chunk " + itoa(m.dl.chunk) + " timeout, retry " + itoa(m.dl.retries) + "/" + itoa(m.cfg.ChunkRetries))
	m.requestChunk()
}

// finishDownload: DOWNLOADED, checksum, VERIFIED, end (image validation),
// UPDATING, set boot slot, restart once UPDATING is acknowledged.
func (m *Machine) finishDownload() {
	t := m.dl.target
	m.log("[OTA] Download complete: " + strconv.FormatInt(m.dl.received, 10) + " bytes")
	m.report(tbapi.FwReport{State: tbapi.FwDownloaded})
	if got := m.dl.sum.Hex(); !tbapi.ChecksumEqual(got, t.Checksum) {
		m.otaFailed("checksum mismatch (" + t.Algorithm + "): got " + got + ", want " + t.Checksum)
		return
	}
	m.log("[OTA] Checksum verified (" + t.Algorithm + ")")
	m.report(tbapi.FwReport{State: tbapi.FwVerified})
	m.dl.begun = false // End frees the update, whatever it returns
	if err := m.p.OTA.End(); err != nil {
		m.otaFailed("image rejected: " + err.Error())
		return
	}
	id, ok := m.report(tbapi.FwReport{State: tbapi.FwUpdating})
	ns := m.cfg.NVSNamespace
	err := m.p.NVS.SetString(ns, nvsKeyPendingTitle, t.Title)
	if err == nil {
		err = m.p.NVS.SetString(ns, nvsKeyPendingVersion, t.Version)
	}
	if err != nil {
		// The update still boots; only a later rollback would go unreported.
		m.fail(FailNVSWrite)
		m.log("[NVS] Failed to record the pending update: " + err.Error())
	}
	if err := m.p.OTA.SetBoot(t.Title, t.Version); err != nil {
		m.clearPending()
		m.otaFailedKind(FailFlashWrite, "set boot partition: "+err.Error())
		return
	}
	m.dl = download{}
	m.log("[OTA] Update complete, rebooting into " + t.Title + " v" + t.Version)
	if ok {
		m.restartAfter(id)
	} else {
		m.restart()
	}
}

// otaFailed reports FAILED, keeps the running image and remembers the
// assignment so it is not retried in a loop this boot.
func (m *Machine) otaFailed(why string) { m.otaFailedKind(FailOTA, why) }

// otaFailedKind is otaFailed counted as kind f (a slot that refused a write
// is a flash failure, not a bad package).
func (m *Machine) otaFailedKind(f Failure, why string) {
	m.fail(f)
	m.log("[OTA] Update failed: " + why)
	m.failed = targetKey(m.dl.target)
	m.abortDownload()
	m.otaError = why
	m.report(tbapi.FwReport{State: tbapi.FwFailed, Error: why})
}

func (m *Machine) abortDownload() {
	if m.dl.begun {
		m.p.OTA.Abort()
	}
	m.stopTimer(timerChunk)
	m.dl = download{}
}

// interruptDownload drops a transfer cut by a lost link. It is not a failure:
// the next connection asks for the fw_* attributes and starts again.
func (m *Machine) interruptDownload() {
	if m.dl.active {
		m.log("[OTA] Download interrupted at " + strconv.FormatInt(m.dl.received, 10) + " bytes")
		m.abortDownload()
	}
}

func (m *Machine) report(r tbapi.FwReport) (uint32, bool) {
	if r.State != "" {
		m.otaState = r.State
		if r.State != tbapi.FwFailed {
			m.otaError = ""
		}
	}
	return m.publishID(tbapi.TopicTelemetry, r.Encode())
}
