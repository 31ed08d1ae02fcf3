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
		m.log("[PROVISION] Already provisioned")
		return
	}
	token, err := m.p.NVS.GetString(ns, nvsKeyToken)
	if err != nil || token == "" {
		m.noCredentials(err)
		return
	}
	m.creds, m.hasCreds = Credentials{ClientID: m.name, Username: token}, true
	m.log("[NVS] Token loaded: " + token)
	m.log("[PROVISION] Already provisioned")
}

// noCredentials logs what the seed logs when NVS has no token; a read that
// failed (not a missing key) is worth a line of its own.
func (m *Machine) noCredentials(err error) {
	if err != nil && !isNotFound(err) {
		m.log("[NVS] Read failed: " + err.Error())
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
	for _, k := range []string{nvsKeyToken, nvsKeyClientID, nvsKeyMQTTUser, nvsKeyMQTTPass, nvsKeyTokenAhead} {
		errs = append(errs, m.p.NVS.Erase(ns, k))
	}
	if err := errors.Join(errs...); err != nil {
		m.fail(FailNVSWrite)
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
	m.provSent = false
	m.log("[PROVISION] Connecting to: " + m.cfg.server())
	if err := m.p.Session.Connect(Credentials{ClientID: m.name, Username: tbapi.ProvisionUser}); err != nil {
		m.log("[PROVISION] Connect failed: " + err.Error())
		m.offline(FailNetwork)
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
		m.offline(FailNetwork)
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
		if m.tryAhead {
			// The token chosen before a lost answer works: keep it for good.
			m.tryAhead = false
			if err := m.saveCredentials(m.creds); err != nil {
				m.offline(FailNVSWrite)
				m.log("[NVS] Failed to save token: " + err.Error())
				m.p.Session.Disconnect()
				m.unsaved = m.creds
				m.scheduleRetry(retrySave, "[NVS]")
				return
			}
			m.hasCreds = true
			m.clearAhead()
			m.log("[PROVISION] The chosen token works: provisioned before, answer lost")
		}
		m.online()
	}
}

func (m *Machine) sendProvisionRequest() {
	req := tbapi.ProvisionRequest{DeviceName: m.name, Key: m.cfg.ProvisionKey, Secret: m.cfg.ProvisionSecret}
	if m.cfg.Credentials == tbapi.CredMQTTBasic {
		req.CredentialsType = tbapi.CredMQTTBasic
		pass := m.randomHex(16) // before reading m.name: see internal/analysis/evalorder
		req.Basic = tbapi.BasicCredentials{ClientID: m.name, UserName: m.name, Password: pass}
	} else if m.cfg.WriteAheadToken {
		tok, ok := m.aheadToken()
		if !ok {
			m.provisionFailed(FailNVSWrite, "chosen token not saved")
			return
		}
		req.CredentialsType, req.Token = tbapi.CredAccessToken, tok
	}
	if err := m.p.Session.Subscribe(tbapi.TopicProvisionResponse, m.cfg.QoS); err != nil {
		m.log("[PROVISION] Subscribe failed: " + err.Error())
	}
	// The seed's two lines, in its order: the name after "Sending".
	m.log("[PROVISION] Sending provisioning request...")
	m.log("[PROVISION] Device name: " + m.name)
	if _, err := m.p.Session.Publish(tbapi.TopicProvisionRequest, req.Encode(), m.cfg.QoS); err != nil {
		m.provisionFailed(FailPublish, "request not sent: "+err.Error())
		return
	}
	m.provSent = true
	m.setTimer(timerConnect, m.cfg.ProvisionTimeout)
}

// aheadToken returns the token this device asks for, choosing it and
// writing it to NVS first if it has none: a power cut at any instant then
// leaves either no device on the server, or one whose token NVS holds.
func (m *Machine) aheadToken() (string, bool) {
	if m.ahead != "" {
		return m.ahead, true
	}
	ns := m.cfg.NVSNamespace
	if tok, err := m.p.NVS.GetString(ns, nvsKeyTokenAhead); err == nil && tok != "" {
		m.ahead = tok
		return tok, true
	}
	tok := m.randomAlnum(20)
	if err := m.p.NVS.SetString(ns, nvsKeyTokenAhead, tok); err != nil {
		m.log("[NVS] Failed to save the chosen token: " + err.Error())
		return "", false
	}
	m.ahead = tok
	m.log("[PROVISION] Chosen token saved before the request")
	return tok, true
}

func (m *Machine) randomAlnum(n int) string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[m.p.Rand.Uint32()%uint32(len(chars))]
	}
	return string(b)
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
	m.log("[PROVISION] Response received!")
	resp, err := tbapi.DecodeProvisionResponse(payload)
	if err != nil {
		m.provisionFailed(FailProvisionMalformed, "malformed response: "+err.Error())
		return
	}
	switch resp.Status {
	case tbapi.ProvisionSuccess:
	case tbapi.ProvisionNotFound:
		m.provisionFailed(FailProvisionNotFound, string(resp.Status)+" ("+resp.ErrorMsg+")")
		return
	case tbapi.ProvisionFailure:
		if m.ahead != "" {
			// Our name exists: maybe created by a request whose answer was
			// lost. If it holds the token we chose, that token works.
			m.offline(FailProvisionFailure)
			m.log("[PROVISION] Failed: FAILURE (" + resp.ErrorMsg + "); trying the token chosen before the request")
			m.p.Session.Disconnect()
			m.tryAhead = true
			m.creds = Credentials{ClientID: m.name, Username: m.ahead}
			m.connect()
			return
		}
		m.provisionFailed(FailProvisionFailure, string(resp.Status)+" ("+resp.ErrorMsg+")")
		return
	default:
		m.provisionFailed(FailProvisionMalformed, "status "+strconv.Quote(string(resp.Status)))
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
		m.provisionFailed(FailProvisionMalformed, "unexpected credentials type "+strconv.Quote(string(resp.CredentialsType)))
		return
	}
	m.p.Session.Disconnect()
	m.attempt = 0
	m.saveProvisioned(c)
}

