package scenario

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/tbsim/tbsim/device"
	"github.com/tbsim/tbsim/internal/verdict"
)

// view is what conditions and expectations look at.
type view struct {
	boards  []device.BoardStatus
	metrics verdict.Values
}

func (v *view) count(f func(device.BoardStatus) bool) int {
	n := 0
	for _, b := range v.boards {
		if f(b) {
			n++
		}
	}
	return n
}

// condition is a parsed wait condition.
type condition struct {
	text string
	// holds returns whether the condition holds, a description of where it
	// stands, and the devices that do not satisfy it yet.
	holds func(v *view) (bool, string, []string)
}

var (
	reAllState   = regexp.MustCompile(`^all (?:devices )?(online|connected|provisioned)$`)
	reAtLeastVer = regexp.MustCompile(`^at least (\d+(?:\.\d+)?)% (?:at|on|running) fw_version (\S+)$`)
	reAllVer     = regexp.MustCompile(`^all (?:devices )?(?:at|on|running) fw_version (\S+)$`)
	reFwState    = regexp.MustCompile(`^fw_state ([A-Z]+) on (at least )?(all|\d+) devices?$`)
	reOnline     = regexp.MustCompile(`^(?:at least )?(\d+) devices? (online|connected|provisioned|reprovisioned|re-provisioned)$`)
	reFwError    = regexp.MustCompile(`^fw_error "([^"]+)" on (all|\d+) devices?$`)
)

// parseCondition reads the wait conditions the README lists.
func parseCondition(s string) (condition, error) {
	t := strings.TrimSpace(s)
	is := func(state string) func(device.BoardStatus) bool {
		return func(b device.BoardStatus) bool {
			switch state {
			case "provisioned":
				return b.Provisioned
			case "reprovisioned", "re-provisioned":
				return b.Reprovisions > 0 // dropped its refused token to provision again, this boot
			}
			return b.State.String() == "online"
		}
	}
	switch {
	case reAllState.MatchString(t):
		f := is(reAllState.FindStringSubmatch(t)[1])
		return condition{t, func(v *view) (bool, string, []string) { return ratio(v, f, 1) }}, nil
	case reOnline.MatchString(t):
		m := reOnline.FindStringSubmatch(t)
		n, _ := strconv.Atoi(m[1])
		f := is(m[2])
		return condition{t, func(v *view) (bool, string, []string) { return atLeast(v, f, n) }}, nil
	case reAtLeastVer.MatchString(t):
		m := reAtLeastVer.FindStringSubmatch(t)
		pct, _ := strconv.ParseFloat(m[1], 64)
		ver := m[2]
		return condition{t, func(v *view) (bool, string, []string) {
			return ratio(v, func(b device.BoardStatus) bool { return b.Version == ver }, pct/100)
		}}, nil
	case reAllVer.MatchString(t):
		ver := reAllVer.FindStringSubmatch(t)[1]
		return condition{t, func(v *view) (bool, string, []string) {
			return ratio(v, func(b device.BoardStatus) bool { return b.Version == ver }, 1)
		}}, nil
	case reFwError.MatchString(t):
		m := reFwError.FindStringSubmatch(t)
		text := m[1]
		f := func(b device.BoardStatus) bool { return b.OTAState == "FAILED" && strings.Contains(b.OTAError, text) }
		if m[2] == "all" {
			return condition{t, func(v *view) (bool, string, []string) { return ratio(v, f, 1) }}, nil
		}
		n, _ := strconv.Atoi(m[2])
		return condition{t, func(v *view) (bool, string, []string) { return atLeast(v, f, n) }}, nil
	case reFwState.MatchString(t):
		m := reFwState.FindStringSubmatch(t)
		state := m[1]
		f := func(b device.BoardStatus) bool { return string(b.OTAState) == state }
		if m[3] == "all" {
			return condition{t, func(v *view) (bool, string, []string) { return ratio(v, f, 1) }}, nil
		}
		n, _ := strconv.Atoi(m[3])
		if m[2] != "" {
			return condition{t, func(v *view) (bool, string, []string) { return atLeast(v, f, n) }}, nil
		}
		return condition{t, func(v *view) (bool, string, []string) {
			ok, where, rest := atLeast(v, f, n)
			return ok && v.count(f) == n, where, rest
		}}, nil
	}
	return condition{}, fmt.Errorf("unknown condition %q: want one of `all online`, `all provisioned`, "+
		"`N devices online|provisioned|reprovisioned`, `at least P%% at fw_version V`, `all at fw_version V`, `fw_state S on N|all devices`, "+
		"`fw_error \"TEXT\" on N|all devices`", s)
}

func ratio(v *view, f func(device.BoardStatus) bool, want float64) (bool, string, []string) {
	n := v.count(f)
	need := int(want*float64(len(v.boards)) + 0.999999)
	return n >= need && len(v.boards) > 0, fmt.Sprintf("%d of %d devices", n, len(v.boards)), missing(v, f)
}

func atLeast(v *view, f func(device.BoardStatus) bool, n int) (bool, string, []string) {
	c := v.count(f)
	return c >= n, fmt.Sprintf("%d of %d devices (want %d)", c, len(v.boards), n), missing(v, f)
}

func missing(v *view, f func(device.BoardStatus) bool) []string {
	var out []string
	for _, b := range v.boards {
		if !f(b) {
			out = append(out, b.Name)
		}
	}
	return out
}
