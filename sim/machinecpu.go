package sim

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// machineCPU is the CPU time every process on the machine has used since
// boot (Linux /proc/stat: user, nice, system, irq, softirq, steal), so the
// health line can say when other processes took the cores tbsim waited
// for. ok is false where /proc/stat does not exist.
func machineCPU() (busy time.Duration, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	return parseProcStat(b)
}

// parseProcStat reads the first ("cpu ") line of /proc/stat, whose figures
// are in USER_HZ, 100 per second on every Linux architecture's ABI.
func parseProcStat(b []byte) (time.Duration, bool) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return 0, false
	}
	var ticks int64
	for i, field := range f[1:9] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, err := strconv.ParseInt(string(field), 10, 64)
		if err != nil {
			return 0, false
		}
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / 100), true
}