// saveProvisioned keeps what provisioning returned, then connects with it.
// A write that fails is retried with backoff, holding the credentials in
// RAM: provisioning again would only meet FAILURE, the server knows the
// name now, and running on with a token NVS cannot keep would lose it at
// the next reset.
func (m *Machine) saveProvisioned(c Credentials) {
	if err := m.saveCredentials(c); err != nil {
		m.offline(FailNVSWrite)
		m.log("[NVS] Failed to save token: " + err.Error())
		m.unsaved = c
		m.scheduleRetry(retrySave, "[NVS]")
		return
	}
	m.unsaved = Credentials{}
	m.clearAhead()
	m.log("[NVS] Token saved successfully")
	m.creds, m.hasCreds = c, true
	m.connect()
}

// clearAhead forgets the write-ahead token once the real one is saved.
func (m *Machine) clearAhead() {
	if m.ahead == "" && !m.cfg.WriteAheadToken {
		return
	}
	m.ahead, m.tryAhead = "", false
	if err := m.p.NVS.Erase(m.cfg.NVSNamespace, nvsKeyTokenAhead); err != nil {
		m.fail(FailNVSWrite)
	}
}

func (m *Machine) provisionFailed(f Failure, why string) {
	m.offline(f)
	m.log("[PROVISION] Failed: " + why)
	m.p.Session.Disconnect()
	m.scheduleRetry(retryProvision, "[PROVISION]")
}

func (m *Machine) connectTimeout() {
	switch m.state {
	case StateProvisioning:
		if m.provSent {
			m.provisionFailed(FailProvisionTimeout, "timeout waiting for response")
		} else {
			m.provisionFailed(FailConnectTimeout, "timeout waiting for CONNACK")
		}
	case StateConnecting:
		m.offline(FailConnectTimeout)
		m.log("[MQTT] Connect timeout")
		m.p.Session.Disconnect()
		m.scheduleRetry(retryConnect, "[MQTT]")
	}
}

func (m *Machine) refused(code byte) {
	m.stopTimer(timerConnect)
	if m.state == StateProvisioning || m.state == StateConnecting {
		m.offline(refusal(code))
	}
	switch m.state {
	case StateProvisioning:
		m.log("[PROVISION] Connection refused (code " + strconv.Itoa(int(code)) + ")")
		m.scheduleRetry(retryProvision, "[PROVISION]")
	case StateConnecting:
		if m.tryAhead {
			// Our name exists with another token: truly stranded.
			m.tryAhead = false
			m.creds = Credentials{}
			m.cause = FailProvisionFailure // the name conflict is what keeps it offline
			m.log("[PROVISION] The chosen token is refused: the server's device of this name is not ours")
			m.scheduleRetry(retryProvision, "[PROVISION]")
			return
		}
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

func (m *Machine) connectionLost(link LinkError, reason string) {
	if m.state == StateProvisioning || m.state == StateConnecting || m.state == StateOnline {
		m.offline(link.failure())
	}
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
