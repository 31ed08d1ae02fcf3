//go:build go1.23

package firmware

import (
	"strconv"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// online runs once per connection: confirm a new image if the policy waits
// for this, report the running firmware, subscribe, ask for the fw_* shared
// attributes (an update assigned while offline is found this way), and start
// the telemetry cadence.
func (m *Machine) online() {
	m.state = StateOnline
	m.attempt, m.refusals = 0, 0
	m.cause = FailNone
	m.log("Connected to ThingsBoard!")
	if m.image.PendingVerify && m.cfg.MarkValid == MarkValidAfterConnect {
		m.markValid()
	}
	for _, f := range []string{tbapi.TopicAttributes, tbapi.TopicRPCRequestFilter, tbapi.TopicAttrResponseFilter, tbapi.TopicFwResponseFilter, tbapi.TopicFwError} {
		if err := m.p.Session.Subscribe(f, m.cfg.QoS); err != nil {
			m.log("[MQTT] Subscribe " + f + " failed: " + err.Error())
		}
	}
	info := tbapi.FwReport{Title: m.image.Title, Version: m.image.Version}
	if m.publish(tbapi.TopicTelemetry, info.Encode()) {
		m.log("[OTA] Current firmware info sent: " + m.image.Title + " v" + m.image.Version)
	}
	m.reportRollback()
	m.fw = tbapi.FwInfo{}
	m.requestID++
	m.fwAttrReq = m.requestID
	m.publish(tbapi.AttrRequestTopic(m.fwAttrReq), tbapi.AttrRequest{SharedKeys: tbapi.FwSharedKeys}.Encode())
	m.sendTelemetry()
}

// publish sends and logs a failure; it reports whether the message left.
func (m *Machine) publish(topic string, payload []byte) bool {
	_, ok := m.publishID(topic, payload)
	return ok
}

func (m *Machine) publishID(topic string, payload []byte) (uint32, bool) {
	id, err := m.p.Session.Publish(topic, payload, m.cfg.QoS)
	if err != nil {
		m.fail(FailPublish)
		m.log("[MQTT] Publish to " + topic + " failed: " + err.Error())
		return 0, false
	}
	return id, true
}

func (m *Machine) sendTelemetry() {
	if m.state != StateOnline {
		return
	}
	w := m.p.WiFi.Info()
	m.buf = tbapi.NewObj(m.buf).
		Float("temperature", m.p.Sensor.Temperature(), 2).
		Int("rssi", int64(w.RSSI)).
		Int("channel", int64(w.Channel)).
		Str("bssid", w.BSSID).
		Str("localIp", w.LocalIP).
		Str("ssid", w.SSID).
		Bytes()
	m.lastTelemetry = append(m.lastTelemetry[:0], m.buf...)
	if m.publish(tbapi.TopicTelemetry, m.buf) {
		m.log("[TELEMETRY] Data sent to ThingsBoard")
	} else {
		m.log("[TELEMETRY] Failed to send data")
	}
	m.setTimer(timerTelemetry, m.cfg.TelemetryInterval)
}

func (m *Machine) message(topic string, payload []byte) {
	switch m.state {
	case StateProvisioning:
		if topic == tbapi.TopicProvisionResponse {
			m.provisionResponse(payload)
		}
		return
	case StateOnline:
	default:
		return
	}
	switch {
	case topic == tbapi.TopicAttributes:
		m.attributePush(payload)
	case topic == tbapi.TopicFwError:
		if m.dl.active {
			m.otaFailed("server error: " + string(payload))
		}
	default:
		if id, ok := tbapi.ParseAttrResponseTopic(topic); ok {
			m.attributeResponse(id, payload)
		} else if id, ok := tbapi.ParseRPCRequestTopic(topic); ok {
			m.rpc(id, payload)
		} else if c, ok := tbapi.ParseChunkTopic(topic); ok && !c.Request && c.Kind == "fw" {
			m.chunk(c, payload)
		}
	}
}

func (m *Machine) malformed(topic string, err error) {
	m.log("[MQTT] Ignored malformed message on " + topic + ": " + err.Error())
}

func (m *Machine) attributePush(payload []byte) {
	u, err := tbapi.DecodeAttrUpdate(payload)
	if err != nil {
		m.malformed(tbapi.TopicAttributes, err)
		return
	}
	m.fw.Forget(u.Deleted)
	if m.fw.Merge(u.Values) {
		m.checkFirmware()
	}
}

func (m *Machine) attributeResponse(id int, payload []byte) {
	if id != m.fwAttrReq {
		return
	}
	m.fwAttrReq = 0
	r, err := tbapi.DecodeAttrResponse(payload)
	if err != nil {
		m.malformed(tbapi.AttrResponseTopic(id), err)
		return
	}
	m.fw = tbapi.FwInfo{}
	if m.fw.Merge(r.Shared) {
		m.checkFirmware()
	}
}

// rpc answers the server-side RPCs a device of this kind understands.
func (m *Machine) rpc(id int, payload []byte) {
	topic := tbapi.RPCResponseTopic(id)
	req, err := tbapi.DecodeRPCRequest(payload)
	if err != nil {
		m.publish(topic, tbapi.RPCError("bad request: "+err.Error()))
		return
	}
	m.log("[RPC] " + req.Method)
	switch req.Method {
	case "getTelemetry":
		body := m.lastTelemetry
		if len(body) == 0 {
			body = []byte("{}")
		}
		m.publish(topic, body)
	case "getFirmware":
		m.publish(topic, tbapi.NewObj(nil).Str("title", m.image.Title).Str("version", m.image.Version).
			Str("state", string(m.otaState)).Bytes())
	case "reboot":
		if id, ok := m.publishID(topic, tbapi.NewObj(nil).Str("result", "rebooting").Bytes()); ok {
			m.restartAfter(id)
		} else {
			m.restart()
		}
	default:
		m.publish(topic, tbapi.RPCError("unknown method: "+req.Method))
	}
}

func (m *Machine) published(id uint32) {
	if m.restarting && id == m.restartID {
		m.restart()
	}
}

// restartAfter restarts once publish id is acknowledged, or after
// RestartAckTimeout: esp_restart() right after a publish would often lose it.
func (m *Machine) restartAfter(id uint32) {
	m.restarting, m.restartID = true, id
	m.setTimer(timerRestart, m.cfg.RestartAckTimeout)
}

func (m *Machine) restart() {
	m.log("[SYSTEM] Restarting...")
	m.state = StateOff
	m.timers = [numTimers]int64{}
	m.p.OTA.Restart()
}

func itoa(n int) string { return strconv.Itoa(n) }
