// Package examples_test keeps the deployment examples honest: the annotated
// config loads, documents every option, and the Docker, Compose and
// Kubernetes files are well formed and wired the way their comments say.
package examples_test

import (
	"bytes"
	"errors"
	"io"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/orchestrator-go/orchestrator"
	"github.com/orchestrator-go/orchestrator/config"
)

// TestConfigYAMLLoads loads the annotated example and checks that it sets
// every top-level section and exercises the features it claims to show.
func TestConfigYAMLLoads(t *testing.T) {
	cfg, err := config.Load("config.yaml")
	if err != nil {
		t.Fatalf("examples/config.yaml does not load:\n%v", err)
	}

	// Every top-level section is set (non-zero after decoding).
	v := reflect.ValueOf(*cfg)
	for i := 0; i < v.NumField(); i++ {
		name := yamlName(v.Type().Field(i))
		if v.Field(i).IsZero() {
			t.Errorf("examples/config.yaml does not set the top-level section %q", name)
		}
	}

	// The features the file's comments promise.
	s := cfg.Server
	if s.ShutdownTimeout == 0 || s.ReadHeaderTimeout == 0 || s.IdleTimeout == 0 ||
		s.MaxHeaderBytes == 0 || s.MaxBodyBytes == 0 || len(s.TrustedProxies) == 0 || s.Prefix == "" {
		t.Errorf("server section is missing options: %+v", s)
	}
	if cfg.Admin.Listen == "" || cfg.Admin.Token == "" || len(cfg.Admin.AllowedOrigins) == 0 {
		t.Errorf("admin section is missing options: listen=%q token set=%v allowed_origins=%q", cfg.Admin.Listen, cfg.Admin.Token != "", cfg.Admin.AllowedOrigins)
	}
	if cfg.Registry.StateFile == "" {
		t.Error("registry.state_file is not set")
	}
	if cfg.Logging.Level == "" || cfg.Logging.Format == "" || cfg.Logging.AccessLog == nil {
		t.Errorf("logging section is missing options: %+v", cfg.Logging)
	}
	if len(cfg.CircuitBreaker.FailureStatuses) == 0 || cfg.CircuitBreaker.Disabled == nil {
		t.Errorf("circuit_breaker section is missing options: %+v", cfg.CircuitBreaker)
	}
	if cfg.HealthCheck.Enabled == nil {
		t.Error("health_check.enabled is not set")
	}

	var versioned, unversioned, disabled, preserveHost, cbOverride, hcOverride, static, fallbackEP, methods, hcPath bool
	var fractional, whole bool
	for _, ep := range cfg.Endpoints {
		versioned = versioned || ep.Version != ""
		unversioned = unversioned || ep.Version == ""
		disabled = disabled || ep.Disabled
		preserveHost = preserveHost || ep.PreserveHost
		cbOverride = cbOverride || ep.CircuitBreaker != nil
		hcOverride = hcOverride || ep.HealthCheck != nil
		methods = methods || len(ep.Methods) > 0
		hcPath = hcPath || ep.HealthCheckPath != ""
		if ep.Timeout != 0 {
			if ep.Timeout.Std()%1e9 == 0 {
				whole = true
			} else {
				fractional = true
			}
		}
		if f := ep.Fallback; f != nil {
			static = static || f.Strategy == orchestrator.FallbackStaticResponse
			fallbackEP = fallbackEP || f.Strategy == orchestrator.FallbackEndpoint
		}
	}
	for what, ok := range map[string]bool{
		"a versioned endpoint": versioned, "an unversioned endpoint": unversioned,
		"a disabled endpoint": disabled, "preserve_host": preserveHost,
		"a circuit_breaker override": cbOverride, "a health_check override": hcOverride,
		"a static_response fallback": static, "a fallback_endpoint fallback": fallbackEP,
		"methods": methods, "health_check_path": hcPath,
		"a timeout in seconds": whole, "a timeout as a Go duration": fractional,
	} {
		if !ok {
			t.Errorf("examples/config.yaml shows no %s", what)
		}
	}

	// Timeouts in both notations: the file must hold a bare number and a
	// quoted Go duration.
	raw := readFile(t, "config.yaml")
	if !regexp.MustCompile(`(?m)^\s+timeout: \d+\b`).Match(raw) || !regexp.MustCompile(`(?m)^\s+timeout: "\d+m?s"`).Match(raw) {
		t.Error("examples/config.yaml should show timeout both as seconds (timeout: 30) and as a Go duration (timeout: \"2500ms\")")
	}
}

