package scenario

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteText writes the human report of one scenario.
func WriteText(w io.Writer, r *Result) {
	verdict := "PASSED"
	if !r.Passed {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "\nscenario %s (%s): %s in %s, seed %d\n", r.Name, r.File, verdict, r.Duration.Round(time.Millisecond), r.Seed)
	if r.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", r.Error)
	}
	for _, s := range r.Steps {
		fmt.Fprintf(w, "  %-7s %2d. %-18s line %-4s at %8s took %8s  %s\n", s.Status, s.Index+1, s.Action, s.Line,
			s.Start.Round(time.Millisecond), s.Duration.Round(time.Millisecond), s.Detail)
		for _, d := range s.Devices {
			fmt.Fprintf(w, "            device %s, serial log tail:\n", d.Name)
			for _, l := range d.Tail {
				fmt.Fprintf(w, "              %s\n", l)
			}
		}
	}
	for _, e := range r.Expectations {
		mark := "ok    "
		if !e.Passed {
			mark = "FAILED"
		}
		fmt.Fprintf(w, "  %s expect %-32s measured %s\n", mark, e.Expect, e.Measured)
	}
	if !r.Passed {
		fmt.Fprintf(w, "  replay: %s\n", r.Replay)
	}
}

// WriteJSON writes every result.
func WriteJSON(w io.Writer, rs []*Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rs)
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Time      float64     `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr"`
	Cases     []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      float64       `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Error     *junitFailure `xml:"error,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

// WriteJUnit writes one test suite per scenario: a test case per step,
// timed (a failed one carries the devices involved with their serial logs,
// later ones are skipped), then one per expectation (judged at the end, so
// without a time of their own).
//
// In virtual mode times are virtual: a suite's time is the scenario's
// length on the virtual clock and its timestamp the virtual clock's start
// (sim.Epoch), so the same seed gives the same bytes; in real time both are
// the wall clock's.
func WriteJUnit(w io.Writer, rs []*Result) error {
	var doc junitSuites
	for _, r := range rs {
		s := junitSuite{Name: r.Name, Time: r.Duration.Seconds(), Timestamp: r.Started.UTC().Format("2006-01-02T15:04:05")}
		if r.Error != "" {
			s.Cases = append(s.Cases, junitCase{Name: "run", Classname: r.Name, Time: r.Duration.Seconds(), Error: &junitFailure{Message: r.Error, Body: r.Replay}})
			s.Errors++
		}
		for _, st := range r.Steps {
			c := junitCase{Name: fmt.Sprintf("step %d %s (line %s)", st.Index+1, st.Action, st.Line), Classname: r.Name,
				Time: st.Duration.Seconds(), SystemOut: st.Detail}
			switch st.Status {
			case "failed":
				var body strings.Builder
				for _, d := range st.Devices {
					fmt.Fprintf(&body, "device %s:\n  %s\n", d.Name, strings.Join(d.Tail, "\n  "))
				}
				body.WriteString("replay: " + r.Replay)
				c.Failure, c.SystemOut = &junitFailure{Message: st.Detail, Body: body.String()}, ""
				s.Failures++
			case "skipped":
				c.Skipped = &junitSkipped{Message: "an earlier step failed"}
				s.Skipped++
			}
			s.Cases = append(s.Cases, c)
		}
		for _, e := range r.Expectations {
			c := junitCase{Name: e.Expect, Classname: r.Name, SystemOut: "measured " + e.Measured}
			if !e.Passed {
				c.Failure = &junitFailure{Message: "measured " + e.Measured, Body: "replay: " + r.Replay}
				s.Failures++
			}
			s.Cases = append(s.Cases, c)
		}
		s.Tests = len(s.Cases)
		doc.Suites = append(doc.Suites, s)
	}
	io.WriteString(w, xml.Header)
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
