//go:build go1.23

package tbapi

// CredentialsType is how a device authenticates (ThingsBoard DeviceCredentialsType).
type CredentialsType string

// Credential types a provision request may ask for.
const (
	CredAccessToken CredentialsType = "ACCESS_TOKEN"
	CredMQTTBasic   CredentialsType = "MQTT_BASIC"
	CredX509        CredentialsType = "X509_CERTIFICATE"
)

// BasicCredentials are MQTT_BASIC credentials. ThingsBoard writes "userName"
// (capital N) in responses and reads "username" in requests.
type BasicCredentials struct {
	ClientID string
	UserName string
	Password string
}

// ProvisionRequest is the payload a device publishes to /provision/request.
type ProvisionRequest struct {
	DeviceName string
	Key        string // provisionDeviceKey
	Secret     string // provisionDeviceSecret
	// CredentialsType is empty when the server should generate an access token.
	CredentialsType CredentialsType
	Token           string           // ACCESS_TOKEN: a token chosen by the device
	Basic           BasicCredentials // MQTT_BASIC
	Hash            string           // X509_CERTIFICATE
	Gateway         bool
}

// Encode writes the request as the ThingsBoard Arduino SDK does (field names of
// JsonConverter.buildProvisionRequestMsg).
func (r ProvisionRequest) Encode() []byte {
	o := NewObj(nil)
	if r.DeviceName != "" {
		o.Str("deviceName", r.DeviceName)
	}
	o.Str("provisionDeviceKey", r.Key).Str("provisionDeviceSecret", r.Secret)
	switch r.CredentialsType {
	case CredAccessToken:
		o.Str("credentialsType", string(CredAccessToken))
		if r.Token != "" {
			o.Str("token", r.Token)
		}
	case CredMQTTBasic:
		o.Str("credentialsType", string(CredMQTTBasic)).
			Str("clientId", r.Basic.ClientID).
			Str("username", r.Basic.UserName).
			Str("password", r.Basic.Password)
	case CredX509:
		o.Str("credentialsType", string(CredX509)).Str("hash", r.Hash)
	}
	if r.Gateway {
		o.Bool("gateway", true)
	}
	return o.Bytes()
}

// DecodeProvisionRequest reads a provision request as ThingsBoard's server
// does. A missing key or secret, or an unknown credentials type, is an error:
// ThingsBoard closes the session without an answer in those cases.
func DecodeProvisionRequest(data []byte) (ProvisionRequest, error) {
	obj, err := parseObject(data)
	if err != nil {
		return ProvisionRequest{}, err
	}
	var r ProvisionRequest
	var present bool
	if r.DeviceName, _, err = text(obj, "deviceName"); err != nil {
		return r, err
	}
	if r.Key, present, err = text(obj, "provisionDeviceKey"); err != nil || !present {
		return r, orMissing(err, "provisionDeviceKey")
	}
	if r.Secret, present, err = text(obj, "provisionDeviceSecret"); err != nil || !present {
		return r, orMissing(err, "provisionDeviceSecret")
	}
	ct, present, err := text(obj, "credentialsType")
	if err != nil {
		return r, err
	}
	if present {
		r.CredentialsType = CredentialsType(ct)
		if err := r.decodeCredentials(obj); err != nil {
			return r, err
		}
	}
	if g, ok := obj.Get("gateway"); ok && g.Kind == Bool {
		r.Gateway = g.Bool
	}
	return r, nil
}

func (r *ProvisionRequest) decodeCredentials(obj Value) error {
	var err error
	switch r.CredentialsType {
	case CredAccessToken:
		r.Token, _, err = text(obj, "token")
	case CredMQTTBasic:
		if r.Basic.ClientID, _, err = text(obj, "clientId"); err != nil {
			return err
		}
		if r.Basic.UserName, _, err = text(obj, "username"); err != nil {
			return err
		}
		r.Basic.Password, _, err = text(obj, "password")
	case CredX509:
		r.Hash, _, err = text(obj, "hash")
	default:
		err = fieldErr(ErrBadField, "credentialsType", "unknown type "+string(r.CredentialsType))
	}
	return err
}

