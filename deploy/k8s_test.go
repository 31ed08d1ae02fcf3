package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Just the fields of the Kubernetes objects the sample uses.
type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		// Job
		CompletionMode       string `yaml:"completionMode"`
		Completions          *int   `yaml:"completions"`
		Parallelism          *int   `yaml:"parallelism"`
		PodReplacementPolicy string `yaml:"podReplacementPolicy"`
		Template             struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
		// PersistentVolumeClaim
		AccessModes []string `yaml:"accessModes"`
		Resources   struct {
			Requests map[string]string `yaml:"requests"`
		} `yaml:"resources"`
	} `yaml:"spec"`
}

type podSpec struct {
	RestartPolicy   string `yaml:"restartPolicy"`
	SecurityContext struct {
		RunAsNonRoot bool `yaml:"runAsNonRoot"`
		RunAsUser    int  `yaml:"runAsUser"`
		FSGroup      int  `yaml:"fsGroup"`
	} `yaml:"securityContext"`
	Containers []struct {
		Name  string   `yaml:"name"`
		Image string   `yaml:"image"`
		Args  []string `yaml:"args"`
		Env   []struct {
			Name      string `yaml:"name"`
			ValueFrom struct {
				FieldRef struct {
					FieldPath string `yaml:"fieldPath"`
				} `yaml:"fieldRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		EnvFrom []struct {
			SecretRef struct {
				Name string `yaml:"name"`
			} `yaml:"secretRef"`
		} `yaml:"envFrom"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name                  string `yaml:"name"`
		PersistentVolumeClaim struct {
			ClaimName string `yaml:"claimName"`
		} `yaml:"persistentVolumeClaim"`
		EmptyDir *struct{} `yaml:"emptyDir"`
	} `yaml:"volumes"`
}

func readObjects(t *testing.T, path string) map[string]object {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]object{}
	dec := yaml.NewDecoder(f)
	for {
		var o object
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
			t.Fatalf("%s: an object without apiVersion, kind or metadata.name: %+v", path, o)
		}
		out[o.Kind+"/"+o.Metadata.Name] = o
	}
}

