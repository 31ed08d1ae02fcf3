package deploy

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tbsim/tbsim/internal/report"
	"github.com/tbsim/tbsim/sim"
)

// exported lists every series name tbsim's /metrics has: the registry
// tbsim run serves, gathered once, with the _bucket/_sum/_count series of
// histograms.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	var tr sim.Trend
	tr.Observe(time.Millisecond)
	h := tr.Histogram()
	snap := func() sim.Snapshot {
		return sim.Snapshot{Versions: map[string]int{"1.0.0": 1}, Disconnects: sim.Counts{{Name: "keepalive", Count: 1}}, Histograms: map[string]sim.Histogram{"provision": h, "connect": h, "publish": h, "publish_steady": h, "chunk": h, "ota": h,
			"generator.lag": h, "admission.wait": h}}
	}
	mfs, err := report.NewRegistry(snap).Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[mf.GetName()+s] = true
			}
		}
	}
	return names
}

var _ prometheus.Collector = (*report.Collector)(nil)

type panel struct {
	ID         int     `json:"id"`
	Type       string  `json:"type"`
	Title      string  `json:"title"`
	Datasource any     `json:"datasource"`
	Panels     []panel `json:"panels"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr   string `json:"expr"`
		RefID  string `json:"refId"`
		Format string `json:"format"`
	} `json:"targets"`
}

var reMetric = regexp.MustCompile(`\b(?:tbsim|go|process)_[a-z0-9_]+\b`)

// The Grafana dashboard imports (valid JSON with a uid, title and panels on
// the 24-column grid), has the panels the issue asks for, and every query
// names only metrics tbsim exports, with balanced brackets.
func TestGrafanaDashboard(t *testing.T) {
	data, err := os.ReadFile("../dashboards/tbsim.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID        string  `json:"uid"`
		Title      string  `json:"title"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("uid %q, title %q, %d panels", d.UID, d.Title, len(d.Panels))
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	names := exported(t)
	ids := map[int]bool{}
	var titles []string
	heatmaps := 0
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		titles = append(titles, strings.ToLower(p.Title))
		if g := p.GridPos; g.W <= 0 || g.H <= 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v off the 24-column grid", p.Title, g)
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		if p.Type == "heatmap" {
			heatmaps++
		}
		for _, q := range p.Targets {
			if p.Type == "heatmap" && (q.Format != "heatmap" || !strings.Contains(q.Expr, "_bucket")) {
				t.Errorf("heatmap %q: %q (format %q); want histogram buckets in heatmap format", p.Title, q.Expr, q.Format)
			}
			ms := reMetric.FindAllString(q.Expr, -1)
			if len(ms) == 0 {
				t.Errorf("panel %q: %q names no tbsim metric", p.Title, q.Expr)
			}
			for _, m := range ms {
				if !names[m] {
					t.Errorf("panel %q: %s is not a metric tbsim exports", p.Title, m)
				}
			}
			for _, pair := range []string{"()", "{}", "[]"} {
				if strings.Count(q.Expr, pair[:1]) != strings.Count(q.Expr, pair[1:]) {
					t.Errorf("panel %q: unbalanced %s in %q", p.Title, pair, q.Expr)
				}
			}
			for _, v := range regexp.MustCompile(`\$(\w+)`).FindAllStringSubmatch(q.Expr, -1) {
				if !vars[v[1]] && !strings.HasPrefix(v[1], "__") {
					t.Errorf("panel %q: $%s is not a dashboard variable", p.Title, v[1])
				}
			}
		}
	}
	all := strings.Join(titles, "\n")
	for _, want := range []string{"devices by state", "publish rate", "heatmap", "fw_state", "failures by cause", "cpu", "lag"} {
		if !strings.Contains(all, want) {
			t.Errorf("no panel titled with %q; panels: %s", want, all)
		}
	}
	if heatmaps < 5 {
		t.Errorf("%d latency heatmaps; want one per latency histogram", heatmaps)
	}
}
