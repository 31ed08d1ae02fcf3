package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tbsim/tbsim/internal/verdict"
)

// ErrInvalid marks a file that does not decode or validate.
var ErrInvalid = errors.New("invalid scenario")

// LoadFile reads and validates a scenario file.
func LoadFile(path string) (*Scenario, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes (a scenario is a page of YAML)", ErrInvalid, path, MaxFileSize)
	}
	return Parse(path, data)
}

// MaxFileSize bounds a scenario file.
const MaxFileSize = 1 << 20

var (
	reUnknownField = regexp.MustCompile(`^line (\d+): field (\S+) not found in type scenario\.(\w+)$`)
	reLine         = regexp.MustCompile(`^line (\d+): (.*)$`)
)

var typeSection = map[string]string{
	"Scenario": "the top level", "FleetSpec": "fleet", "FwSpec": "fleet.firmware", "WiFiSpec": "fleet.wifi",
	"ServerSpec": "server", "Step": "a step (unknown step name)", "WaitStep": "wait", "RolloutStep": "rollout",
	"Selection": "the device selection", "RestartStep": "restart_broker", "RateStep": "rate_limit",
	"AttrStep": "shared_attributes", "RPCStep": "rpc", "CorruptStep": "corrupt_package", "LinkStep": "link",
}

// Parse decodes data strictly and validates it; name is used in errors.
func Parse(name string, data []byte) (*Scenario, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fileErr(name, nil, err)
	}
	var sc Scenario
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&sc); err != nil {
		return nil, fileErr(name, &root, err)
	}
	sc.File = name
	sc.stepLines = seqLines(&root, "steps")
	sc.expectLines = seqLines(&root, "expect")
	sc.keyLines = keyLines(&root)
	if err := sc.validate(); err != nil {
		return nil, err
	}
	return &sc, nil
}

// fileErr rewrites yaml's errors as FILE:LINE: message, naming the field.
func fileErr(name string, root *yaml.Node, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := reLine.FindStringSubmatch(msg); m != nil {
			return fmt.Errorf("%w: %s:%s: %s", ErrInvalid, name, m[1], m[2])
		}
		return fmt.Errorf("%w: %s: %s", ErrInvalid, name, msg)
	}
	var out []string
	for _, e := range te.Errors {
		if m := reUnknownField.FindStringSubmatch(e); m != nil {
			out = append(out, fmt.Sprintf("%s:%s: unknown field %q in %s", name, m[1], m[2], typeSection[m[3]]))
			continue
		}
		if m := reLine.FindStringSubmatch(e); m != nil {
			line, _ := strconv.Atoi(m[1])
			field := keyAtLine(root, line)
			out = append(out, fmt.Sprintf("%s:%s: field %q: %s", name, m[1], field, m[2]))
			continue
		}
		out = append(out, name+": "+e)
	}
	return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(out, "\n"))
}

// keyAtLine returns the innermost mapping key on line whose value is a scalar.
func keyAtLine(n *yaml.Node, line int) string {
	if n == nil {
		return "?"
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				if found := keyAtLine(v, line); found != "?" {
					return found
				}
				continue
			}
			if k.Line == line {
				return k.Value
			}
		}
		return "?"
	}
	for _, c := range n.Content {
		if k := keyAtLine(c, line); k != "?" {
			return k
		}
	}
	return "?"
}

// keyLines maps the dotted path of every mapping key of the first two levels
// ("mode", "fleet.devices") to its line.
func keyLines(root *yaml.Node) map[string]int {
	out := map[string]int{}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return out
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		out[k.Value] = k.Line
		if v.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(v.Content); j += 2 {
				out[k.Value+"."+v.Content[j].Value] = v.Content[j].Line
			}
		}
	}
	return out
}

