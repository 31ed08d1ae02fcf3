package scenario

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tbsim/tbsim/device"
	"github.com/tbsim/tbsim/device/espimage"
	"github.com/tbsim/tbsim/firmware"
	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/sim"
	"github.com/tbsim/tbsim/tbemu/core"
	"github.com/tbsim/tbsim/tbemu/direct"
)

// FuzzOptions configure a randomized fault search (swarm testing): many
// schedules, one per seed, each enabling a random subset of fault kinds and
// throwing them at a small fleet in virtual time, then checking invariants
// after a quiet period.
type FuzzOptions struct {
	Seed      uint64        // the first seed; seeds Seed, Seed+1, ... are tried
	Schedules int           // how many (default 100)
	Devices   int           // per schedule (default 20)
	Active    time.Duration // faults fall in this span (default 10 min)
	Quiet     time.Duration // then nothing happens this long before the checks (default 15 min)
	// WriteAheadToken turns the firmware option on (see firmware.Config).
	WriteAheadToken bool
	// Keep replays only these faults of the first schedule (a shrunk one).
	Keep []int
	// Shrink reduces the smallest failing schedule to the faults it needs.
	Shrink   bool
	Progress io.Writer
}

// Invariants the search checks after every schedule.
const (
	InvBootsValidImage = "a device always boots a valid image"
	InvNotSilent       = "no device is silently stuck (online, or reported with a cause)"
	InvTokenKept       = "a token is lost only when erased"
	InvNotDownloading  = "no device ends in DOWNLOADING"
	InvVersionReported = "the running version changes only by UPDATED or a reported rollback"
	InvCountsAgree     = "the emulator's counts equal the devices' counts"
)

// Violation is one broken invariant.
type Violation struct {
	Invariant string   `json:"invariant"`
	Device    string   `json:"device,omitempty"`
	Detail    string   `json:"detail"`
	Faults    []string `json:"faults,omitempty"` // the faults that touched this device (or all)
	Tail      []string `json:"serial,omitempty"`
}

// FuzzRun is one schedule's outcome.
type FuzzRun struct {
	Seed       uint64      `json:"seed"`
	Faults     []string    `json:"faults"`
	Violations []Violation `json:"violations,omitempty"`
}

// FuzzResult is a search's outcome.
type FuzzResult struct {
	Schedules int            `json:"schedules"`
	Failing   []uint64       `json:"failingSeeds"`
	First     *FuzzRun       `json:"smallestFailing,omitempty"`
	Kept      []int          `json:"keptFaults,omitempty"` // after shrinking: the faults it needs
	Replay    string         `json:"replay,omitempty"`
	ByInvar   map[string]int `json:"failuresByInvariant"`
}

func (o *FuzzOptions) defaults() {
	if o.Schedules <= 0 {
		o.Schedules = 100
	}
	if o.Devices <= 0 {
		o.Devices = 20
	}
	if o.Active <= 0 {
		o.Active = 10 * time.Minute
	}
	if o.Quiet <= 0 {
		o.Quiet = 15 * time.Minute
	}
}

// Fuzz runs the search.
func Fuzz(ctx context.Context, o FuzzOptions) (*FuzzResult, error) {
	o.defaults()
	res := &FuzzResult{ByInvar: map[string]int{}}
	for i := 0; i < o.Schedules && ctx.Err() == nil; i++ {
		seed := o.Seed + uint64(i)
		keep := o.Keep
		if i > 0 {
			keep = nil
		}
		run, err := fuzzOne(o, seed, keep)
		if err != nil {
			return nil, fmt.Errorf("seed %d: %w", seed, err)
		}
		res.Schedules++
		if len(run.Violations) > 0 {
			res.Failing = append(res.Failing, seed)
			seen := map[string]bool{}
			for _, v := range run.Violations {
				if !seen[v.Invariant] {
					seen[v.Invariant] = true
					res.ByInvar[v.Invariant]++
				}
			}
			if res.First == nil {
				res.First = run
			}
		}
		if o.Progress != nil && (len(run.Violations) > 0 || (i+1)%20 == 0) {
			fmt.Fprintf(o.Progress, "  seed %d: %d faults, %d violations (%d of %d schedules failed so far)\n",
				seed, len(run.Faults), len(run.Violations), len(res.Failing), res.Schedules)
		}
	}
	if res.First != nil {
		res.Replay = fuzzReplay(o, res.First.Seed, o.Keep)
		if o.Shrink && len(o.Keep) == 0 {
			kept, run, err := shrink(o, res.First)
			if err != nil {
				return nil, err
			}
			res.Kept, res.First = kept, run
			res.Replay = fuzzReplay(o, run.Seed, kept)
		}
	}
	return res, ctx.Err()
}

