package chiptest

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tbsim/tbsim/device/espimage"
	"github.com/tbsim/tbsim/espidf/nvs"
	"github.com/tbsim/tbsim/espidf/otadata"
)

// Where esp32.Layout puts its partitions (and esp32/cmd/otatest its
// scratch image), and the flash size.
const (
	nvsOffset     = 0x0F0000
	nvsSize       = 0x5000
	otadataOffset = 0x0F5000
	app1Offset    = 0x100000
	scratchOffset = 0x1F0000
	flashSize     = 4 << 20
)

type env struct {
	repo, tools, dir string
}

func setup(t *testing.T) *env {
	t.Helper()
	if os.Getenv("TBSIM_CHIP_TESTS") != "1" {
		t.Skip("set TBSIM_CHIP_TESTS=1 to boot the firmware in qemu-esp32c3 (needs ../shared/tools)")
		return nil
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
		return nil
	}
	tools := filepath.Join(repo, "..", "shared", "tools")
	if _, err := os.Stat(filepath.Join(tools, "qemu-esp32c3")); err != nil {
		t.Fatalf("TBSIM_CHIP_TESTS=1 but the shared tools are missing: %v", err)
		return nil
	}
	return &env{repo: repo, tools: tools, dir: t.TempDir()}
}

func (e *env) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = e.repo
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		return ""
	}
	return string(out)
}

// image lays out a flash: the program at 0 and an nvs partition (nil: erased).
func (e *env) image(t *testing.T, fw, part []byte) string {
	img := bytes.Repeat([]byte{0xFF}, flashSize)
	copy(img, fw)
	copy(img[nvsOffset:], part)
	path := filepath.Join(e.dir, "flash.bin")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
		return ""
	}
	return path
}

// boot runs the emulator on a flash image until the log has every line of
// want, in order (each a substring of one line), or 60 s pass; it returns
// the log.
func (e *env) boot(t *testing.T, flash string, want ...string) []string {
	t.Helper()
	return e.bootWith(t, nil, flash, want...)
}

// bootWith is boot with extra arguments for qemu-esp32c3 before the image
// (--nic adds the Ethernet MAC on QEMU's user network).
func (e *env) bootWith(t *testing.T, args []string, flash string, want ...string) []string {
	t.Helper()
	cmd := exec.Command(filepath.Join(e.tools, "qemu-esp32c3"), append(args, flash)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
		return nil
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
		return nil
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- strings.TrimRight(sc.Text(), "\r")
		}
	}()
	var log []string
	deadline := time.After(60 * time.Second)
	next := 0
	for next < len(want) {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Errorf("the emulator exited before printing %q", want[next])
				next = len(want)
				break
			}
			log = append(log, l)
			if strings.Contains(l, want[next]) {
				next++
			}
		case <-deadline:
			t.Errorf("no %q within 60 s", want[next])
			next = len(want)
		}
	}
	// SIGTERM: QEMU then flushes the flash image file before it exits.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	stop := time.AfterFunc(10*time.Second, func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	for range lines { // drain until the pipe closes
	}
	cmd.Wait()
	stop.Stop()
	if t.Failed() {
		t.Logf("serial log:\n%s", strings.Join(log, "\n"))
	}
	return log
}

// readNVS parses the nvs partition of a flash image.
func readNVS(t *testing.T, flash string) *nvs.Store {
	t.Helper()
	img, err := os.ReadFile(flash)
	if err != nil {
		t.Fatal(err)
		return nil
	}
	s, err := nvs.Open(nvs.MemFlash(img[nvsOffset:nvsOffset+nvsSize]), nvsSize)
	if err != nil {
		t.Fatalf("the chip's NVS does not parse: %v", err)
		return nil
	}
	return s
}

func expect(t *testing.T, s *nvs.Store, ns, key, want string) {
	t.Helper()
	if got, err := s.GetString(ns, key); err != nil || got != want {
		t.Errorf("NVS %s/%s = %q, %v; want %q", ns, key, got, err, want)
	}
}

