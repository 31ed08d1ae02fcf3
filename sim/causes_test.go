package sim

import "testing"

func TestOTAErrorClass(t *testing.T) {
	for in, want := range map[string]string{
		"checksum mismatch (SHA256): got aa11, want bb22":                 "checksum mismatch (SHA256)",
		"chunk 12: no answer after 12 retries, 1.5s":                      "chunk N: no answer after N retries, Ns",
		"image rejected: wrong chip: want ESP32-S3 (9), got ESP32-C3 (5)": "image rejected: wrong chip: want ESP32-S3 (N), got ESP32-C3 (N)",
		"write chunk 3: UPDATE_ERROR_SPACE":                               "write chunk N: UPDATE_ERROR_SPACE",
		"":                                                                "unknown",
		"rollback: CORE_ESP32 v1.1.0 was not confirmed, running v1.0.0": "rollback: CORE_ESP32 v1.1.0 was not confirmed, running v1.0.0",
	} {
		if got := OTAErrorClass(in); got != want {
			t.Errorf("OTAErrorClass(%q) = %q; want %q", in, got, want)
		}
	}
}