// at returns the line of a key path, or of its parent, or "?".
func (sc *Scenario) at(path string) string {
	for p := path; p != ""; {
		if n, ok := sc.keyLines[p]; ok {
			return strconv.Itoa(n)
		}
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return "?"
}

// seqLines returns the line of each item of a top-level sequence.
func seqLines(root *yaml.Node, key string) []int {
	if len(root.Content) == 0 {
		return nil
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.SequenceNode {
			var lines []int
			for _, it := range m.Content[i+1].Content {
				lines = append(lines, it.Line)
			}
			return lines
		}
	}
	return nil
}

func (sc *Scenario) line(lines []int, i int) string {
	if i < len(lines) {
		return strconv.Itoa(lines[i])
	}
	return "?"
}

var whens = map[string]bool{"": true, "now": true, "downloading": true, "updating": true, "pending-verify": true}

// embeddedOnly are the steps that need the embedded server.
var embeddedOnly = map[string]bool{"rollout": true, "restart_broker": true, "delete_devices": true,
	"change_credentials": true, "rate_limit": true, "shared_attributes": true, "rpc": true, "corrupt_package": true}

// UseExternal points a loaded scenario at an external server, as if its
// file said server.external (with mode realtime, the only mode that reaches
// one). It fails, naming the steps, when the scenario needs the embedded
// server.
func (sc *Scenario) UseExternal(url, key, secret string) error {
	sc.Server.External, sc.Server.ProvisionKey, sc.Server.ProvisionSecret = url, key, secret
	sc.Mode = ModeRealtime
	return sc.validate()
}

func (sc *Scenario) validate() error {
	var errs []string
	sc.conds = map[int]condition{}
	sc.exps = nil
	bad := func(line, field, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("%s:%s: %s: %s", sc.File, line, field, fmt.Sprintf(format, args...)))
	}
	if sc.Name == "" {
		bad("1", "name", "required")
	}
	if sc.Fleet.Devices <= 0 {
		bad(sc.at("fleet.devices"), "fleet.devices", "must be positive, got %d", sc.Fleet.Devices)
	}
	switch sc.Mode {
	case "", ModeVirtual, ModeRealtime:
	default:
		bad(sc.at("mode"), "mode", "want virtual or realtime, got %q", sc.Mode)
	}
	if sc.Mode == ModeVirtual && sc.Server.External != "" {
		bad(sc.at("mode"), "mode", "virtual mode runs the embedded server's core: it cannot reach server.external")
	}
	if m := sc.Fleet.MarkValid; m != "" && m != "at-boot" && m != "after-connect" {
		bad(sc.at("fleet.mark_valid"), "fleet.mark_valid", "want at-boot or after-connect, got %q", m)
	}
	if c := sc.Fleet.WiFi.Connect; c != "" {
		if _, _, err := parseRange(c); err != nil {
			bad(sc.at("fleet.wifi"), "fleet.wifi.connect", "%v", err)
		}
	}
	if sc.Server.External != "" && (sc.Server.ProvisionKey == "" || sc.Server.ProvisionSecret == "") {
		bad(sc.at("server"), "server", "an external server needs provision_key and provision_secret")
	}
	for i, st := range sc.Steps {
		ln := sc.line(sc.stepLines, i)
		name, n := st.kind()
		if n != 1 {
			bad(ln, "steps["+strconv.Itoa(i)+"]", "a step has exactly one action, got %d", n)
			continue
		}
		if sc.Server.External != "" && embeddedOnly[name] {
			bad(ln, name, "needs the embedded server (server.external is set)")
		}
		sc.validateStep(i, ln, name, st, bad)
	}
	for i, e := range sc.Expect {
		ex, err := verdict.Parse(e)
		if err != nil {
			bad(sc.line(sc.expectLines, i), "expect["+strconv.Itoa(i)+"]", "%v", err)
			continue
		}
		if sc.Server.External != "" && verdict.NeedsEmbedded(ex.Metric) {
			bad(sc.line(sc.expectLines, i), "expect["+strconv.Itoa(i)+"]", "%s needs the embedded server (server.external is set)", ex.Metric)
		}
		sc.exps = append(sc.exps, ex)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "\n"))
	}
	return nil
}

func (sc *Scenario) validateStep(i int, ln, name string, st Step, bad func(line, field, format string, args ...any)) {
	sel := func(field string, s *Selection) {
		if s == nil {
			return
		}
		if s.Count < 0 || s.Fraction < 0 || s.Fraction > 1 {
			bad(ln, field, "count must be >= 0 and fraction within 0..1")
		}
		if !whens[s.When] {
			bad(ln, field+".when", "want now, downloading, updating or pending-verify, got %q", s.When)
		}
	}
	switch name {
	case "wait":
		c, err := parseCondition(st.Wait.For)
		if err != nil {
			bad(ln, "wait.for", "%v", err)
		}
		sc.conds[i] = c
		if st.Wait.Timeout <= 0 {
			bad(ln, "wait.timeout", "required and positive")
		}
	case "sleep":
		if *st.Sleep <= 0 {
			bad(ln, "sleep", "must be positive")
		}
	case "rollout":
		r := st.Rollout
		if r.Version == "" {
			bad(ln, "rollout.version", "required")
		}
		if r.File == "" && r.Size < 0 {
			bad(ln, "rollout.size", "must not be negative")
		}
		sel("rollout.devices", r.Devices)
	case "power_cycle", "erase_tokens", "delete_devices", "change_credentials":
		sel(name, map[string]*Selection{"power_cycle": st.PowerCycle, "erase_tokens": st.EraseTokens,
			"delete_devices": st.DeleteDevices, "change_credentials": st.ChangeCredentials}[name])
	case "drop_wifi":
		sel(name, st.DropWiFi)
		if st.DropWiFi.For <= 0 {
			bad(ln, "drop_wifi.for", "required and positive")
		}
	case "link":
		if st.Link.Loss < 0 || st.Link.Loss > 1 {
			bad(ln, "link.loss", "want a fraction within 0..1, got %g", st.Link.Loss)
		}
	case "rate_limit":
		if st.RateLimit.MessagesPerSecond < 0 {
			bad(ln, "rate_limit.messages_per_second", "must not be negative")
		}
	case "rpc":
		if st.RPC.Method == "" {
			bad(ln, "rpc.method", "required")
		}
	case "shared_attributes":
		if len(st.SharedAttributes.Values) == 0 {
			bad(ln, "shared_attributes.values", "required")
		}
	}
}

func parseRange(s string) (time.Duration, time.Duration, error) {
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := time.ParseDuration(a)
	hi, err2 := time.ParseDuration(b)
	if !ok || err1 != nil || err2 != nil || lo < 0 || hi < lo {
		return 0, 0, fmt.Errorf("want min-max durations such as 100ms-300ms, got %q", s)
	}
	return lo, hi, nil
}
