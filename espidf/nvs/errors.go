//go:build go1.23

package nvs

// Error is an NVS error, named after ESP-IDF's esp_err_t.
type Error struct{ name string }

func (e *Error) Error() string { return e.name }

// Errors, as ESP-IDF names them. They are pointers, so a type switch or
// errors.Is tells them apart without comparing interfaces (which links
// TinyGo's reflect).
var (
	ErrNotFound       = &Error{"ESP_ERR_NVS_NOT_FOUND"}
	ErrTypeMismatch   = &Error{"ESP_ERR_NVS_TYPE_MISMATCH"}
	ErrKeyTooLong     = &Error{"ESP_ERR_NVS_KEY_TOO_LONG"}
	ErrValueTooLong   = &Error{"ESP_ERR_NVS_VALUE_TOO_LONG"}
	ErrNotEnoughSpace = &Error{"ESP_ERR_NVS_NOT_ENOUGH_SPACE"}
	ErrNoFreePages    = &Error{"ESP_ERR_NVS_NO_FREE_PAGES"}
	ErrNewVersion     = &Error{"ESP_ERR_NVS_NEW_VERSION_FOUND"}
	ErrInvalidSize    = &Error{"nvs: partition size must be a multiple of 4096, at least 2 pages"}
	ErrOutOfRange     = &Error{"nvs: flash access out of range"}
	ErrTooManyNames   = &Error{"nvs: no free namespace index (254 in use)"}
	ErrCorruptValue   = &Error{"nvs: value data does not match its CRC"}
)

// IsNotFound reports whether err is, or wraps, ErrNotFound.
func IsNotFound(err error) bool {
	for err != nil {
		if e, ok := err.(*Error); ok {
			return e == ErrNotFound
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// isErr is err == target without comparing interfaces.
func isErr(err error, target *Error) bool {
	e, ok := err.(*Error)
	return ok && e == target
}
