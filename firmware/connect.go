//go:build go1.23

package firmware

import (
	"errors"
	"strconv"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// loadCredentials reads the token (or MQTT_BASIC credentials) from NVS, as
// the seed's setup() does.
func (m *Machine) loadCredentials() {
	m.log("[NVS] Checking for saved token...")
	ns := m.cfg.NVSNamespace
	if m.cfg.Credentials == tbapi.CredMQTTBasic {
		id, err1 := m.p.NVS.GetString(ns, nvsKeyClientID)
		user, err2 := m.p.NVS.GetString(ns, nvsKeyMQTTUser)
		pass, err3 := m.p.NVS.GetString(ns, nvsKeyMQTTPass)
		if err := errors.Join(err1, err2, err3); err != nil {
			m.noCredentials(err)
			return
		}
		m.creds, m.hasCreds = Credentials{ClientID: id, Username: user, Password: pass}, true
		m.log("[NVS] MQTT credentials loaded: clientId=" + id + " username=" + user)
		return
	}
	token, err := m.p.NVS.GetString(ns, nvsKeyToken)
	if err != nil || token == "" {
		m.noCredentials(err)
		return
	}
	m.creds, m.hasCreds = Credentials{ClientID: m.name, Username: token}, true
	m.log("[NVS] Token loaded: " + token)
}

func (m *Machine) noCredentials(err error) {
	if err != nil && !isNotFound(err) {
		m.log("[NVS] Read failed: " + err.Error())
	} else {
		m.log("[NVS] No saved token found")
	}
	m.log("[PROVISION] Not provisioned - will request provisioning")
}

// saveCredentials stores what provisioning returned. Each NVS write is atomic,
// and loadCredentials needs all three MQTT_BASIC keys, so a power cut between
// writes leaves a device that provisions again rather than a half identity.
func (m *Machine) saveCredentials(c Credentials) error {
	ns := m.cfg.NVSNamespace
	if m.cfg.Credentials == tbapi.CredMQTTBasic {
		if err := m.p.NVS.SetString(ns, nvsKeyMQTTPass, c.Password); err != nil {
			return err
		}
		if err := m.p.NVS.SetString(ns, nvsKeyMQTTUser, c.Username); err != nil {
			return err
		}
		return m.p.NVS.SetString(ns, nvsKeyClientID, c.ClientID)
	}
	return m.p.NVS.SetString(ns, nvsKeyToken, c.Username)
}

// eraseToken is the seed's clearTokenFromNVS(): the next boot provisions.
func (m *Machine) eraseToken() {
	ns := m.cfg.NVSNamespace
	var errs []error
	for _, k := range []string{nvsKeyToken, nvsKeyClientID, nvsKeyMQTTUser, nvsKeyMQTTPass} {
		errs = append(errs, m.p.NVS.Erase(ns, k))
	}
	if err := errors.Join(errs...); err != nil {
		m.log("[NVS] Failed to clear token: " + err.Error())
		return
	}
	m.creds, m.hasCreds = Credentials{}, false
	m.log("[NVS] Token cleared - device will provision on next boot")
}

func (m *Machine) connectOrProvision() {
	if m.hasCreds {
		m.connect()
	} else {
		m.startProvisioning()
	}
}

// startProvisioning connects as "provision". The client id is the device
// name rather than the Arduino SDK's "provision": ThingsBoard only looks at
// the username, and a standard broker would let same-id sessions evict each
// other during a provisioning storm.
func (m *Machine) startProvisioning() {
	m.state = StateProvisioning
	m.log("[PROVISION] Device name: " + m.name)
	m.log("[PROVISION] Connecting to ThingsBoard for provisioning...")
	if err := m.p.Session.Connect(Credentials{ClientID: m.name, Username: tbapi.ProvisionUser}); err != nil {
		m.log("[PROVISION] Connect failed: " + err.Error())
		m.scheduleRetry(retryProvision, "[PROVISION]")
		return
	}
	m.setTimer(timerConnect, m.cfg.ConnectTimeout)
}

func (m *Machine) connect() {
	m.state = StateConnecting
	m.log("[MQTT] Connecting to ThingsBoard...")
	if err := m.p.Session.Connect(m.creds); err != nil {
		m.log("[MQTT] Connect failed: " + err.Error())
		m.scheduleRetry(retryConnect, "[MQTT]")
		return
	}
	m.setTimer(timerConnect, m.cfg.ConnectTimeout)
}

func (m *Machine) connected() {
	m.stopTimer(timerConnect)
	switch m.state {
	case StateProvisioning:
		m.sendProvisionRequest()
	case StateConnecting:
		m.online()
	}
}

func (m *Machine) sendProvisionRequest() {
	req := tbapi.ProvisionRequest{DeviceName: m.name, Key: m.cfg.ProvisionKey, Secret: m.cfg.ProvisionSecret}
	if m.cfg.Credentials == tbapi.CredMQTTBasic {
		req.CredentialsType = tbapi.CredMQTTBasic
		pass := m.randomHex(16) // before reading m.name: see internal/analysis/evalorder
		req.Basic = tbapi.BasicCredentials{ClientID: m.name, UserName: m.name, Password: pass}
	}
	if err := m.p.Session.Subscribe(tbapi.TopicProvisionResponse, m.cfg.QoS); err != nil {
		m.log("[PROVISION] Subscribe failed: " + err.Error())
	}
	if _, err := m.p.Session.Publish(tbapi.TopicProvisionRequest, req.Encode(), m.cfg.QoS); err != nil {
		m.provisionFailed("request not sent: " + err.Error())
		return
	}
	m.log("[PROVISION] Request sent, waiting for response...")
	m.setTimer(timerConnect, m.cfg.ProvisionTimeout)
}

func (m *Machine) randomHex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[m.p.Rand.Uint32()&0xF]
	}
	return string(b)
}