// TestConfigYAMLDocumentsEveryOption walks the Config type and checks that
// every YAML key appears in examples/config.yaml, set or in a comment (the
// tls block is commented out so that the file loads without certificates).
// Adding a config field without documenting it here fails this test.
func TestConfigYAMLDocumentsEveryOption(t *testing.T) {
	raw := string(readFile(t, "config.yaml"))
	for _, key := range yamlKeys(reflect.TypeFor[config.Config](), "") {
		leaf := key[strings.LastIndexByte(key, '.')+1:]
		re := regexp.MustCompile(`(?m)^[\s#-]*` + regexp.QuoteMeta(leaf) + `:`)
		if !re.MatchString(raw) {
			t.Errorf("examples/config.yaml does not show the option %s", key)
		}
	}
}

// yamlKeys lists the dotted YAML keys of every field under t.
func yamlKeys(t reflect.Type, prefix string) []string {
	var out []string
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() || yamlName(f) == "-" {
			continue // "-": in-process only, such as a custom Selector
		}
		key := prefix + yamlName(f)
		out = append(out, key)
		ft := f.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		// Duration and other named scalars have no keys of their own.
		if ft.Kind() == reflect.Struct {
			out = append(out, yamlKeys(ft, key+".")...)
		}
	}
	return out
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