func orMissing(err error, field string) error {
	if err != nil {
		return err
	}
	return fieldErr(ErrMissingField, field, "")
}

// ProvisionStatus is the status of a provision response.
type ProvisionStatus string

// Provision response statuses (ThingsBoard ResponseStatus).
const (
	ProvisionSuccess  ProvisionStatus = "SUCCESS"
	ProvisionFailure  ProvisionStatus = "FAILURE"
	ProvisionNotFound ProvisionStatus = "NOT_FOUND"
)

// The error messages ThingsBoard sends with FAILURE and NOT_FOUND.
const (
	ProvisionFailureMsg  = "Failed to provision device!"
	ProvisionNotFoundMsg = "Provision data was not found!"
)

// ProvisionResponse is what arrives on /provision/response.
type ProvisionResponse struct {
	Status          ProvisionStatus
	CredentialsType CredentialsType
	Token           string           // ACCESS_TOKEN value (or the X509 certificate)
	Basic           BasicCredentials // MQTT_BASIC value
	ErrorMsg        string
}

// Encode writes the response byte for byte as ThingsBoard's
// JsonConverter.toJson(ProvisionDeviceResponseMsg) does.
func (r ProvisionResponse) Encode() []byte {
	o := NewObj(nil)
	if r.Status != ProvisionSuccess {
		msg := r.ErrorMsg
		if msg == "" {
			msg = ProvisionFailureMsg
			if r.Status == ProvisionNotFound {
				msg = ProvisionNotFoundMsg
			}
		}
		return o.Str("errorMsg", msg).Str("status", string(r.Status)).Bytes()
	}
	if r.CredentialsType == CredMQTTBasic {
		basic := NewObj(nil).
			Str("clientId", r.Basic.ClientID).
			Str("userName", r.Basic.UserName).
			Str("password", r.Basic.Password).Bytes()
		o.Raw("credentialsValue", basic)
	} else {
		o.Str("credentialsValue", r.Token)
	}
	return o.Str("credentialsType", string(r.CredentialsType)).Str("status", string(r.Status)).Bytes()
}

// DecodeProvisionResponse reads a provision response. A SUCCESS without
// usable credentials is an error.
func DecodeProvisionResponse(data []byte) (ProvisionResponse, error) {
	obj, err := parseObject(data)
	if err != nil {
		return ProvisionResponse{}, err
	}
	var r ProvisionResponse
	status, present, err := text(obj, "status")
	if err != nil || !present {
		return r, orMissing(err, "status")
	}
	r.Status = ProvisionStatus(status)
	if r.ErrorMsg, _, err = text(obj, "errorMsg"); err != nil {
		return r, err
	}
	if r.Status != ProvisionSuccess {
		return r, nil
	}
	ct, _, err := text(obj, "credentialsType")
	if err != nil {
		return r, err
	}
	r.CredentialsType = CredentialsType(ct)
	cv, ok := obj.Get("credentialsValue")
	if !ok {
		return r, fieldErr(ErrMissingField, "credentialsValue", "")
	}
	if cv.Kind == Object {
		// The call first: in "return r, r.decodeBasic(cv)" Go leaves open
		// whether r is read before or after the call, and TinyGo reads it
		// before (empty credentials on the chip).
		err := r.decodeBasic(cv)
		return r, err
	}
	if cv.Kind != String || cv.Str == "" {
		return r, fieldErr(ErrBadField, "credentialsValue", "want a non-empty string or an object")
	}
	r.Token = cv.Str
	return r, nil
}

func (r *ProvisionResponse) decodeBasic(cv Value) error {
	if r.CredentialsType == "" {
		r.CredentialsType = CredMQTTBasic
	}
	var err error
	if r.Basic.ClientID, _, err = text(cv, "clientId"); err != nil {
		return err
	}
	if r.Basic.UserName, _, err = text(cv, "userName"); err != nil {
		return err
	}
	if r.Basic.Password, _, err = text(cv, "password"); err != nil {
		return err
	}
	if r.Basic.ClientID == "" && r.Basic.UserName == "" {
		return fieldErr(ErrBadField, "credentialsValue", "MQTT_BASIC needs a clientId or a userName")
	}
	return nil
}