func fuzzReplay(o FuzzOptions, seed uint64, keep []int) string {
	s := fmt.Sprintf("tbsim scenario fuzz --seed %d --schedules 1 --devices %d --active %s --quiet %s", seed, o.Devices, o.Active, o.Quiet)
	if o.WriteAheadToken {
		s += " --write-ahead-token"
	}
	if len(keep) > 0 {
		var ks []string
		for _, k := range keep {
			ks = append(ks, strconv.Itoa(k))
		}
		s += " --keep " + strings.Join(ks, ",")
	}
	return s
}

// shrink drops faults one at a time while the first violated invariant
// still breaks: what is left is what the failure needs.
func shrink(o FuzzOptions, first *FuzzRun) ([]int, *FuzzRun, error) {
	want := first.Violations[0].Invariant
	keep := make([]int, len(first.Faults))
	for i := range keep {
		keep[i] = i
	}
	best := first
	for i := 0; i < len(keep); {
		try := append(append([]int(nil), keep[:i]...), keep[i+1:]...)
		run, err := fuzzOne(o, first.Seed, try)
		if err != nil {
			return nil, nil, err
		}
		if breaks(run, want) {
			keep, best = try, run
			continue
		}
		i++
	}
	return keep, best, nil
}

func breaks(r *FuzzRun, invariant string) bool {
	for _, v := range r.Violations {
		if v.Invariant == invariant {
			return true
		}
	}
	return false
}

// fault is one planned disturbance.
type fault struct {
	at    time.Duration
	kind  string // power, otadata, restart, link, wifi, revoke, delete, rollout
	dev   int
	when  string        // power: any, provisioning, downloading, updating, pending-verify
	delay time.Duration // power at a moment: how long after the moment
	d     time.Duration // restart: down; link, wifi: for
	imp   sim.Impairment
	image string // rollout: good, corrupt, wrong-chip
	size  int
}

func (f fault) String() string {
	s := fmt.Sprintf("+%s %s", f.at.Round(time.Millisecond), f.kind)
	switch f.kind {
	case "power":
		s += fmt.Sprintf(" device %d when %s", f.dev, f.when)
		if f.when != "any" {
			s += fmt.Sprintf(" (+%s)", f.delay)
		}
	case "otadata", "revoke", "delete":
		s += fmt.Sprintf(" device %d", f.dev)
	case "wifi":
		s += fmt.Sprintf(" device %d for %s", f.dev, f.d)
	case "restart":
		s += fmt.Sprintf(" down %s", f.d)
	case "link":
		s += fmt.Sprintf(" latency %s jitter %s loss %.2f for %s", f.imp.Latency, f.imp.Jitter, f.imp.Loss, f.d)
	case "rollout":
		s += fmt.Sprintf(" %s image of %d bytes", f.image, f.size)
	}
	return s
}

var faultKinds = []string{"power", "otadata", "restart", "link", "wifi", "revoke", "delete", "rollout"}

