package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/tbsim/tbsim/device"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"tbsim": main})
}

// TestScripts runs testdata/script/*.txtar: the real command tree, in
// processes of this test binary.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			for _, name := range []string{"MQTT_PORT", "HTTP_PORT"} {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					return err
				}
				env.Setenv(name, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
				l.Close()
			}
			env.Setenv("FIRST_MAC", device.NewIdentity(1, 0).Name()) // device 0 of seed 1
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"json":     cmdJSON,
			"waitport": cmdWaitPort,
			"waitgone": cmdWaitGone,
			"exits":    cmdExits,
			"truncate": cmdTruncate,
			// waitgrep FILE REGEXP: wait until the file exists and matches.
			"waitgrep": func(ts *testscript.TestScript, neg bool, args []string) {
				re := regexp.MustCompile(args[1])
				for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
					if data, err := os.ReadFile(ts.MkAbs(args[0])); err == nil && re.Match(data) {
						return
					}
				}
				ts.Fatalf("%s never matched %q", args[0], args[1])
			},
			"waitfile": func(ts *testscript.TestScript, neg bool, args []string) {
				for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
					if _, err := os.Stat(ts.MkAbs(args[0])); err == nil {
						return
					}
				}
				ts.Fatalf("%s did not appear", args[0])
			},
			"httpget": func(ts *testscript.TestScript, neg bool, args []string) {
				resp, err := http.Get(args[0])
				ts.Check(err)
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				ts.Check(err)
				ts.Stdout().Write(body)
				fmt.Fprintf(ts.Stderr(), "Content-Type: %s\n", resp.Header.Get("Content-Type"))
			},
			"httpuntil": cmdHTTPUntil,
			"sleep": func(ts *testscript.TestScript, neg bool, args []string) {
				d, err := time.ParseDuration(args[0])
				ts.Check(err)
				time.Sleep(d)
			},
		},
	})
}

// httpuntil URL REGEXP: GET URL until the body matches (20 s at most),
// then keep the body as stdout for the next checks: what a server shows
// once the run reached a state, without guessing how long that takes.
func cmdHTTPUntil(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: httpuntil URL REGEXP")
	}
	re, err := regexp.Compile("(?m)" + args[1])
	ts.Check(err)
	var body []byte
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(args[0])
		if err != nil {
			continue
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if re.Match(body) {
			ts.Stdout().Write(body)
			return
		}
	}
	ts.Fatalf("%s never matched %q; last body:\n%s", args[0], args[1], body)
}

// json FILE PATH WANT: the value at a slash-separated PATH (keys, or indices
// of arrays) of a JSON file equals WANT.
func cmdJSON(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: json FILE PATH WANT")
	}
	var v any
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &v))
	for _, k := range strings.Split(args[1], "/") {
		switch c := v.(type) {
		case map[string]any:
			v = c[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(c) {
				v = nil
				break
			}
			v = c[i]
		default:
			v = nil
		}
	}
	got := fmt.Sprint(v)
	if (got == args[2]) == neg {
		ts.Fatalf("%s %s = %s; want %s%s", args[0], args[1], got, map[bool]string{true: "not ", false: ""}[neg], args[2])
	}
}

// waitport ADDR: wait until something listens on ADDR.
func cmdWaitPort(ts *testscript.TestScript, neg bool, args []string) {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", args[0]); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.Fatalf("nothing listens on %s", args[0])
}

// waitgone ADDR: wait until nothing listens on ADDR any more (a killed
// process has exited: its sockets and locks are gone with it).
func cmdWaitGone(ts *testscript.TestScript, neg bool, args []string) {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", args[0])
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("something still listens on %s", args[0])
}

// exits CODE PROG ARGS...: run a program and require that exit code (0
// included), keeping its stdout and stderr for the next stdout/stderr checks.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Logf("[stdout]\n%s\n[stderr]\n%s", ts.ReadFile("stdout"), ts.ReadFile("stderr"))
		ts.Fatalf("%s exited %d; want %d", args[1], got, want)
	}
}

// truncate FILE half|N: cut a file to half its size, or to N bytes.
func cmdTruncate(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: truncate FILE half|N")
	}
	path := ts.MkAbs(args[0])
	st, err := os.Stat(path)
	ts.Check(err)
	size := st.Size() / 2
	if args[1] != "half" {
		size, err = strconv.ParseInt(args[1], 10, 64)
		ts.Check(err)
	}
	ts.Check(os.Truncate(path, size))
}