// TestBoot provisions a device on the PC, exports its NVS, boots the firmware
// on it in the emulated ESP32-C3 (twice), then from an empty NVS.
func TestBoot(t *testing.T) {
	e := setup(t)
	if e == nil {
		return
	}
	fwPath := filepath.Join(e.dir, "fw.bin")
	e.run(t, filepath.Join(e.repo, "esp32", "build.sh"), fwPath)
	tbsim := filepath.Join(e.dir, "tbsim")
	e.run(t, "go", "build", "-o", tbsim, "./cmd/tbsim")
	state := filepath.Join(e.dir, "state")
	e.run(t, tbsim, "run", "--devices", "1", "--duration", "3s", "--wifi-connect", "10ms-50ms", "--state-dir", state)
	ls := strings.Fields(strings.Split(e.run(t, tbsim, "devices", "ls", "--state-dir", state), "\n")[1])
	if len(ls) < 2 || ls[1] != "yes" {
		t.Fatalf("tbsim devices ls: %v; want one provisioned device", ls)
		return
	}
	part := filepath.Join(e.dir, "nvs.bin")
	e.run(t, tbsim, "devices", "export", ls[0], "--nvs", part, "--state-dir", state)
	partBytes, err := os.ReadFile(part)
	if err != nil {
		t.Fatal(err)
		return
	}
	exported, err := nvs.Open(nvs.MemFlash(partBytes), len(partBytes))
	if err != nil {
		t.Fatal(err)
		return
	}
	token, err := exported.GetString("tb", "token")
	if err != nil || token == "" {
		t.Fatalf("exported NVS has no token: %v", err)
		return
	}
	fw, err := os.ReadFile(fwPath)
	if err != nil {
		t.Fatal(err)
		return
	}

	flash := e.image(t, fw, partBytes)
	e.boot(t, flash, "[ESP32] Boot 1 saved in NVS", "========================================", "Firmware: CORE_ESP32",
		"Reset reason: POWERON", "[NVS] Checking for saved token...", "[NVS] Token loaded: "+token, "[PROVISION] Already provisioned", "[WIFI] Connecting...")
	s := readNVS(t, flash)
	expect(t, s, "esp32", "boots", "1")
	expect(t, s, "tb", "token", token)

	// The same flash again: what the chip wrote is what it reads next time.
	e.boot(t, flash, "[ESP32] Boot 2 saved in NVS", "[NVS] Token loaded: "+token)
	expect(t, readNVS(t, flash), "esp32", "boots", "2")

	// An erased nvs partition: the first boot provisions, and the chip
	// initialises the partition in ESP-IDF's format.
	flash = e.image(t, fw, nil)
	e.boot(t, flash, "[ESP32] Boot 1 saved in NVS", "Firmware: CORE_ESP32", "[NVS] Checking for saved token...",
		"[PROVISION] Not provisioned - will request provisioning")
	s = readNVS(t, flash)
	expect(t, s, "esp32", "boots", "1")
	if _, err := s.GetString("tb", "token"); !nvs.IsNotFound(err) {
		t.Errorf("empty NVS has a token: %v", err)
	}
}

