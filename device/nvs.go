package device

import (
	"errors"
	"fmt"
	"sync"

	"github.com/tbsim/tbsim/firmware"
)

// NVS errors, named after ESP-IDF's (nvs.h). A missing key also matches
// firmware.ErrNotFound.
var (
	ErrNVSKeyTooLong   = errors.New("ESP_ERR_NVS_KEY_TOO_LONG")
	ErrNVSValueTooLong = errors.New("ESP_ERR_NVS_VALUE_TOO_LONG")
	ErrNVSNotFound     = fmt.Errorf("ESP_ERR_NVS_NOT_FOUND: %w", firmware.ErrNotFound)
)

// NVS limits (NVS_KEY_NAME_MAX_SIZE - 1; a string holds at most 4000 bytes
// with its NUL, all in one page).
const (
	MaxNVSKeyLen    = 15
	MaxNVSStringLen = 4000 - 1
)

func checkNVS(namespace, key string, value *string) error {
	if len(namespace) == 0 || len(namespace) > MaxNVSKeyLen {
		return fmt.Errorf("namespace %q: %w", namespace, ErrNVSKeyTooLong)
	}
	if len(key) == 0 || len(key) > MaxNVSKeyLen {
		return fmt.Errorf("key %q: %w", key, ErrNVSKeyTooLong)
	}
	if value != nil && len(*value) > MaxNVSStringLen {
		return fmt.Errorf("key %q: %d bytes: %w", key, len(*value), ErrNVSValueTooLong)
	}
	return nil
}

// MemNVS is an in-memory NVS for one device, for tests.
type MemNVS struct {
	mu   sync.Mutex
	data map[string]string
}

var _ firmware.NVS = (*MemNVS)(nil)

// NewMemNVS returns an empty store.
func NewMemNVS() *MemNVS { return &MemNVS{data: map[string]string{}} }

// GetString implements firmware.NVS.
func (n *MemNVS) GetString(namespace, key string) (string, error) {
	if err := checkNVS(namespace, key, nil); err != nil {
		return "", err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	v, ok := n.data[namespace+"\x00"+key]
	if !ok {
		return "", ErrNVSNotFound
	}
	return v, nil
}

// SetString implements firmware.NVS.
func (n *MemNVS) SetString(namespace, key, value string) error {
	if err := checkNVS(namespace, key, &value); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.data[namespace+"\x00"+key] = value
	return nil
}

// Erase implements firmware.NVS.
func (n *MemNVS) Erase(namespace, key string) error {
	if err := checkNVS(namespace, key, nil); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.data, namespace+"\x00"+key)
	return nil
}
