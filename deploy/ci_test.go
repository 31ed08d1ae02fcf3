package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tbsim/tbsim/internal/scenario"
	"github.com/tbsim/tbsim/scenarios"
)

var (
	reInstall  = regexp.MustCompile(`go install (\S+)@\S+`)
	reScenario = regexp.MustCompile(`tbsim scenario run (.+) --junit (\S+)`)
)

// checkCommands checks the commands a CI example runs: it installs tbsim
// by this module's path and runs scenarios with a JUnit report, whose
// path it returns. Every shipped scenario it names exists.
func checkCommands(t *testing.T, file string, commands []string) string {
	t.Helper()
	mod, _ := os.ReadFile("../go.mod")
	module := regexp.MustCompile(`(?m)^module (\S+)`).FindSubmatch(mod)[1]
	installed, junit := false, ""
	for _, c := range commands {
		if m := reInstall.FindStringSubmatch(c); m != nil {
			if m[1] != string(module)+"/cmd/tbsim" {
				t.Errorf("%s: go install %s; want %s/cmd/tbsim", file, m[1], module)
			}
			installed = true
		}
		if m := reScenario.FindStringSubmatch(c); m != nil {
			junit = m[2]
			for _, arg := range strings.Fields(m[1]) {
				if !strings.Contains(arg, "/") && !strings.HasPrefix(arg, "-") {
					if _, _, err := scenarios.Read(arg); err != nil {
						t.Errorf("%s: scenario %q is not shipped: %v", file, arg, err)
					}
				}
			}
		}
	}
	if !installed || junit == "" {
		t.Fatalf("%s: want a go install of tbsim and a tbsim scenario run --junit FILE; got %q", file, commands)
	}
	return junit
}

// The GitHub Actions example: runs on push, installs tbsim, runs the
// scenarios, and publishes the JUnit report even when they fail.
func TestGitHubActionsExample(t *testing.T) {
	const file = "../examples/ci/github-actions.yml"
	var wf struct {
		Name string         `yaml:"name"`
		On   map[string]any `yaml:"on"`
		Jobs map[string]struct {
			RunsOn string `yaml:"runs-on"`
			Steps  []struct {
				Name string         `yaml:"name"`
				Uses string         `yaml:"uses"`
				Run  string         `yaml:"run"`
				If   string         `yaml:"if"`
				With map[string]any `yaml:"with"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	readYAML(t, file, &wf)
	if _, ok := wf.On["push"]; !ok || wf.Name == "" || len(wf.Jobs) != 1 {
		t.Fatalf("%s: name %q, on %v, %d jobs; want a named workflow on push with one job", file, wf.Name, wf.On, len(wf.Jobs))
	}
	for name, job := range wf.Jobs {
		if job.RunsOn == "" {
			t.Errorf("job %s: no runs-on", name)
		}
		var runs []string
		for _, s := range job.Steps {
			if s.Uses == "" && s.Run == "" {
				t.Errorf("job %s: step %q neither uses nor runs anything", name, s.Name)
			}
			if s.Uses != "" && !regexp.MustCompile(`^[\w.-]+/[\w.-]+@v\d+$`).MatchString(s.Uses) {
				t.Errorf("step uses %q; want owner/action@vN", s.Uses)
			}
			runs = append(runs, s.Run)
		}
		junit := checkCommands(t, file, runs)
		published := false
		for _, s := range job.Steps {
			if s.Uses != "" && s.If == "always()" && strings.Contains(strings.Join(withValues(s.With), " "), junit) &&
				strings.Contains(s.Uses, "junit") {
				published = true
			}
		}
		if !published {
			t.Errorf("job %s: no step publishes %s with if: always() (a failed scenario is when it matters)", name, junit)
		}
	}
}

func withValues(m map[string]any) []string {
	var out []string
	for _, v := range m {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// The GitLab CI example: one job that runs the scenarios and hands GitLab
// the JUnit report, always.
func TestGitLabCIExample(t *testing.T) {
	const file = "../examples/ci/gitlab-ci.yml"
	var jobs map[string]struct {
		Image        string   `yaml:"image"`
		BeforeScript []string `yaml:"before_script"`
		Script       []string `yaml:"script"`
		Artifacts    struct {
			When    string            `yaml:"when"`
			Reports map[string]string `yaml:"reports"`
		} `yaml:"artifacts"`
	}
	readYAML(t, file, &jobs)
	if len(jobs) != 1 {
		t.Fatalf("%s: %d jobs; want one", file, len(jobs))
	}
	for name, j := range jobs {
		junit := checkCommands(t, file, append(j.BeforeScript, j.Script...))
		if j.Artifacts.Reports["junit"] != junit || j.Artifacts.When != "always" {
			t.Errorf("job %s: artifacts %+v; want reports.junit %s, when always", name, j.Artifacts, junit)
		}
		if !strings.HasPrefix(j.Image, "golang:") {
			t.Errorf("job %s: image %q; want a Go image for go install", name, j.Image)
		}
	}
}

// The example's scenario is valid (tbsim scenario run --validate would
// pass) and passes.
func TestCIExampleScenario(t *testing.T) {
	files, _ := filepath.Glob("../examples/ci/scenarios/*.yaml")
	if len(files) == 0 {
		t.Fatal("no example scenario")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := scenario.Parse(filepath.Base(f), data)
		if err != nil {
			t.Fatal(err)
		}
		if r := scenario.Run(t.Context(), sc, scenario.RunOptions{Mode: scenario.ModeVirtual}); !r.Passed {
			t.Errorf("%s failed: %+v", f, r)
		}
	}
}

func readYAML(t *testing.T, file string, v any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}