// TestOTAPort writes an ESP32-C3 image through the chip's OTA port (from a
// scratch area of the flash) and checks, on the PC, the app1 slot and the
// otadata entry that selects it; a damaged image is refused and leaves the
// slot without a header.
func TestOTAPort(t *testing.T) {
	e := setup(t)
	if e == nil {
		return
	}
	prog := filepath.Join(e.dir, "otatest.bin")
	e.run(t, filepath.Join(e.repo, "esp32", "build.sh"), prog, "./esp32/cmd/otatest")
	fw, err := os.ReadFile(prog)
	if err != nil {
		t.Fatal(err)
		return
	}
	img, err := espimage.Build(espimage.BuildOptions{Chip: espimage.ESP32C3, Title: "fw", Version: "2", Size: 10000})
	if err != nil {
		t.Fatal(err)
		return
	}
	for _, damaged := range []bool{false, true} {
		data := append([]byte(nil), img...)
		if damaged {
			data[5000] ^= 0x40
		}
		flash := e.image(t, fw, nil)
		raw, _ := os.ReadFile(flash)
		n := len(data)
		copy(raw[scratchOffset:], append([]byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)}, data...))
		if err := os.WriteFile(flash, raw, 0o644); err != nil {
			t.Fatal(err)
			return
		}
		if !damaged {
			e.boot(t, flash, "[OTATEST] Begin: ok", "[OTATEST] End: ok", "[OTATEST] SetBoot: ok", "[OTATEST] done")
		} else {
			e.boot(t, flash, "[OTATEST] Begin: ok", "[OTATEST] End: image: checksum mismatch", "[OTATEST] done")
		}
		raw, _ = os.ReadFile(flash)
		slot := raw[app1Offset : app1Offset+len(data)]
		sel := otadata.Decode(raw[otadataOffset+otadata.SectorSize:])
		if damaged {
			if !bytes.Equal(slot[:16], bytes.Repeat([]byte{0xFF}, 16)) {
				t.Errorf("a refused image left a header in the slot: % x", slot[:16])
			}
			if sel.Valid() {
				t.Errorf("otadata selects a slot after a refused image: %+v", sel)
			}
			continue
		}
		if !bytes.Equal(slot, data) {
			t.Errorf("the app1 slot does not hold the image")
		}
		if _, err := espimage.Parse(slot, espimage.ESP32C3); err != nil {
			t.Errorf("the slot's image does not parse: %v", err)
		}
		// Erased otadata: esp_ota_set_boot_partition writes sector 0 with seq = slot+1.
		sel = otadata.Decode(raw[otadataOffset:])
		if !sel.Valid() || otadata.Slot(sel.Seq, 2) != 1 || sel.State != otadata.StateNew {
			t.Errorf("otadata sector 0 = %+v; want a valid entry selecting ota_1 in state NEW", sel)
		}
	}
}

// TestFullLoop is the whole story on the emulated chip: from an empty NVS
// (but for the broker's address) the firmware provisions against
// `tbsim server` on the host through the emulated Ethernet MAC and
// firmware/netstack, saves its token to flash, and after a reboot connects
// with it and sends telemetry.
func TestFullLoop(t *testing.T) {
	e := setup(t)
	if e == nil {
		return
	}
	fwPath := filepath.Join(e.dir, "fw.bin")
	e.run(t, filepath.Join(e.repo, "esp32", "build.sh"), fwPath)
	tbsim := filepath.Join(e.dir, "tbsim")
	e.run(t, "go", "build", "-o", tbsim, "./cmd/tbsim")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
		return
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv := exec.Command(tbsim, "server", "--mqtt", "127.0.0.1:"+strconv.Itoa(port), "--http", "", "--state", filepath.Join(e.dir, "server.db"))
	var srvLog bytes.Buffer
	srv.Stdout, srv.Stderr = &srvLog, &srvLog
	if err := srv.Start(); err != nil {
		t.Fatal(err)
		return
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tbsim server did not listen: %s", srvLog.String())
			return
		}
		time.Sleep(20 * time.Millisecond)
	}

	part := nvs.NewMemFlash(nvsSize)
	st, err := nvs.Open(part, nvsSize)
	if err != nil {
		t.Fatal(err)
		return
	}
	if err := st.SetString("esp32", "broker", "10.0.2.2:"+strconv.Itoa(port)); err != nil {
		t.Fatal(err)
		return
	}
	fw, err := os.ReadFile(fwPath)
	if err != nil {
		t.Fatal(err)
		return
	}
	flash := e.image(t, fw, part)
	nic := []string{"--nic"}
	log := e.bootWith(t, nic, flash, "[ESP32] Ethernet up", "[PROVISION] Not provisioned - will request provisioning",
		"[PROVISION] Connecting to: 10.0.2.2", "[PROVISION] Sending provisioning request...", "[PROVISION] Response received!", "[PROVISION] Access Token: ", "[NVS] Token saved successfully",
		"Connected to ThingsBoard!", "[TELEMETRY] Data sent to ThingsBoard")
	token := ""
	for _, l := range log {
		if v, ok := strings.CutPrefix(l, "[PROVISION] Access Token: "); ok {
			token = v
		}
	}
	if token == "" {
		t.Fatal("no token in the log")
		return
	}
	expect(t, readNVS(t, flash), "tb", "token", token)

	e.bootWith(t, nic, flash, "[ESP32] Boot 2 saved in NVS", "[NVS] Token loaded: "+token,
		"Connected to ThingsBoard!", "[TELEMETRY] Data sent to ThingsBoard")
}