// plan draws a schedule from seed: a random subset of fault kinds (swarm
// testing: some schedules hammer one thing), then faults of those kinds at
// random instants of the active span.
func plan(o FuzzOptions, seed uint64) (faults []fault, markValid firmware.MarkValidPolicy) {
	rng := rand.New(rand.NewPCG(seed, 0xf022))
	var kinds []string
	for _, k := range faultKinds {
		if rng.IntN(2) == 0 {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 {
		kinds = []string{faultKinds[rng.IntN(len(faultKinds))]}
	}
	markValid = firmware.MarkValidPolicy(rng.IntN(2))
	n := 5 + rng.IntN(26)
	dur := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo)+1)) }
	for range n {
		f := fault{at: dur(0, o.Active), kind: kinds[rng.IntN(len(kinds))], dev: rng.IntN(o.Devices)}
		switch f.kind {
		case "power":
			f.when = []string{"any", "provisioning", "downloading", "updating", "pending-verify"}[rng.IntN(5)]
			switch f.when {
			case "provisioning":
				// Devices provision in the first seconds (and after losing
				// their token): arm the cut then, and land it anywhere in the
				// request's round trip.
				f.at = dur(0, 3*time.Second)
				f.delay = dur(0, 4*time.Millisecond)
			case "downloading":
				f.delay = dur(0, 40*time.Millisecond)
			case "updating":
				f.delay = dur(0, 2*time.Millisecond)
			case "pending-verify":
				f.delay = dur(0, 3*time.Second)
			}
		case "restart":
			f.d = dur(time.Second, 20*time.Second)
		case "link":
			f.imp = sim.Impairment{Latency: dur(0, 200*time.Millisecond), Jitter: dur(0, 100*time.Millisecond), Loss: 0.3 * rng.Float64()}
			f.d = dur(5*time.Second, time.Minute)
		case "wifi":
			f.d = dur(time.Second, time.Minute)
		case "rollout":
			f.image = []string{"good", "good", "corrupt", "wrong-chip"}[rng.IntN(4)]
			f.size = 20_000 + rng.IntN(200_000)
		}
		faults = append(faults, f)
	}
	sort.SliceStable(faults, func(i, j int) bool { return faults[i].at < faults[j].at })
	return faults, markValid
}

// fuzzWorld is one schedule being run.
type fuzzWorld struct {
	o       FuzzOptions
	s       *sim.Sched
	core    *core.Core
	srv     *emuServer
	fleet   *sim.VFleet
	names   []string
	watch   map[int][]*watcher // device -> moments awaited
	touched map[int][]string   // device -> faults that touched it
	revoked map[int]bool
	deleted map[int]bool
	hist    []deviceHistory
	rollout int
}

type watcher struct {
	when  string
	delay time.Duration
	until time.Time
	fired bool
}

type deviceHistory struct {
	versions      []string // each version the device booted into, in order
	rollbackAfter bool     // a FAILED "rollback" report came after the last version change
	updated       string   // the version it last reported UPDATED for
	reprovisioned bool     // erased its own token after refusals
}

func fuzzOne(o FuzzOptions, seed uint64, keep []int) (*FuzzRun, error) {
	faults, markValid := plan(o, seed)
	if keep != nil {
		var kept []fault
		for _, k := range keep {
			if k >= 0 && k < len(faults) {
				kept = append(kept, faults[k])
			}
		}
		faults = kept
	}
	run := &FuzzRun{Seed: seed}
	for _, f := range faults {
		run.Faults = append(run.Faults, f.String())
	}
	w := &fuzzWorld{o: o, s: sim.NewSched(sim.Epoch), watch: map[int][]*watcher{}, touched: map[int][]string{},
		revoked: map[int]bool{}, deleted: map[int]bool{}, hist: make([]deviceHistory, o.Devices)}
	c, err := core.New(core.Options{Clock: schedClock{w.s}, Rand: rand.NewPCG(seed, 0xe3), OTAPackSize: 100, OTAPackInterval: time.Second})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	w.core, w.srv = c, &emuServer{d: direct.New(c)}
	prof, _ := c.DefaultProfile()
	fw := firmware.Defaults()
	fw.Server = "embedded" // what "[PROVISION] Connecting to:" names: the in-process emulator
	fw.ProvisionKey, fw.ProvisionSecret = prof.ProvisionKey, prof.ProvisionSecret
	fw.MarkValid = markValid
	fw.WriteAheadToken = o.WriteAheadToken
	w.fleet, err = sim.NewVirtual(sim.VirtualOptions{
		Devices: o.Devices, Seed: seed, Firmware: fw, Sched: w.s, Server: w.srv, ConsoleLines: 40,
		WiFi:     device.WiFiConfig{ConnectMin: 500 * time.Millisecond, ConnectMax: 3 * time.Second},
		OnStatus: w.onStatus,
	})
	if err != nil {
		return nil, err
	}
	for i := range o.Devices {
		w.names = append(w.names, w.fleet.Status(i).Name)
	}
	w.fleet.Start()
	for _, f := range faults {
		w.s.At(sim.Epoch.Add(f.at), func() { w.apply(f) })
	}
	w.s.RunUntil(sim.Epoch.Add(o.Active+o.Quiet), nil)
	run.Violations = w.check()
	return run, nil
}

func (w *fuzzWorld) touch(dev int, f fault) { w.touched[dev] = append(w.touched[dev], f.String()) }

