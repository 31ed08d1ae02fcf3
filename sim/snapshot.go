package sim

import "time"

// Snapshot is the fleet at one instant: what the live view and the summary show.
type Snapshot struct {
	Elapsed      time.Duration         `json:"elapsed"`
	Devices      int                   `json:"devices"`
	Started      int                   `json:"started"`
	ByState      map[string]int        `json:"byState"`
	Provisioned  int                   `json:"provisioned"`
	Online       int                   `json:"online"`
	Versions     map[string]int        `json:"versions"`
	OTAStates    map[string]int        `json:"otaStates"`
	Reprovisions int                   `json:"reprovisions"`
	Boots        int                   `json:"boots"`
	Bricked      int                   `json:"bricked"`
	Trends       map[string]TrendStats `json:"trends"`
	Outcomes     Counts                `json:"outcomes"`
	Disconnects  Counts                `json:"disconnects"`
	Errors       []ErrorCause          `json:"errors"`
	OTABytes     int64                 `json:"otaBytes"`
	OTAWindow    time.Duration         `json:"otaWindow"` // first to last chunk, fleet-wide
}

// ErrorCause is one error cause with its count and an example device.
type ErrorCause struct {
	Cause   string `json:"cause"`
	Count   int64  `json:"count"`
	Example string `json:"example"`
}

// Snapshot reads every board's status (lock-free) and the metrics.
func (f *Fleet) Snapshot() Snapshot {
	s := Snapshot{Devices: len(f.boards), ByState: map[string]int{}, Versions: map[string]int{}, OTAStates: map[string]int{}}
	f.mu.Lock()
	live := append([]bool(nil), f.live...)
	if !f.started.IsZero() {
		s.Elapsed = time.Since(f.started)
	}
	f.mu.Unlock()
	for i, b := range f.boards {
		if !live[i] {
			continue
		}
		s.Started++
		st := b.Status()
		s.ByState[st.State.String()]++
		if st.Provisioned {
			s.Provisioned++
		}
		if st.State.String() == "online" {
			s.Online++
		}
		if st.Version != "" {
			s.Versions[st.Version]++
		}
		if st.OTAState != "" {
			s.OTAStates[string(st.OTAState)]++
		}
		s.Reprovisions += st.Reprovisions
		s.Boots += st.BootCount
		if st.Bricked {
			s.Bricked++
		}
	}
	m := f.metrics
	s.Trends = map[string]TrendStats{
		"provision": m.Provision.Stats(), "connect": m.Connect.Stats(), "publish": m.PublishAck.Stats(),
		"chunk": m.ChunkRTT.Stats(), "ota": m.OTA.Stats(),
	}
	s.Outcomes, s.Disconnects = m.Outcomes.Snapshot(), m.Disconnects.Snapshot()
	for _, e := range m.Errors.Snapshot() {
		s.Errors = append(s.Errors, ErrorCause{Cause: e.Name, Count: e.Count, Example: m.Example(e.Name)})
	}
	s.OTABytes = m.OTABytes.Get("bytes")
	s.OTAWindow = m.OTAWindow()
	return s
}
