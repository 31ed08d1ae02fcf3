package device

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIdentityUniqueAndStable(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{0, 42} {
		seen := make(map[MAC]uint32, 1_000_000)
		for i := uint32(0); i < 1_000_000; i++ {
			id := NewIdentity(seed, i)
			if j, dup := seen[id.Base]; dup {
				t.Fatalf("seed %d: devices %d and %d share %v", seed, j, i, id.Base)
			}
			seen[id.Base] = i
			if id.Base[5]&3 != 0 {
				t.Fatalf("base %v is not a multiple of 4: a device's SoftAP MAC could be another's base", id.Base)
			}
		}
	}
	require.Equal(t, NewIdentity(7, 123), NewIdentity(7, 123))
	require.NotEqual(t, NewIdentity(7, 123).Base, NewIdentity(8, 123).Base)
	// Beyond 2^22 devices the next OUI takes over.
	require.NotEqual(t, NewIdentity(1, 5).Base, NewIdentity(1, 5+1<<22).Base)
}

func TestIdentityFormat(t *testing.T) {
	id := NewIdentity(1, 0)
	name := id.Name()
	require.Len(t, name, 17)
	require.Regexp(t, `^([0-9A-F]{2}:){5}[0-9A-F]{2}$`, name)
	m, err := ParseMAC(name)
	require.NoError(t, err)
	require.Equal(t, id.Base, m)
	ap := id.SoftAP()
	require.Equal(t, id.Base[5]+1, ap[5])
	found := false
	for _, oui := range espressifOUIs {
		found = found || (oui[0] == m[0] && oui[1] == m[1] && oui[2] == m[2])
	}
	require.True(t, found, "OUI %v is not Espressif's", m)
	_, err = ParseMAC("24:0A:C4:00:00")
	require.Error(t, err)
}
