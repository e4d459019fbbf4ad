package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/sluice-llm/sluice/server"
)

// The deployment kit in deploy/ is checked here, where the flags and
// their variables live: every manifest parses strictly with the real
// Kubernetes API types (the Gateway API Inference Extension's and
// kustomize's with small structs of their fields), and the probes, ports,
// variables and metric names match what sluice serve does.

const deployDir = "../../deploy"

// manifests reads every YAML document of deploy/k8s, keyed by
// "Kind/name".
func manifests(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(deployDir, "k8s", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s/k8s: %v", deployDir, err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range bytes.Split(data, []byte("\n---\n")) {
			var head struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if err := yaml.Unmarshal(doc, &head); err != nil || head.Kind == "" {
				t.Fatalf("%s: a document without a kind: %v", f, err)
			}
			out[head.Kind+"/"+head.Metadata.Name] = doc
		}
	}
	return out
}

// strict decodes a manifest, refusing fields the type does not have.
func strict[T any](t *testing.T, docs map[string][]byte, key string) *T {
	t.Helper()
	doc, ok := docs[key]
	if !ok {
		t.Fatalf("no %s in deploy/k8s", key)
	}
	var v T
	if err := yaml.UnmarshalStrict(doc, &v); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return &v
}

// serverFamilies returns the metric families of a fresh server's
// /metrics with their types.
func serverFamilies(t *testing.T) map[string]string {
	ts := httptest.NewServer(server.New(server.Options{}).Handler())
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[1] == "TYPE" {
			out[f[2]] = f[3]
		}
	}
	return out
}

// containerOptions parses the container's args and environment as sluice
// serve does, refusing variables serve does not know.
func containerOptions(t *testing.T, c corev1.Container) *serveOptions {
	t.Helper()
	known := map[string]bool{"SLUICE_HOME": true}
	for _, e := range serveEnv {
		known[e.env] = true
	}
	env := map[string]string{}
	for _, e := range c.Env {
		if !known[e.Name] {
			t.Errorf("container variable %s is not one of sluice serve's", e.Name)
		}
		env[e.Name] = e.Value
	}
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Fatalf("container args %q: want serve first", c.Args)
	}
	o, err := parseServe(c.Args[1:], envOf(env), io.Discard)
	if err != nil {
		t.Fatalf("sluice serve refuses the container's configuration: %v", err)
	}
	return o
}

func TestDeployDeployment(t *testing.T) {
	docs := manifests(t)
	d := strict[appsv1.Deployment](t, docs, "Deployment/sluice")
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	o := containerOptions(t, c)
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["http"] != int32(o.port) || ports["grpc"] != int32(o.grpcPort) || o.host != "0.0.0.0" {
		t.Errorf("container ports %v, sluice listens on %s:%d and gRPC %d", ports, o.host, o.port, o.grpcPort)
	}

	// Each probe asks an endpoint the server has, on its HTTP port.
	ts := httptest.NewServer(server.New(server.Options{}).Handler())
	defer ts.Close()
	for name, pr := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if pr == nil || pr.HTTPGet == nil {
			t.Errorf("%s probe: want an httpGet probe", name)
			continue
		}
		if port := pr.HTTPGet.Port.String(); port != "http" && port != itoa(o.port) {
			t.Errorf("%s probe on port %s, not the HTTP port", name, port)
		}
		resp, err := http.Get(ts.URL + pr.HTTPGet.Path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			t.Errorf("%s probe path %s: the server has no such endpoint", name, pr.HTTPGet.Path)
		}
	}
	if c.LivenessProbe.HTTPGet.Path != "/health" || c.ReadinessProbe.HTTPGet.Path != "/ready" {
		t.Errorf("liveness %s, readiness %s: want /health (200 while draining) and /ready", c.LivenessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Path)
	}

	// The grace period covers the preStop sleep, the drain and the last writes.
	var preStop time.Duration
	if l := c.Lifecycle; l != nil && l.PreStop != nil && l.PreStop.Sleep != nil {
		preStop = time.Duration(l.PreStop.Sleep.Seconds) * time.Second
	} else {
		t.Error("no preStop sleep: the pod would stop before the load balancers drop it")
	}
	need := preStop + o.shutdownTimeout + shutdownGrace
	var grace time.Duration // Kubernetes' default is 30s
	if g := pod.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if grace < need {
		t.Errorf("terminationGracePeriodSeconds %v, want at least %v (preStop %v + --shutdown-timeout %v + %v)", grace, need, preStop, o.shutdownTimeout, shutdownGrace)
	}

	// $SLUICE_HOME is a volume; the pod runs as non-root with resources.
	home := ""
	for _, e := range c.Env {
		if e.Name == "SLUICE_HOME" {
			home = e.Value
		}
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		mounted = mounted || (m.MountPath == home && home != "")
	}
	if !mounted {
		t.Errorf("SLUICE_HOME %q is not a mounted volume", home)
	}
	for _, v := range pod.Volumes {
		if v.PersistentVolumeClaim != nil {
			strict[corev1.PersistentVolumeClaim](t, docs, "PersistentVolumeClaim/"+v.PersistentVolumeClaim.ClaimName)
		}
	}
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("the pod may run as root")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Error("no CPU or memory requests")
	}
	if d.Spec.Selector == nil || !subset(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
		t.Error("the Deployment's selector does not match its pods")
	}

	svc := strict[corev1.Service](t, docs, "Service/sluice")
	if !subset(svc.Spec.Selector, d.Spec.Template.Labels) {
		t.Error("the Service does not select the pods")
	}
	for _, p := range svc.Spec.Ports {
		if _, ok := ports[p.TargetPort.String()]; !ok {
			t.Errorf("Service port %s targets %s, not a container port", p.Name, p.TargetPort.String())
		}
	}
}

