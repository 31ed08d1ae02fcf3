package deploy

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd, args string
	line      int
}

type stage struct {
	from, name string
	ins        []instruction
}

func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []stage
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (l == "" || strings.HasPrefix(l, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(l, "\\") {
			cur.WriteString(strings.TrimSuffix(l, "\\") + " ")
			continue
		}
		cur.WriteString(l)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		cur.Reset()
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args), start}
		switch {
		case in.cmd == "FROM":
			from, name, _ := strings.Cut(in.args, " AS ")
			stages = append(stages, stage{from: strings.TrimSpace(from), name: strings.TrimSpace(name)})
		case len(stages) == 0 && in.cmd != "ARG":
			t.Fatalf("%s:%d: %s before the first FROM", path, in.line, in.cmd)
		case len(stages) > 0:
			stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
		}
	}
	return stages
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func (s stage) last(cmd string) string {
	all := s.all(cmd)
	if len(all) == 0 {
		return ""
	}
	return all[len(all)-1].args
}

// The Dockerfile is multi-stage: a Go toolchain of the module's version
// builds a static binary, a small base runs it as a non-root user with
// tbsim as the entrypoint and the state under a volume.
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, "../Dockerfile")
	if len(stages) < 2 {
		t.Fatalf("%d stages; want a build stage and a runtime stage", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	if !strings.HasPrefix(build.from, "golang:") || build.name == "" {
		t.Errorf("build stage FROM %q AS %q; want golang:... AS a name", build.from, build.name)
	}
	df, _ := os.ReadFile("../Dockerfile")
	mod, _ := os.ReadFile("../go.mod")
	goVer := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	if !strings.Contains(string(df), "ARG GO_VERSION="+string(goVer[1])+"\n") {
		t.Errorf("ARG GO_VERSION is not go.mod's Go %s", goVer[1])
	}
	if !regexp.MustCompile(`^(gcr\.io/distroless/static|scratch|alpine)`).MatchString(final.from) {
		t.Errorf("runtime stage FROM %q; want a small base (distroless/static, scratch)", final.from)
	}
	if u := final.last("USER"); u == "" || u == "root" || strings.HasPrefix(u, "0") {
		t.Errorf("USER %q; want a non-root user", u)
	}
	if ep := final.last("ENTRYPOINT"); !regexp.MustCompile(`^\["/[a-z/]*/tbsim"\]$`).MatchString(ep) {
		t.Errorf("ENTRYPOINT %s; want the exec form of the tbsim binary", ep)
	}
	bin := strings.Trim(strings.TrimSuffix(strings.TrimPrefix(final.last("ENTRYPOINT"), "["), "]"), `"`)
	copied := false
	for _, c := range final.all("COPY") {
		copied = copied || strings.HasPrefix(c.args, "--from="+build.name) && strings.HasSuffix(c.args, " "+bin)
	}
	if !copied {
		t.Errorf("the entrypoint %s is not copied from the %s stage", bin, build.name)
	}
	if v := final.last("VOLUME"); !strings.Contains(v, `"/state"`) {
		t.Errorf("VOLUME %s; want /state", v)
	}
	if env := final.last("ENV"); !strings.Contains(env, "TBSIM_STATE_DIR=/state") {
		t.Errorf("ENV %s; want TBSIM_STATE_DIR=/state, so tbsim run keeps its state in the volume", env)
	}
	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil || !regexp.MustCompile(`(?m)^\.git$`).Match(ignore) {
		t.Errorf(".dockerignore should leave .git out of the build context")
	}
	if cmd := buildCommand(t, build); !strings.Contains(cmd, "CGO_ENABLED=0 go build") || !strings.HasSuffix(cmd, " ./cmd/tbsim") {
		t.Errorf("build command %q; want CGO_ENABLED=0 go build ... ./cmd/tbsim", cmd)
	}
}

// buildCommand is the stage's RUN that builds tbsim.
func buildCommand(t *testing.T, build stage) string {
	for _, r := range build.all("RUN") {
		if strings.Contains(r.args, "go build") {
			return r.args
		}
	}
	t.Fatal("no RUN go build in the build stage")
	return ""
}

// dockerBuild runs the Dockerfile's own build command (with its ARGs
// empty, as a build without --build-arg) outside Docker, and returns the
// binary. The first time it compiles everything with -trimpath (about a
// minute on two cores); the build cache makes later runs quick.
func dockerBuild(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: not building the container's binary")
	}
	stages := parseDockerfile(t, "../Dockerfile")
	out := filepath.Join(t.TempDir(), "tbsim")
	cmd := exec.Command("sh", "-c", strings.ReplaceAll(buildCommand(t, stages[0]), "/out/tbsim", out))
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "VERSION=", "REVISION=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's build command: %v\n%s", err, b)
	}
	// Static: nothing for a distroless/static base to lack.
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("the binary needs a dynamic loader; want a static binary (CGO_ENABLED=0)")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("the binary links %v; want a static binary", libs)
	}
	return out
}
