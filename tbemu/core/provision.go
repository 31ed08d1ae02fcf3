package core

import (
	"errors"
	"strings"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// provisionPublish handles a provisioning session: only /provision/request
// is accepted; anything else closes it. The session closes
// ProvisionCloseAfter after the response, whatever its status.
func (c *Core) provisionPublish(s *Session, topic string, payload []byte) error {
	if topic != tbapi.TopicProvisionRequest {
		return &protocolError{err: errors.New("provision session: unexpected topic " + topic), code: CodeTopicNameInvalid, ackFirst: true}
	}
	req, err := tbapi.DecodeProvisionRequest(payload)
	if err != nil {
		return provisionError(err) // missing key or secret, unknown credentials type: closed, no answer
	}
	resp := c.provision(req)
	if resp.Status == tbapi.ProvisionSuccess {
		c.stats.provisioned.Add(1)
	} else {
		c.stats.provisionFailed.Add(1)
	}
	c.reply(s, tbapi.TopicProvisionResponse, resp.Encode())
	s.mu.Lock()
	first := !s.closeSchedule
	s.closeSchedule = true
	s.mu.Unlock()
	if first { // a later request would only schedule a later close
		s.after(c.opts.ProvisionCloseAfter, func() { c.closeSession(s, ReasonProvisionExpired) })
	}
	return nil
}

// provision is DeviceProvisionServiceImpl.provisionDevice.
func (c *Core) provision(req tbapi.ProvisionRequest) tbapi.ProvisionResponse {
	failure := tbapi.ProvisionResponse{Status: tbapi.ProvisionFailure}
	notFound := tbapi.ProvisionResponse{Status: tbapi.ProvisionNotFound}
	name := req.DeviceName
	if req.DeviceName != "" && strings.TrimSpace(req.DeviceName) == "" {
		return failure
	}
	if req.Key == "" || req.Secret == "" {
		return notFound
	}
	prof, ok := c.profileByKey(req.Key)
	if !ok || prof.ProvisionType == ProvisionDisabled || prof.ProvisionSecret == "" || prof.ProvisionSecret != req.Secret {
		return notFound
	}
	switch prof.ProvisionType {
	case CheckPreProvisionedDevices:
		d, ok := c.DeviceByName(name)
		if !ok || d.ProfileID != prof.ID || c.provisioned(d.ID) {
			return failure
		}
		c.setAttr(d.ID, ServerScope, "provisionState", tbapi.Value{Kind: tbapi.String, Str: "provisioned"})
		return credentialsResponse(d.Credentials)
	default: // ALLOW_CREATE_NEW_DEVICES
		if name == "" {
			name = c.RandomString(20)
		}
		creds := Credentials{Type: tbapi.CredAccessToken, Token: req.Token}
		if req.CredentialsType == tbapi.CredMQTTBasic {
			creds = Credentials{Type: tbapi.CredMQTTBasic, ClientID: req.Basic.ClientID, UserName: req.Basic.UserName, Password: req.Basic.Password}
		}
		d, err := c.CreateDevice(DeviceSpec{Name: name, ProfileID: prof.ID, Credentials: creds})
		if err != nil {
			return failure // existing name, duplicate credentials
		}
		c.setAttr(d.ID, ServerScope, "provisionState", tbapi.Value{Kind: tbapi.String, Str: "provisioned"})
		return credentialsResponse(d.Credentials)
	}
}

func credentialsResponse(c Credentials) tbapi.ProvisionResponse {
	r := tbapi.ProvisionResponse{Status: tbapi.ProvisionSuccess, CredentialsType: c.Type, Token: c.Token}
	if c.Type == tbapi.CredMQTTBasic {
		r.Basic = tbapi.BasicCredentials{ClientID: c.ClientID, UserName: c.UserName, Password: c.Password}
	}
	return r
}

func (c *Core) provisioned(id string) bool {
	st := c.store.stateOf(id)
	if st == nil {
		return false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	_, ok := st.Attrs[ServerScope]["provisionState"]
	return ok
}
