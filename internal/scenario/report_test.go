package scenario

import (
	"bytes"
	"encoding/xml"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A real-time run's JUnit suite carries the wall clock's start (in UTC, as
// JUnit readers expect a zone-less ISO 8601 time) and every case its time.
func TestJUnitTimes(t *testing.T) {
	start := time.Date(2025, 3, 4, 6, 7, 8, 0, time.FixedZone("CET", 3600))
	r := &Result{Name: "s", Mode: ModeRealtime, Started: start, Duration: 2500 * time.Millisecond, Passed: true,
		Steps: []StepResult{{Index: 0, Line: "3", Action: "wait", Duration: 2 * time.Second, Status: "ok", Detail: "all online"},
			{Index: 1, Line: "4", Action: "sleep", Duration: 500 * time.Millisecond, Status: "ok"}},
		Expectations: []ExpResult{{Expect: "errors == 0", Measured: "0", Passed: true}}}
	var b bytes.Buffer
	require.NoError(t, WriteJUnit(&b, []*Result{r}))
	var doc junitSuites
	require.NoError(t, xml.Unmarshal(b.Bytes(), &doc))
	s := doc.Suites[0]
	require.Equal(t, "2025-03-04T05:07:08", s.Timestamp)
	require.Equal(t, 2.5, s.Time)
	require.Equal(t, 3, s.Tests)
	require.Equal(t, []float64{2, 0.5, 0}, []float64{s.Cases[0].Time, s.Cases[1].Time, s.Cases[2].Time})
	require.Contains(t, b.String(), `<testcase name="step 1 wait (line 3)" classname="s" time="2">`)
}
