//go:build !tinygo

package nvs

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"os"
	"strconv"
	"testing"
)

// row is one line of an nvs_partition_gen CSV.
type row struct{ key, typ, encoding, value string }

func readCSV(t *testing.T, path string) []row {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
		return nil
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
		return nil
	}
	var rows []row
	for _, r := range recs[1:] {
		rows = append(rows, row{r[0], r[1], r[2], r[3]})
	}
	return rows
}

// TestReadsIDFGenerated reads partitions ESP-IDF's generator wrote and finds
// every value of the CSV, typed as the CSV says.
func TestReadsIDFGenerated(t *testing.T) {
	for _, name := range []string{"strings", "long", "types"} {
		img, err := os.ReadFile("testdata/idf/" + name + ".bin")
		if err != nil {
			t.Fatal(err)
			return
		}
		s, err := Open(MemFlash(img), len(img))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
			return
		}
		want := map[string]Entry{}
		ns := ""
		for _, r := range readCSV(t, "testdata/idf/"+name+".csv") {
			if r.typ == "namespace" {
				ns = r.key
				continue
			}
			want[ns+"/"+r.key] = Entry{Namespace: ns, Key: r.key, Type: csvType(r.encoding), Data: csvData(t, r)}
		}
		got := s.Entries()
		if len(got) != len(want) {
			t.Errorf("%s: %d entries; want %d", name, len(got), len(want))
		}
		for _, e := range got {
			w, ok := want[e.Namespace+"/"+e.Key]
			if !ok || w.Type != e.Type || !bytes.Equal(w.Data, e.Data) {
				t.Errorf("%s: read %s/%s %v %.40x; want %v %.40x", name, e.Namespace, e.Key, e.Type, e.Data, w.Type, w.Data)
			}
		}
	}
}

func csvType(enc string) Type {
	switch enc {
	case "string":
		return String
	case "hex2bin", "base64", "binary":
		return BlobIndex
	}
	for t, n := range typeNames {
		if n == enc {
			return t
		}
	}
	return 0
}

func csvData(t *testing.T, r row) []byte {
	switch r.encoding {
	case "string":
		return []byte(r.value)
	case "hex2bin":
		b, err := hex.DecodeString(r.value)
		if err != nil {
			t.Fatal(err)
			return nil
		}
		return b
	case "base64":
		b, err := base64.StdEncoding.DecodeString(r.value)
		if err != nil {
			t.Fatal(err)
			return nil
		}
		return b
	}
	size := int(csvType(r.encoding) & 0x0F)
	var v uint64
	if r.encoding[0] == 'i' {
		n, err := strconv.ParseInt(r.value, 10, 64)
		if err != nil {
			t.Fatal(err)
			return nil
		}
		v = uint64(n)
	} else {
		n, err := strconv.ParseUint(r.value, 10, 64)
		if err != nil {
			t.Fatal(err)
			return nil
		}
		v = n
	}
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return b
}

// TestWritesLikeIDFGenerator makes the same string writes, in the same order,
// as a CSV of namespaces and strings, and compares the partition with the one
// ESP-IDF's generator wrote from that CSV: byte for byte.
func TestWritesLikeIDFGenerator(t *testing.T) {
	for _, name := range []string{"strings", "long"} {
		want, err := os.ReadFile("testdata/idf/" + name + ".bin")
		if err != nil {
			t.Fatal(err)
			return
		}
		f := NewMemFlash(len(want))
		s, err := Open(f, len(f))
		if err != nil {
			t.Fatal(err)
			return
		}
		ns := ""
		for _, r := range readCSV(t, "testdata/idf/"+name+".csv") {
			if r.typ == "namespace" {
				ns = r.key
				if _, err := s.namespace(ns); err != nil {
					t.Fatal(err)
					return
				}
				continue
			}
			if err := s.SetString(ns, r.key, r.value); err != nil {
				t.Fatal(err)
				return
			}
		}
		if !bytes.Equal(f, want) {
			for i := range want {
				if f[i] != want[i] {
					t.Errorf("%s: first difference at 0x%x: ours %02x, ESP-IDF's %02x", name, i, f[i], want[i])
					break
				}
			}
		}
	}
}