// subset reports whether every label of sel is in labels.
func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// adapterConfig is the part of prometheus-adapter's configuration used.
type adapterConfig struct {
	Rules []struct {
		SeriesQuery string         `json:"seriesQuery"`
		Resources   map[string]any `json:"resources"`
		Name        struct {
			Matches string `json:"matches"`
			As      string `json:"as"`
		} `json:"name"`
		MetricsQuery string `json:"metricsQuery"`
	} `json:"rules"`
}

func TestDeployAutoscaler(t *testing.T) {
	docs := manifests(t)
	hpa := strict[autoscalingv2.HorizontalPodAutoscaler](t, docs, "HorizontalPodAutoscaler/sluice")
	if ref := hpa.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != "sluice" {
		t.Errorf("the HPA scales %s/%s", ref.Kind, ref.Name)
	}
	cm := strict[corev1.ConfigMap](t, docs, "ConfigMap/sluice-prometheus-adapter-rules")
	var cfg adapterConfig
	if err := yaml.UnmarshalStrict([]byte(cm.Data["config.yaml"]), &cfg); err != nil || len(cfg.Rules) == 0 {
		t.Fatalf("adapter rules: %v", err)
	}
	families := serverFamilies(t)
	served := map[string]bool{}
	for _, r := range cfg.Rules {
		metric := r.Name.Matches
		if families[metric] != "gauge" {
			t.Errorf("the adapter reads %q, which /metrics has as %q, not a gauge", metric, families[metric])
		}
		if !strings.HasPrefix(r.SeriesQuery, metric+"{") || !strings.Contains(r.MetricsQuery, metric+"{") {
			t.Errorf("rule for %s queries %q / %q", metric, r.SeriesQuery, r.MetricsQuery)
		}
		served[r.Name.As] = true
	}
	if len(hpa.Spec.Metrics) == 0 {
		t.Fatal("the HPA has no metric")
	}
	for _, m := range hpa.Spec.Metrics {
		if m.Type != autoscalingv2.PodsMetricSourceType || m.Pods == nil || !served[m.Pods.Metric.Name] {
			t.Errorf("HPA metric %+v is not one the adapter serves (%v)", m, served)
		}
	}
}

// The Gateway API Inference Extension's resources, with the fields used
// (its Go module is not a dependency of sluice).
type inferencePool struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		TargetPorts []struct {
			Number int `json:"number"`
		} `json:"targetPorts"`
		EndpointPickerRef struct {
			Name string `json:"name"`
			Port struct {
				Number int `json:"number"`
			} `json:"port"`
		} `json:"endpointPickerRef"`
	} `json:"spec"`
}

type inferenceObjective struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Priority *int `json:"priority"`
		PoolRef  struct {
			Name string `json:"name"`
		} `json:"poolRef"`
	} `json:"spec"`
}

func TestDeployInferencePool(t *testing.T) {
	docs := manifests(t)
	d := strict[appsv1.Deployment](t, docs, "Deployment/sluice")
	o := containerOptions(t, d.Spec.Template.Spec.Containers[0])
	pool := strict[inferencePool](t, docs, "InferencePool/sluice")
	if pool.APIVersion != "inference.networking.k8s.io/v1" {
		t.Errorf("InferencePool apiVersion %s", pool.APIVersion)
	}
	if !subset(pool.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
		t.Error("the InferencePool does not select the sluice pods")
	}
	if len(pool.Spec.TargetPorts) != 1 || pool.Spec.TargetPorts[0].Number != o.port {
		t.Errorf("InferencePool target ports %+v, sluice serves HTTP on %d", pool.Spec.TargetPorts, o.port)
	}
	if pool.Spec.EndpointPickerRef.Name == "" || pool.Spec.EndpointPickerRef.Port.Number == 0 {
		t.Error("the InferencePool names no endpoint picker")
	}
	obj := strict[inferenceObjective](t, docs, "InferenceObjective/sluice-interactive")
	if obj.APIVersion != "inference.networking.x-k8s.io/v1alpha2" || obj.Spec.PoolRef.Name != pool.Metadata.Name {
		t.Errorf("InferenceObjective %+v does not refer to the pool", obj)
	}
	families := serverFamilies(t)
	for _, m := range []string{"vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:kv_cache_usage_perc", "vllm:cache_config_info"} {
		if families[m] != "gauge" {
			t.Errorf("the endpoint picker reads the gauge %s; /metrics has it as %q", m, families[m])
		}
	}
}

func TestDeployKustomizationAndImage(t *testing.T) {
	var k struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Resources  []string `json:"resources"`
	}
	data, err := os.ReadFile(filepath.Join(deployDir, "k8s", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, &k); err != nil || k.Kind != "Kustomization" || len(k.Resources) == 0 {
		t.Fatalf("kustomization: %+v %v", k, err)
	}
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join(deployDir, "k8s", r)); err != nil {
			t.Errorf("kustomization resource %s: %v", r, err)
		}
	}
	df, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(df)
	for _, want := range []string{"AS build", "make static", "FROM gcr.io/distroless/static", "USER 65532", `ENTRYPOINT ["/sluice"]`, "SLUICE_HOST=0.0.0.0", "EXPOSE 8080"} {
		if !strings.Contains(s, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if !strings.Contains(s, "SLUICE_PORT=8080") {
		t.Error("the image's SLUICE_PORT is not the exposed 8080")
	}
}