// k8sObject is the part of a Kubernetes object the test looks at.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		// A Deployment's selector is {matchLabels: {...}}, a Service's a
		// plain label map.
		Selector map[string]any `yaml:"selector"`
		Ports    []struct {
			Port       int `yaml:"port"`
			TargetPort any `yaml:"targetPort"`
		} `yaml:"ports"`
		Template struct {
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot *bool `yaml:"runAsNonRoot"`
					RunAsUser    int   `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				TerminationGracePeriodSeconds int            `yaml:"terminationGracePeriodSeconds"`
				Containers                    []k8sContainer `yaml:"containers"`
				Volumes                       []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sContainer struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

func TestKubernetesManifest(t *testing.T) {
	raw := readFile(t, "kubernetes/orchestratord.yaml")
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	byKind := map[string]k8sObject{}
	for {
		var obj k8sObject
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("kubernetes/orchestratord.yaml is not valid YAML: %v", err)
		}
		if obj.Kind == "" {
			continue // an empty document
		}
		if obj.APIVersion == "" || obj.Metadata.Name == "" {
			t.Errorf("%s has no apiVersion or metadata.name", obj.Kind)
		}
		if _, dup := byKind[obj.Kind]; dup {
			t.Errorf("two objects of kind %s", obj.Kind)
		}
		byKind[obj.Kind] = obj
	}
	for _, kind := range []string{"ConfigMap", "Deployment", "Service"} {
		if _, ok := byKind[kind]; !ok {
			t.Fatalf("kubernetes/orchestratord.yaml has no %s (has %v)", kind, keys(byKind))
		}
	}

	cm := byKind["ConfigMap"]
	embedded, ok := cm.Data["config.yaml"]
	if !ok {
		t.Fatalf("the ConfigMap has no config.yaml key (has %v)", keys(cm.Data))
	}
	cfg, err := config.Parse([]byte(embedded), "ConfigMap orchestratord-config config.yaml")
	if err != nil {
		t.Fatalf("the ConfigMap's config.yaml does not parse:\n%v", err)
	}
	if len(cfg.Endpoints) == 0 {
		t.Error("the ConfigMap's config.yaml has no endpoints")
	}

	dep := byKind["Deployment"]
	pod := dep.Spec.Template.Spec
	if pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.RunAsUser == 0 {
		t.Error("the pod must run as a non-root user (runAsNonRoot: true, runAsUser != 0)")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	if !slices.Equal(c.Args, []string{"--config", "/etc/orchestrator/config.yaml"}) {
		t.Errorf("container args = %q, want --config /etc/orchestrator/config.yaml", c.Args)
	}
	if c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Error("the container must have readOnlyRootFilesystem: true")
	}
	if c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
		t.Error("the container must have allowPrivilegeEscalation: false")
	}
	if len(c.Resources.Requests) == 0 || len(c.Resources.Limits) == 0 {
		t.Error("the container has no resource requests or limits")
	}
	// Readiness follows /health, which turns 503 for the drain; liveness
	// must stay 200 meanwhile (/health/live), or the kubelet would kill a
	// gateway that is finishing its requests.
	for name, want := range map[string]string{"readinessProbe": "/health", "livenessProbe": "/health/live"} {
		p := map[string]*k8sProbe{"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe}[name]
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want {
			t.Errorf("%s must be an httpGet on %s", name, want)
		}
	}
	// The kubelet sends SIGKILL after the grace period: it must cover the
	// drain, the in-flight requests' shutdown_timeout and a margin.
	settings := cfg.WithDefaults().Server
	if settings.DrainDelay == 0 {
		t.Error("the ConfigMap's config.yaml sets no server.drain_delay; without it the pod closes its listener while endpoints still route to it")
	}
	need := settings.DrainDelay.Std() + settings.ShutdownTimeout.Std() + 5*time.Second
	if grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second; grace < need {
		t.Errorf("terminationGracePeriodSeconds is %v; want at least drain_delay + shutdown_timeout + 5s = %v", grace, need)
	}
	if len(c.Ports) == 0 || c.Ports[0].ContainerPort != 8000 {
		t.Errorf("the container must expose port 8000, has %+v", c.Ports)
	}

	// The config is the ConfigMap mounted as a directory, without subPath,
	// so that the kubelet's ..data symlink swap reaches the watcher.
	configVolume := ""
	for _, v := range pod.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == cm.Metadata.Name {
			configVolume = v.Name
		}
	}
	if configVolume == "" {
		t.Fatalf("no volume of the pod is the ConfigMap %q", cm.Metadata.Name)
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		if m.SubPath != "" {
			t.Errorf("volumeMount %q uses subPath: subPath mounts never receive ConfigMap updates", m.Name)
		}
		if m.Name == configVolume {
			mounted = true
			if m.MountPath != "/etc/orchestrator" {
				t.Errorf("the config volume is mounted at %q, want /etc/orchestrator", m.MountPath)
			}
		}
	}
	if !mounted {
		t.Error("the config volume is not mounted in the container")
	}

	podLabels, _ := dep.Spec.Selector["matchLabels"].(map[string]any)
	if len(podLabels) == 0 {
		t.Fatal("the Deployment has no spec.selector.matchLabels")
	}
	svc := byKind["Service"]
	if len(svc.Spec.Ports) == 0 {
		t.Error("the Service has no ports")
	}
	if len(svc.Spec.Selector) == 0 {
		t.Fatal("the Service has no selector")
	}
	for k, v := range svc.Spec.Selector {
		if podLabels[k] != v {
			t.Errorf("the Service selects %s=%v, which the Deployment's pods do not carry", k, v)
		}
	}
}

func TestDockerCompose(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			Image string `yaml:"image"`
			Build *struct {
				Context    string `yaml:"context"`
				Dockerfile string `yaml:"dockerfile"`
			} `yaml:"build"`
			Command []string `yaml:"command"`
			Ports   []string `yaml:"ports"`
			Volumes []struct {
				Type   string `yaml:"type"`
				Source string `yaml:"source"`
				Target string `yaml:"target"`
			} `yaml:"volumes"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(readFile(t, "docker-compose.yaml"), &compose); err != nil {
		t.Fatalf("docker-compose.yaml is not valid YAML: %v", err)
	}
	gw, ok := compose.Services["gateway"]
	if !ok {
		t.Fatalf("docker-compose.yaml has no gateway service (has %v)", keys(compose.Services))
	}
	if gw.Build == nil || gw.Build.Context != ".." || gw.Build.Dockerfile != "examples/Dockerfile" {
		t.Errorf("the gateway must be built from examples/Dockerfile with the repository root as context, got %+v", gw.Build)
	}
	if _, err := os.Stat("../" + gw.Build.Dockerfile); err != nil {
		t.Error(err)
	}
	if len(gw.Command) != 2 || gw.Command[0] != "--config" {
		t.Fatalf("the gateway's command must be --config PATH, got %q", gw.Command)
	}
	// The config path in the container must be a mounted file of this
	// directory: compose-config.yaml.
	configPath := gw.Command[1]
	found := false
	for _, v := range gw.Volumes {
		if v.Type == "bind" && strings.HasPrefix(configPath, v.Target+"/") {
			host := v.Source + "/" + strings.TrimPrefix(configPath, v.Target+"/")
			if host != "./compose-config.yaml" {
				t.Errorf("the gateway reads %s, which is %s on the host; want ./compose-config.yaml", configPath, host)
			}
			found = true
		}
	}
	if !found {
		t.Errorf("no bind mount provides %s", configPath)
	}

	cfg, err := config.Load("compose-config.yaml")
	if err != nil {
		t.Fatalf("compose-config.yaml does not load:\n%v", err)
	}
	backends := 0
	for name, svc := range compose.Services {
		if name != "gateway" && svc.Image != "" {
			backends++
		}
	}
	if backends < 2 {
		t.Errorf("want at least two sample backends, got %d", backends)
	}
	// Every endpoint routes to a compose service by its name.
	for _, ep := range cfg.Endpoints {
		u, err := url.Parse(ep.URL)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := compose.Services[u.Hostname()]; !ok || u.Hostname() == "gateway" {
			t.Errorf("endpoint %s routes to %q, which is not a backend service of docker-compose.yaml", ep.EndpointID(), u.Hostname())
		}
	}
	if len(cfg.Endpoints) < 2 {
		t.Errorf("compose-config.yaml should route to both backends, has %d endpoints", len(cfg.Endpoints))
	}
}