func (w *fuzzWorld) apply(f fault) {
	switch f.kind {
	case "power":
		w.touch(f.dev, f)
		if f.when == "any" {
			w.fleet.PowerCycle([]int{f.dev})
			return
		}
		w.watch[f.dev] = append(w.watch[f.dev], &watcher{when: f.when, delay: f.delay, until: w.s.Now().Add(5 * time.Minute)})
		w.onStatus(f.dev, device.BoardStatus{}, w.fleet.Status(f.dev)) // already there?
	case "otadata":
		w.touch(f.dev, f)
		w.fleet.CutOtadata([]int{f.dev})
	case "restart":
		w.fleet.ServerDown(true)
		w.srv.dropAll()
		w.s.After(f.d, func() { w.fleet.ServerDown(false) })
	case "link":
		w.fleet.SetLink(f.imp)
		w.s.After(f.d, func() { w.fleet.SetLink(sim.Impairment{}) })
	case "wifi":
		w.touch(f.dev, f)
		w.fleet.DropWiFi([]int{f.dev}, f.d)
	case "revoke", "delete":
		d, ok := w.core.DeviceByName(w.names[f.dev])
		if !ok {
			return
		}
		w.touch(f.dev, f)
		if f.kind == "delete" {
			w.deleted[f.dev] = true
			w.core.DeleteDevice(d.ID)
			return
		}
		w.revoked[f.dev] = true
		w.core.SetCredentials(d.ID, core.Credentials{Type: tbapi.CredAccessToken, Token: fmt.Sprintf("revoked%03d%010d", f.dev, f.at.Milliseconds())})
	case "rollout":
		w.rollout++
		title, chip := firmware.Defaults().Title, espimage.ESP32S3
		if f.image == "wrong-chip" {
			chip = espimage.ESP32C3
		}
		version := fmt.Sprintf("1.%d.0", w.rollout)
		img, err := espimage.Build(espimage.BuildOptions{Chip: chip, Title: title, Version: version, Size: f.size})
		if err != nil {
			return
		}
		pkg, err := w.core.AddFirmware(core.PackageSpec{Title: title, Version: version}, img, tbapi.SHA256)
		if err != nil {
			return
		}
		if f.image == "corrupt" {
			bad := append([]byte(nil), img...)
			bad[len(bad)/2] ^= 0xFF
			w.core.ReplacePackageData(pkg.ID, bad)
		}
		prof, _ := w.core.DefaultProfile()
		w.core.AssignProfileFirmware(prof.ID, pkg.ID)
	}
}

// onStatus tracks each device's history and fires power cuts awaiting a moment.
func (w *fuzzWorld) onStatus(i int, prev, cur device.BoardStatus) {
	h := &w.hist[i]
	if cur.Version != "" && (len(h.versions) == 0 || h.versions[len(h.versions)-1] != cur.Version) {
		h.versions = append(h.versions, cur.Version)
		h.rollbackAfter = false
	}
	if cur.OTAState == tbapi.FwFailed && strings.Contains(cur.OTAError, "rollback") {
		h.rollbackAfter = true
	}
	if cur.OTAState == tbapi.FwUpdated && prev.OTAState != tbapi.FwUpdated {
		h.updated = cur.Version
	}
	if cur.Reprovisions > 0 {
		h.reprovisioned = true
	}
	for _, wt := range w.watch[i] {
		if wt.fired || w.s.Now().After(wt.until) || !atMoment(wt.when, prev, cur) {
			continue
		}
		wt.fired = true
		w.s.After(wt.delay, func() { w.fleet.PowerCycle([]int{i}) })
	}
}

func atMoment(when string, prev, cur device.BoardStatus) bool {
	switch when {
	case "provisioning":
		return cur.State == firmware.StateProvisioning && prev.State != firmware.StateProvisioning
	case "downloading":
		return cur.Downloading && cur.OTABytes > 0 && prev.OTABytes == 0
	case "updating":
		return cur.OTAState == tbapi.FwUpdating && prev.OTAState != tbapi.FwUpdating
	case "pending-verify":
		return cur.PendingVerify && !prev.PendingVerify
	}
	return false
}

