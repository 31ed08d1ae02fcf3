package scenario

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/scenarios"
	"github.com/tbsim/tbsim/tbemu"
)

const good = `name: tiny
seed: 3
fleet:
  devices: 4
  telemetry_interval: 500ms
  wifi: {connect: 10ms-30ms}
steps:
  - wait: {for: all online, timeout: 20s}
  - sleep: 200ms
expect:
  - provisioned == 4
  - provision.p95 < 5s
  - online == 100%
`

func TestParseGood(t *testing.T) {
	sc, err := Parse("tiny.yaml", []byte(good))
	require.NoError(t, err)
	require.Equal(t, "tiny", sc.Name)
	require.Equal(t, []int{8, 9}, sc.stepLines)
	require.Len(t, sc.exps, 3)
}

// Every kind of bad input names the file, the line and the field.
func TestParseErrors(t *testing.T) {
	cases := map[string]struct{ edit, want string }{
		"unknown key":       {"  devices: 4\n", "  devices: 4\n  colour: red\n"},
		"wrong type":        {"  devices: 4\n", "  devices: four\n"},
		"bad duration":      {"telemetry_interval: 500ms", "telemetry_interval: soon"},
		"unknown step":      {"  - sleep: 200ms\n", "  - jump: {high: true}\n"},
		"two actions":       {"  - sleep: 200ms\n", "  - {sleep: 1s, wait: {for: all online, timeout: 1s}}\n"},
		"unknown condition": {"for: all online", "for: everybody happy"},
		"bad expectation":   {"  - provisioned == 4\n", "  - provisioned is four\n"},
		"unknown metric":    {"  - provisioned == 4\n", "  - happiness > 4\n"},
		"bad when":          {"  - sleep: 200ms\n", "  - power_cycle: {count: 2, when: lunchtime}\n"},
		"missing timeout":   {"timeout: 20s", "timeout: 0s"},
	}
	wants := map[string][]string{
		"unknown key":       {"tiny.yaml:5:", `unknown field "colour" in fleet`},
		"wrong type":        {"tiny.yaml:4:", `field "devices"`},
		"bad duration":      {"tiny.yaml:", "not a duration"},
		"unknown step":      {"tiny.yaml:9:", `unknown field "jump" in a step`},
		"two actions":       {"tiny.yaml:9:", "exactly one action, got 2"},
		"unknown condition": {"tiny.yaml:8:", "wait.for", `unknown condition "everybody happy"`},
		"bad expectation":   {"tiny.yaml:11:", "expect[0]", "want METRIC OP VALUE"},
		"unknown metric":    {"tiny.yaml:11:", `unknown metric "happiness"`},
		"bad when":          {"tiny.yaml:9:", "power_cycle.when"},
		"missing timeout":   {"tiny.yaml:8:", "wait.timeout"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("tiny.yaml", []byte(strings.Replace(good, c.edit, c.want, 1)))
			require.ErrorIs(t, err, ErrInvalid)
			for _, w := range wants[name] {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestShippedScenarios runs every scenario shipped in scenarios/, so a
// firmware change that breaks one fails the build.
func TestShippedScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("runs fleets")
	}
	for _, mode := range []string{ModeVirtual, ModeRealtime} {
		for _, name := range scenarios.Names() {
			t.Run(mode+"/"+name, func(t *testing.T) {
				file, data, err := scenarios.Read(name)
				require.NoError(t, err)
				sc, err := Parse(file, data)
				require.NoError(t, err)
				r := Run(context.Background(), sc, RunOptions{Mode: mode})
				if !r.Passed {
					var b bytes.Buffer
					WriteText(&b, r)
					t.Fatalf("scenario failed:\n%s", b.String())
				}
			})
		}
	}
}

// A failing expectation fails the scenario; the report and JUnit say which,
// with the measured value and the replay command.
func TestFailingScenarioReport(t *testing.T) {
	src := strings.Replace(good, "  - provisioned == 4\n", "  - provisioned == 5\n", 1)
	src = strings.Replace(src, "  - sleep: 200ms\n", "  - sleep: 200ms\n  - wait: {for: all at fw_version 9.9, timeout: 300ms}\n  - sleep: 1s\n", 1)
	sc, err := Parse("fail.yaml", []byte(src))
	require.NoError(t, err)
	r := Run(context.Background(), sc, RunOptions{})
	require.False(t, r.Passed)
	require.Equal(t, "failed", r.Steps[2].Status)
	require.Equal(t, "skipped", r.Steps[3].Status)
	require.Len(t, r.Steps[2].Devices, 3, "the devices involved, with their serial log")
	require.NotEmpty(t, r.Steps[2].Devices[0].Tail)
	require.False(t, r.Expectations[0].Passed)
	require.Equal(t, "4", r.Expectations[0].Measured)
	require.True(t, r.Expectations[1].Passed)
	var text bytes.Buffer
	WriteText(&text, r)
	require.Contains(t, text.String(), "FAILED expect provisioned == 5")
	require.Contains(t, text.String(), "replay: tbsim scenario run fail.yaml --seed 3")
	var junit bytes.Buffer
	require.NoError(t, WriteJUnit(&junit, []*Result{r}))
	var doc junitSuites
	require.NoError(t, xml.Unmarshal(junit.Bytes(), &doc))
	require.Equal(t, 2, doc.Suites[0].Failures, "the failed step and the failed expectation")
	require.Equal(t, 1, doc.Suites[0].Skipped, "the step after the failed one")
	require.Equal(t, 7, doc.Suites[0].Tests, "4 steps and 3 expectations")
	require.Equal(t, "2026-01-01T00:00:00", doc.Suites[0].Timestamp, "virtual mode: the virtual clock's start")
	require.InDelta(t, r.Duration.Seconds(), doc.Suites[0].Time, 1e-9)
	require.InDelta(t, r.Steps[2].Duration.Seconds(), doc.Suites[0].Cases[2].Time, 1e-9, "the failed wait took its timeout")
	require.InDelta(t, 0.3, doc.Suites[0].Cases[2].Time, 0.01)
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	for _, n := range scenarios.Names() {
		_, data, _ := scenarios.Read(n)
		f.Add(data)
	}
	f.Add([]byte("steps: [{wait: {for: fw_state FAILED on 3 devices}}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		require.NotEmpty(t, sc.Name)
	})
}

// An external server runs the fleet-side steps; server-side steps are refused.
func TestExternalServer(t *testing.T) {
	emu, err := tbemu.New(tbemu.Options{MQTTAddr: "127.0.0.1:0"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go emu.Run(ctx)
	src := `name: external
seed: 4
fleet:
  devices: 3
  wifi: {connect: 10ms-30ms}
server:
  external: mqtt://` + emu.MQTTAddr() + `
  provision_key: tbsim-provision-key
  provision_secret: tbsim-provision-secret
steps:
  - wait: {for: all online, timeout: 20s}
  - power_cycle: {fraction: 1}
  - wait: {for: all online, timeout: 20s}
expect:
  - provisioned == 3
  - boots == 6
`
	sc, err := Parse("external.yaml", []byte(src))
	require.NoError(t, err)
	r := Run(context.Background(), sc, RunOptions{})
	require.True(t, r.Passed, "%+v", r)
	require.Len(t, emu.Devices(), 3, "the devices provisioned on the external server")

	_, err = Parse("external.yaml", []byte(strings.Replace(src, "  - power_cycle: {fraction: 1}\n", "  - rollout: {version: 2}\n", 1)))
	require.ErrorContains(t, err, "external.yaml:12: rollout: needs the embedded server")
}

// In virtual mode a scenario is a pure function of its file and seed: ten
// runs give byte-identical event logs, serial logs, text, JSON and JUnit
// reports, for a passing scenario and for one broken on purpose.
func TestVirtualReplayIdentical(t *testing.T) {
	file, data, err := scenarios.Read("power-loss-download")
	require.NoError(t, err)
	// Broken: a step that cannot pass (its report carries serial logs) and
	// an expectation that fails.
	broken := strings.Replace(string(data), "expect:", "  - wait: {for: all at fw_version 9.9.9, timeout: 2s}\nexpect:", 1)
	broken = strings.Replace(broken, "ota.success == 100%", "ota.success == 100%\n  - boots == 1", 1)
	for name, src := range map[string]string{"passing": string(data), "broken": broken} {
		t.Run(name, func(t *testing.T) {
			sc, err := Parse(file, []byte(src))
			require.NoError(t, err)
			var first []byte
			for i := range 10 {
				var out, log bytes.Buffer
				r := Run(context.Background(), sc, RunOptions{Mode: ModeVirtual, EventLog: &log})
				require.Equal(t, name == "passing", r.Passed, "run %d", i)
				WriteText(&out, r)
				if name == "broken" {
					require.NotEmpty(t, r.Steps[len(r.Steps)-1].Devices, "the failed step names devices with their serial logs")
				}
				require.NoError(t, WriteJSON(&out, []*Result{r}))
				require.NoError(t, WriteJUnit(&out, []*Result{r}))
				out.Write(log.Bytes())
				if i == 0 {
					first = out.Bytes()
					require.Greater(t, log.Len(), 10000, "the event log has the run")
					continue
				}
				if !bytes.Equal(first, out.Bytes()) {
					t.Fatalf("run %d differs from run 0", i)
				}
			}
		})
	}
}
