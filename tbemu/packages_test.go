package tbemu

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

func heapMB() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

func blobKeys(t *testing.T, path string) int {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	require.NoError(t, err)
	defer db.Close()
	n := 0
	require.NoError(t, db.View(func(tx *bolt.Tx) error { n = tx.Bucket([]byte("blobs")).Stats().KeyN; return nil }))
	return n
}

// Package bytes are stored once and freed, in memory and in the state file,
// when the last package that uses them is deleted; the next start gives
// the freed space back to the file system. (Before: a deleted package's
// bytes stayed in memory, in the file, and were loaded at every start.)
func TestPackageBytesFreed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server.db")
	s, err := New(Options{StatePath: path, MaxPackageSize: -1})
	require.NoError(t, err)
	add := func(version string, seed uint64, n int) Package {
		p, err := s.AddFirmware(PackageSpec{Title: "T", Version: version}, firmwareBytes(n, seed), tbapi.SHA256)
		require.NoError(t, err)
		return p
	}
	const big = 24 << 20
	base := heapMB()
	a, b := add("a", 1, big), add("b", 1, big) // the same bytes: stored once
	c := add("c", 2, 100<<10)
	require.Equal(t, a.DataSHA256, b.DataSHA256)
	require.InDelta(t, base+24, heapMB(), 6, "24 MB stored once")

	require.NoError(t, s.DeletePackage(a.ID))
	_, ok := s.PackageData(b.ID)
	require.True(t, ok, "b still uses the bytes")
	require.NoError(t, s.DeletePackage(b.ID))
	require.InDelta(t, base, heapMB(), 6, "the bytes left memory with the last package using them")
	require.NoError(t, s.Close())
	require.Equal(t, 1, blobKeys(t, path), "only c's bytes are in the file")
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Greater(t, st.Size(), int64(big), "bbolt keeps the freed pages until the next start")

	s, err = New(Options{StatePath: path})
	require.NoError(t, err)
	defer s.Close()
	st, err = os.Stat(path)
	require.NoError(t, err)
	require.Less(t, st.Size(), int64(2<<20), "the next start compacts the file")
	got, ok := s.PackageData(c.ID)
	require.True(t, ok)
	require.Equal(t, firmwareBytes(100<<10, 2), got)
}

// Uploads are bounded by the largest OTA slot unless told otherwise: over
// REST an upload beyond it gets 413 with ThingsBoard's error body, and
// nothing is stored. A second upload of the same bytes changes nothing;
// other bytes are refused as ThingsBoard refuses them.
func TestPackageUploadLimitAndReupload(t *testing.T) {
	s := startServer(t, Options{HTTPAddr: "127.0.0.1:0"})
	rc := login(t, s)
	prof, _ := s.DefaultProfile()
	create := func(version string) string {
		var p struct{ ID entityID }
		require.Equal(t, 200, rc.json("POST", "/api/otaPackage", map[string]any{"title": "CORE_ESP32", "version": version, "type": "FIRMWARE",
			"deviceProfileId": entityID{"DEVICE_PROFILE", prof.ID}}, &p))
		return p.ID.ID
	}
	upload := func(id string, data []byte) (int, map[string]any) {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		part, _ := w.CreateFormFile("file", "fw.bin")
		part.Write(data)
		w.Close()
		req, _ := http.NewRequest("POST", rc.base+"/api/otaPackage/"+id+"?checksumAlgorithm=SHA256", &buf)
		req.Header.Set("Content-Type", w.FormDataContentType())
		req.Header.Set("X-Authorization", "Bearer "+rc.token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var body map[string]any
		raw, _ := io.ReadAll(resp.Body)
		json.Unmarshal(raw, &body)
		return resp.StatusCode, body
	}

	id := create("big")
	code, body := upload(id, firmwareBytes(0x330000+1, 1))
	require.Equal(t, http.StatusRequestEntityTooLarge, code)
	require.Equal(t, float64(413), body["status"])
	require.Equal(t, float64(31), body["errorCode"])
	require.Equal(t, "Payload size exceeds the limit of 3342336 bytes", body["message"])
	p, _ := s.Package(id)
	require.False(t, p.HasData)
	_, err := s.AddFirmware(PackageSpec{Title: "CORE_ESP32", Version: "go-api"}, firmwareBytes(0x330000+1, 1), tbapi.SHA256)
	require.ErrorIs(t, err, ErrTooLarge, "the Go API has the same limit")

	code, _ = upload(id, firmwareBytes(0x330000, 1))
	require.Equal(t, 200, code, "the largest slot exactly fits")
	code, _ = upload(id, firmwareBytes(0x330000, 1))
	require.Equal(t, 200, code, "the same bytes again: nothing changes")
	code, body = upload(id, firmwareBytes(1000, 2))
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, "Updating otaPackage data is prohibited!", body["message"])
	data, _ := s.PackageData(id)
	require.Equal(t, firmwareBytes(0x330000, 1), data)

	// A second package of the same title and version: ThingsBoard's answer.
	var out map[string]any
	require.Equal(t, 400, rc.json("POST", "/api/otaPackage", map[string]any{"title": "CORE_ESP32", "version": "big", "type": "FIRMWARE"}, &out))
}

// login logs in with the default user.
func login(t *testing.T, s *Server) *restClient {
	t.Helper()
	rc := &restClient{t: t, base: "http://" + s.HTTPAddr()}
	var tok struct{ Token string }
	require.Equal(t, 200, rc.json("POST", "/api/auth/login", map[string]string{"username": "tenant@thingsboard.org", "password": "tenant"}, &tok))
	rc.token = tok.Token
	return rc
}