func flag(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// Per-device memory of tbsim run against a server, measured (README,
// "Measured"): the sample's requests must cover its shard.
const (
	measuredBaseMiB      = 17
	measuredPerDeviceKiB = 81
)

func mebibytes(t *testing.T, q string) int {
	t.Helper()
	v, err := strconv.Atoi(strings.TrimSuffix(q, "Mi"))
	if err != nil {
		if g, err := strconv.Atoi(strings.TrimSuffix(q, "Gi")); err == nil {
			return g * 1024
		}
		t.Fatalf("memory quantity %q: want Mi or Gi", q)
	}
	return v
}

// The sample fleet Job: indexed, one shard per index, secrets from the
// environment, state and summary on a persistent volume per index,
// requests that fit the measured memory per device.
func TestKubernetesSample(t *testing.T) {
	objs := readObjects(t, "k8s-indexed-job.yaml")
	job, ok := objs["Job/tbsim-fleet"]
	if !ok {
		t.Fatalf("no Job tbsim-fleet in %v", objs)
	}
	s := job.Spec
	pod := s.Template.Spec
	if s.CompletionMode != "Indexed" || s.Completions == nil || s.Parallelism == nil || *s.Completions != *s.Parallelism {
		t.Fatalf("Job: completionMode %q, completions %v, parallelism %v; want Indexed, one pod per shard at once", s.CompletionMode, s.Completions, s.Parallelism)
	}
	if s.PodReplacementPolicy != "Failed" {
		t.Errorf("podReplacementPolicy %q; want Failed: a replacement must not share the state dir with a pod still terminating", s.PodReplacementPolicy)
	}
	if pod.RestartPolicy != "Never" || !pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.RunAsUser != 65532 || pod.SecurityContext.FSGroup != 65532 {
		t.Errorf("pod: restartPolicy %q, securityContext %+v; want Never and the image's non-root user 65532", pod.RestartPolicy, pod.SecurityContext)
	}
	c := pod.Containers[0]
	args := c.Args
	n := *s.Completions
	if args[0] != "run" || flag(args, "shard") != fmt.Sprintf("$(INDEX)/%d", n) {
		t.Errorf("args %v; want run --shard=$(INDEX)/%d", args, n)
	}
	if len(c.Env) == 0 || c.Env[0].Name != "INDEX" || c.Env[0].ValueFrom.FieldRef.FieldPath != "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
		t.Errorf("env %+v; want INDEX from the job completion index", c.Env)
	}
	for _, a := range args {
		if strings.HasPrefix(a, "--provision-key") || strings.HasPrefix(a, "--provision-secret") {
			t.Errorf("%s: a secret in args, where ps shows it; want it from the Secret as TBSIM_ variables", a)
		}
	}
	if len(c.EnvFrom) == 0 || c.EnvFrom[0].SecretRef.Name == "" {
		t.Errorf("envFrom %+v; want the provisioning Secret", c.EnvFrom)
	}
	// State and summary on the volume, a directory per index.
	if len(c.VolumeMounts) != 1 || len(pod.Volumes) != 1 || pod.Volumes[0].EmptyDir != nil {
		t.Fatalf("volumes %+v; want one persistent volume", pod.Volumes)
	}
	mount := c.VolumeMounts[0].MountPath
	claim := pod.Volumes[0].PersistentVolumeClaim.ClaimName
	pvc, ok := objs["PersistentVolumeClaim/"+claim]
	if !ok || len(pvc.Spec.AccessModes) != 1 || pvc.Spec.AccessModes[0] != "ReadWriteMany" {
		t.Errorf("claim %q: %+v; want a ReadWriteMany PersistentVolumeClaim in the file", claim, pvc)
	}
	if sd := flag(args, "state-dir"); !strings.HasPrefix(sd, mount+"/") || !strings.Contains(sd, "$(INDEX)") {
		t.Errorf("--state-dir=%s; want a directory per index on %s", sd, mount)
	}
	if js := flag(args, "json"); !strings.HasPrefix(js, mount+"/") || !strings.Contains(js, "$(INDEX)") {
		t.Errorf("--json=%s; want a summary per index on %s", js, mount)
	}
	// Memory: a shard's devices at the measured cost, and a limit above.
	devices, _ := strconv.Atoi(flag(args, "devices"))
	need := measuredBaseMiB + (devices/n)*measuredPerDeviceKiB/1024
	req, lim := mebibytes(t, c.Resources.Requests["memory"]), mebibytes(t, c.Resources.Limits["memory"])
	if req < need || lim < req || c.Resources.Requests["cpu"] == "" {
		t.Errorf("resources %+v; want a memory request of at least %d Mi (%d devices per pod) and a limit above it, and a cpu request",
			c.Resources, need, devices/n)
	}

	// The merge Job reads every index's summary from the same volume.
	merge := readObjects(t, "k8s-merge-job.yaml")["Job/tbsim-merge"]
	mc := merge.Spec.Template.Spec.Containers[0]
	if merge.Spec.Template.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != claim {
		t.Errorf("the merge Job mounts %+v; want claim %s", merge.Spec.Template.Spec.Volumes, claim)
	}
	for i := range n {
		want := strings.ReplaceAll(flag(args, "json"), "$(INDEX)", strconv.Itoa(i))
		want = strings.Replace(want, mount, mc.VolumeMounts[0].MountPath, 1)
		if !contains(mc.Args, want) {
			t.Errorf("the merge Job's args %v miss shard %d's summary %s", mc.Args, i, want)
		}
	}
	if mc.Args[0] != "report" || mc.Args[1] != "merge" || mc.Image != c.Image {
		t.Errorf("merge container %s %v; want the same image running report merge", mc.Image, mc.Args)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// The sample's command lines run, in the container's binary: every shard of
// the Job (fewer devices, a local server, a short duration, paths in a
// temporary directory) with the credentials only in TBSIM_ variables, then
// the merge Job's command line on their summaries, which must pass its
// thresholds.
func TestKubernetesSampleRuns(t *testing.T) {
	bin := dockerBuild(t)
	addr := startServer(t)
	dir := t.TempDir()
	job := readObjects(t, "k8s-indexed-job.yaml")["Job/tbsim-fleet"]
	c := job.Spec.Template.Spec.Containers[0]
	n := *job.Spec.Completions
	local := func(arg string, index int) string {
		arg = strings.ReplaceAll(arg, "$(INDEX)", strconv.Itoa(index))
		arg = strings.ReplaceAll(arg, c.VolumeMounts[0].MountPath+"/", dir+"/")
		switch {
		case strings.HasPrefix(arg, "--server="):
			return "--server=mqtt://" + addr
		case strings.HasPrefix(arg, "--devices="):
			return fmt.Sprintf("--devices=%d", 2*n)
		case strings.HasPrefix(arg, "--duration="):
			return "--duration=3s"
		case strings.HasPrefix(arg, "--metrics="):
			return "--metrics=127.0.0.1:0"
		}
		return arg
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		args := []string{}
		for _, a := range c.Args {
			args = append(args, local(a, i))
		}
		args = append(args, "--wifi-connect=10ms-30ms")
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "TBSIM_PROVISION_KEY=tbsim-provision-key", "TBSIM_PROVISION_SECRET=tbsim-provision-secret")
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("shard %d: tbsim %s: %v\n%s", i, strings.Join(args, " "), err, out)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	merge := readObjects(t, "k8s-merge-job.yaml")["Job/tbsim-merge"].Spec.Template.Spec.Containers[0]
	var args []string
	for _, a := range merge.Args {
		args = append(args, strings.ReplaceAll(a, merge.VolumeMounts[0].MountPath+"/", dir+"/"))
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("tbsim %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if !bytes.Contains(out, []byte(fmt.Sprintf("devices .................: %d started, %d provisioned", 2*n, 2*n))) ||
		!regexp.MustCompile(`verdict: all \d+ thresholds passed`).Match(out) {
		t.Errorf("merge output:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "fleet.json")); err != nil {
		t.Error(err)
	}
}