func (m *Machine) provisionResponse(payload []byte) {
	m.stopTimer(timerConnect)
	resp, err := tbapi.DecodeProvisionResponse(payload)
	if err != nil {
		m.provisionFailed("malformed response: " + err.Error())
		return
	}
	if resp.Status != tbapi.ProvisionSuccess {
		m.provisionFailed(string(resp.Status) + " (" + resp.ErrorMsg + ")")
		return
	}
	var c Credentials
	switch {
	case resp.CredentialsType == tbapi.CredMQTTBasic && m.cfg.Credentials == tbapi.CredMQTTBasic:
		c = Credentials{ClientID: resp.Basic.ClientID, Username: resp.Basic.UserName, Password: resp.Basic.Password}
		m.log("[PROVISION] MQTT credentials: clientId=" + c.ClientID + " username=" + c.Username)
	case resp.CredentialsType == tbapi.CredAccessToken && m.cfg.Credentials == tbapi.CredAccessToken && resp.Token != "":
		c = Credentials{ClientID: m.name, Username: resp.Token}
		m.log("[PROVISION] Access Token: " + resp.Token)
	default:
		m.provisionFailed("unexpected credentials type " + strconv.Quote(string(resp.CredentialsType)))
		return
	}
	if err := m.saveCredentials(c); err != nil {
		m.log("[NVS] Failed to save token: " + err.Error())
		m.provisionFailed("token not saved")
		return
	}
	m.log("[NVS] Token saved successfully")
	m.creds, m.hasCreds = c, true
	m.p.Session.Disconnect()
	m.attempt = 0
	m.connect()
}

func (m *Machine) provisionFailed(why string) {
	m.log("[PROVISION] Failed: " + why)
	m.p.Session.Disconnect()
	m.scheduleRetry(retryProvision, "[PROVISION]")
}

func (m *Machine) connectTimeout() {
	switch m.state {
	case StateProvisioning:
		m.provisionFailed("timeout waiting for response")
	case StateConnecting:
		m.log("[MQTT] Connect timeout")
		m.p.Session.Disconnect()
		m.scheduleRetry(retryConnect, "[MQTT]")
	}
}

func (m *Machine) refused(code byte) {
	m.stopTimer(timerConnect)
	switch m.state {
	case StateProvisioning:
		m.log("[PROVISION] Connection refused (code " + strconv.Itoa(int(code)) + ")")
		m.scheduleRetry(retryProvision, "[PROVISION]")
	case StateConnecting:
		if code != ConnackNotAuthorized && code != ConnackBadCredentials {
			m.log("[MQTT] Connection refused (code " + strconv.Itoa(int(code)) + ")")
			m.scheduleRetry(retryConnect, "[MQTT]")
			return
		}
		m.refusals++
		m.log("[MQTT] Connection refused: not authorized (code " + strconv.Itoa(int(code)) + "), " +
			strconv.Itoa(m.refusals) + "/" + strconv.Itoa(m.cfg.RefusalsBeforeReprovision))
		if m.refusals < m.cfg.RefusalsBeforeReprovision {
			m.scheduleRetry(retryConnect, "[MQTT]")
			return
		}
		m.log("[PROVISION] Token rejected " + strconv.Itoa(m.refusals) + " times - provisioning again")
		m.refusals = 0
		m.reprovs++
		m.eraseToken()
		m.startProvisioning()
	}
}

func (m *Machine) connectionLost(reason string) {
	msg := "[MQTT] Connection lost"
	if reason != "" {
		msg += ": " + reason
	}
	switch m.state {
	case StateProvisioning:
		m.stopTimer(timerConnect)
		m.log(msg)
		m.scheduleRetry(retryProvision, "[PROVISION]")
	case StateConnecting, StateOnline:
		m.log(msg)
		m.clearSessionTimers()
		m.interruptDownload()
		m.scheduleRetry(retryConnect, "[MQTT]")
	}
}