func TestDockerfile(t *testing.T) {
	raw := string(readFile(t, "Dockerfile"))
	var stages []string
	var user, healthcheck string
	exposes8000 := false
	for _, line := range strings.Split(raw, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "FROM "):
			stages = append(stages, line)
		case strings.HasPrefix(line, "USER "):
			user = strings.TrimPrefix(line, "USER ")
		case strings.HasPrefix(line, "HEALTHCHECK "):
			healthcheck = line
		case line == "EXPOSE 8000":
			exposes8000 = true
		}
	}
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got %q", stages)
	}
	if !strings.Contains(stages[0], "golang:${GO_VERSION}") || !strings.Contains(raw, "ARG GO_VERSION=1.26") {
		t.Errorf("the build stage must be golang:1.26, got %q", stages[0])
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w -X main.version=${VERSION}"`, "./cmd/orchestratord"} {
		if !strings.Contains(raw, want) {
			t.Errorf("the Dockerfile's build lacks %s", want)
		}
	}
	if user == "" || strings.HasPrefix(user, "root") || strings.HasPrefix(user, "0") {
		t.Errorf("the final stage must run as a non-root USER, got %q", user)
	}
	if !exposes8000 {
		t.Error("the Dockerfile must EXPOSE 8000")
	}
	// The HEALTHCHECK is a line continuation; look at the instruction as a whole.
	if i := strings.Index(raw, "HEALTHCHECK "); i < 0 || !strings.Contains(raw[i:], "/health") {
		t.Errorf("the HEALTHCHECK must probe /health, got %q", healthcheck)
	}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func keys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