// check looks at the fleet after the quiet period.
func (w *fuzzWorld) check() []Violation {
	var out []Violation
	bad := func(inv string, i int, format string, args ...any) {
		v := Violation{Invariant: inv, Detail: fmt.Sprintf(format, args...)}
		if i >= 0 {
			v.Device, v.Faults = w.names[i], w.touched[i]
			for _, l := range w.fleet.Console(i) {
				if !strings.HasPrefix(l.Text, "[TELEMETRY]") { // the story, not the heartbeat
					v.Tail = append(v.Tail, l.Time.Sub(sim.Epoch).String()+" "+l.Text)
				}
			}
			v.Tail = v.Tail[max(0, len(v.Tail)-15):]
		}
		out = append(out, v)
	}
	for i := range w.o.Devices {
		st := w.fleet.Status(i)
		h := w.hist[i]
		online := st.State == firmware.StateOnline
		if st.Bricked {
			bad(InvBootsValidImage, i, "no bootable image after %d boots", st.BootCount)
			continue
		}
		if !online && st.Cause == firmware.FailNone {
			bad(InvNotSilent, i, "%s with no failure counted", st.State)
		}
		token, terr := w.fleet.NVS(i).GetString(firmware.Defaults().NVSNamespace, "token")
		d, known := w.core.DeviceByName(st.Name)
		if known && terr != nil && !w.revoked[i] && !h.reprovisioned {
			bad(InvTokenKept, i, "the server created %s (token %s) but the device holds no token: %s, cause %s (stranded)",
				st.Name, d.Credentials.Token, st.State, st.Cause)
		}
		if online && known && terr == nil && !w.revoked[i] && d.Credentials.Token != token {
			bad(InvCountsAgree, i, "online with token %s; the server holds %s", token, d.Credentials.Token)
		}
		if online && (st.Downloading || st.OTAState == tbapi.FwDownloading) {
			bad(InvNotDownloading, i, "still downloading after the quiet period (%d bytes)", st.OTABytes)
		}
		if online && len(h.versions) > 1 {
			changed := h.versions[len(h.versions)-1] != h.versions[len(h.versions)-2]
			if changed && h.updated != st.Version && !h.rollbackAfter {
				bad(InvVersionReported, i, "versions %v, last report %q %q", h.versions, st.OTAState, st.OTAError)
			}
		}
	}
	// Every telemetry message the server stored was acknowledged to its
	// device, unless the device's connection was gone by the time the
	// acknowledgement would have reached it; nothing is stored twice.
	snap := w.fleet.Snapshot()
	acked, lost, stored := snap.Outcomes.Get("telemetry acked"), snap.Outcomes.Get("telemetry ack lost"), w.core.Stats().TelemetryMsgs
	if acked+lost != stored {
		bad(InvCountsAgree, -1, "devices had %d telemetry messages acknowledged and %d acknowledgements lost with their connection; the server stored %d", acked, lost, stored)
	}
	return out
}

// WriteFuzz prints a search's result.
func WriteFuzz(wr io.Writer, r *FuzzResult) {
	fmt.Fprintf(wr, "\nfault search: %d schedules, %d failed\n", r.Schedules, len(r.Failing))
	if r.First == nil {
		fmt.Fprintf(wr, "  every invariant held\n")
		return
	}
	var inv []string
	for k, n := range r.ByInvar {
		inv = append(inv, fmt.Sprintf("%d × %s", n, k))
	}
	sort.Strings(inv)
	fmt.Fprintf(wr, "  failing schedules by invariant: %s\n", strings.Join(inv, "; "))
	fmt.Fprintf(wr, "  smallest failing seed: %d", r.First.Seed)
	if r.Kept != nil {
		fmt.Fprintf(wr, " (shrunk to %d faults)", len(r.First.Faults))
	}
	fmt.Fprintf(wr, "\n  faults:\n")
	for _, f := range r.First.Faults {
		fmt.Fprintf(wr, "    %s\n", f)
	}
	for i, v := range r.First.Violations {
		if i == 5 {
			fmt.Fprintf(wr, "  ... %d more violations\n", len(r.First.Violations)-5)
			break
		}
		fmt.Fprintf(wr, "  VIOLATED %s\n    %s %s\n", v.Invariant, v.Device, v.Detail)
		if len(v.Faults) > 0 {
			fmt.Fprintf(wr, "    faults on it: %s\n", strings.Join(v.Faults, "; "))
		}
		for _, l := range v.Tail {
			fmt.Fprintf(wr, "      %s\n", l)
		}
	}
	fmt.Fprintf(wr, "  replay: %s\n", r.Replay)
}
