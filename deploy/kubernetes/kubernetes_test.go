package kubernetes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	securityv1beta1 "istio.io/api/security/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/envoy"
	"github.com/portcullis/portcullis/tokenissuer/server"
)

// authorizationPolicy is Istio's CRD around its spec, which is a protobuf
// message decoded with protojson (strict: unknown fields are errors).
type authorizationPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              json.RawMessage `json:"spec"`
}

// manifest is one YAML document of one file.
type manifest struct {
	where string
	kind  string
	obj   any
}

// newObject returns the API type for an apiVersion and kind: a manifest of
// any other kind fails the test, so none goes unchecked.
func newObject(apiVersion, kind string) (any, bool) {
	switch apiVersion + " " + kind {
	case "v1 Namespace":
		return &corev1.Namespace{}, true
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, true
	case "v1 Secret":
		return &corev1.Secret{}, true
	case "v1 Service":
		return &corev1.Service{}, true
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}, true
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, true
	case "apps/v1 DaemonSet":
		return &appsv1.DaemonSet{}, true
	case "networking.k8s.io/v1 NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, true
	case "security.istio.io/v1 AuthorizationPolicy":
		return &authorizationPolicy{}, true
	}
	return nil, false
}

var documentSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// strictDecode converts YAML to JSON (duplicate keys are errors) and
// decodes it refusing unknown fields.
func strictDecode(raw []byte, into any) error {
	js, err := sigsyaml.YAMLToJSONStrict(raw)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	return dec.Decode(into)
}

func loadManifests(t *testing.T) []manifest {
	t.Helper()
	var out []manifest
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, doc := range documentSeparator.Split(string(raw), -1) {
			where := fmt.Sprintf("%s, document %d", path, i+1)
			var meta metav1.TypeMeta
			if err := sigsyaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			obj, ok := newObject(meta.APIVersion, meta.Kind)
			if !ok {
				t.Errorf("%s: %s %q is not a kind this test knows how to check", where, meta.APIVersion, meta.Kind)
				continue
			}
			if err := strictDecode([]byte(doc), obj); err != nil {
				t.Errorf("%s (%s): %v", where, meta.Kind, err)
				continue
			}
			out = append(out, manifest{where: where, kind: meta.Kind, obj: obj})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 12 {
		t.Fatalf("found only %d manifests", len(out))
	}
	return out
}

func TestManifestsDecodeStrictly(t *testing.T) {
	t.Parallel()
	loadManifests(t)
	// The check itself refuses a misspelt field.
	var d appsv1.Deployment
	if err := strictDecode([]byte("apiVersion: apps/v1\nkind: Deployment\nspec:\n  replica: 2\n"), &d); err == nil {
		t.Fatal("a misspelt field (replica) was accepted")
	}
}

// pod is a workload's pod template, with where it came from.
type pod struct {
	where string
	spec  corev1.PodSpec
	meta  metav1.ObjectMeta
}

func workloads(all []manifest) []pod {
	var out []pod
	for _, m := range all {
		switch o := m.obj.(type) {
		case *appsv1.Deployment:
			out = append(out, pod{m.where, o.Spec.Template.Spec, o.Spec.Template.ObjectMeta})
		case *appsv1.DaemonSet:
			out = append(out, pod{m.where, o.Spec.Template.Spec, o.Spec.Template.ObjectMeta})
		}
	}
	return out
}

func TestContainersRunLockedDown(t *testing.T) {
	t.Parallel()
	pods := workloads(loadManifests(t))
	if len(pods) < 3 {
		t.Fatalf("found %d workloads, want the issuer, the sidecar pod and the per-node authz", len(pods))
	}
	for _, p := range pods {
		sc := p.spec.SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: the pod must run as non-root with the RuntimeDefault seccomp profile", p.where)
		}
		if p.spec.AutomountServiceAccountToken == nil || *p.spec.AutomountServiceAccountToken {
			t.Errorf("%s: no container here talks to the Kubernetes API: automountServiceAccountToken: false", p.where)
		}
		for _, c := range p.spec.Containers {
			where := p.where + ", container " + c.Name
			cs := c.SecurityContext
			if cs == nil || cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation ||
				cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem ||
				cs.Capabilities == nil || !slices.Equal(cs.Capabilities.Drop, []corev1.Capability{"ALL"}) {
				t.Errorf("%s: must not escalate privileges, must have a read-only root file system and drop all capabilities", where)
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("%s: needs CPU and memory requests and a memory limit", where)
			}
			if c.ReadinessProbe == nil || c.LivenessProbe == nil {
				t.Errorf("%s: needs readiness and liveness probes", where)
			}
			for _, probe := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
				if probe == nil {
					continue
				}
				var port string
				switch {
				case probe.HTTPGet != nil:
					port = probe.HTTPGet.Port.String()
				case probe.TCPSocket != nil:
					port = probe.TCPSocket.Port.String()
				case probe.GRPC != nil:
					port = fmt.Sprint(probe.GRPC.Port)
				}
				if !hasPort(c, port) {
					t.Errorf("%s: a probe checks port %s, which the container does not declare", where, port)
				}
			}
		}
	}
}

func hasPort(c corev1.Container, port string) bool {
	for _, p := range c.Ports {
		if p.Name == port || fmt.Sprint(p.ContainerPort) == port {
			return true
		}
	}
	return false
}

// TestReferencesResolve: every ConfigMap, Secret and Service selector a
// manifest names exists here, or is one the comments say how to create.
func TestReferencesResolve(t *testing.T) {
	t.Parallel()
	all := loadManifests(t)
	defined := map[string]bool{}
	for _, m := range all {
		switch o := m.obj.(type) {
		case *corev1.ConfigMap:
			defined["configmap/"+o.Namespace+"/"+o.Name] = true
		case *corev1.Secret:
			defined["secret/"+o.Namespace+"/"+o.Name] = true
		}
	}
	comments := allText(t)
	pods := workloads(all)
	for _, p := range pods {
		ns := "portcullis"
		for _, v := range p.spec.Volumes {
			if v.ConfigMap != nil && !defined["configmap/"+ns+"/"+v.ConfigMap.Name] &&
				!strings.Contains(comments, "create configmap "+v.ConfigMap.Name+" ") {
				t.Errorf("%s: ConfigMap %s is neither defined here nor explained", p.where, v.ConfigMap.Name)
			}
		}
		for _, c := range p.spec.Containers {
			for _, e := range c.Env {
				if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil && !defined["secret/"+ns+"/"+r.SecretKeyRef.Name] &&
					!strings.Contains(comments, "create secret generic "+r.SecretKeyRef.Name+" ") {
					t.Errorf("%s: Secret %s is neither defined here nor explained", p.where, r.SecretKeyRef.Name)
				}
			}
		}
	}
	for _, m := range all {
		svc, ok := m.obj.(*corev1.Service)
		if !ok {
			continue
		}
		selector := labels.SelectorFromSet(svc.Spec.Selector)
		var matched []pod
		for _, p := range pods {
			if selector.Matches(labels.Set(p.meta.Labels)) {
				matched = append(matched, p)
			}
		}
		if len(matched) != 1 {
			t.Errorf("%s: Service %s selects %d workloads, want 1", m.where, svc.Name, len(matched))
			continue
		}
		for _, port := range svc.Spec.Ports {
			found := false
			for _, c := range matched[0].spec.Containers {
				found = found || hasPort(c, port.TargetPort.String())
			}
			if !found {
				t.Errorf("%s: Service %s sends port %s to a port no container declares", m.where, svc.Name, port.TargetPort.String())
			}
		}
	}
}

func allText(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		raw, err := os.ReadFile(path)
		b.Write(raw)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func configMap(t *testing.T, all []manifest, name string) *corev1.ConfigMap {
	t.Helper()
	for _, m := range all {
		if cm, ok := m.obj.(*corev1.ConfigMap); ok && cm.Name == name {
			return cm
		}
	}
	t.Fatalf("no ConfigMap %s", name)
	return nil
}

// strictYAML decodes a configuration file as the binaries do: unknown
// settings are errors.
func strictYAML(t *testing.T, where, raw string, into any) {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(into); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
}

func TestConfigurationsAreAccepted(t *testing.T) {
	t.Parallel()
	all := loadManifests(t)
	for _, name := range []string{"portcullis-authz-sidecar", "portcullis-authz"} {
		cfg := authz.DefaultConfig()
		strictYAML(t, name, configMap(t, all, name).Data["authz.yaml"], &cfg)
		if !cfg.Revocation.Enabled {
			t.Errorf("%s: revocation is off: a revoked token would keep working", name)
		}
		// The feed client's secret comes from a Secret, through the
		// environment, in every workload that mounts this configuration.
		for _, p := range workloads(all) {
			for _, v := range p.spec.Volumes {
				if v.ConfigMap == nil || v.ConfigMap.Name != name {
					continue
				}
				for _, c := range p.spec.Containers {
					for _, e := range c.Env {
						if e.Name == "PORTCULLIS_AUTHZ_REVOCATION_CLIENT_SECRET" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
							cfg.Revocation.ClientSecret = "from the Secret " + e.ValueFrom.SecretKeyRef.Name
						}
					}
				}
			}
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: authz refuses its configuration: %v", name, err)
		}
		if !strings.HasPrefix(cfg.Token.JWKSURL, "http://portcullis-issuer.portcullis.svc.cluster.local:8080/") {
			t.Errorf("%s: authz fetches keys from %s, not the issuer's Service", name, cfg.Token.JWKSURL)
		}
	}
	issuer := server.DefaultConfig()
	strictYAML(t, "portcullis-issuer", configMap(t, all, "portcullis-issuer").Data["issuer.yaml"], &issuer)
	// What the Secret provides through the environment.
	issuer.Store.PostgresDSN = "postgres://portcullis@postgres:5432/portcullis"
	issuer.Store.SecretHashKey = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="
	issuer.Keys.EncryptionKey = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="
	if err := issuer.Validate(); err != nil {
		t.Errorf("the issuer refuses its configuration: %v", err)
	}
	if issuer.Store.Driver != "postgres" {
		t.Errorf("the issuer's replicas must share PostgreSQL, not %s", issuer.Store.Driver)
	}
	sidecar := authz.DefaultConfig()
	strictYAML(t, "sidecar", configMap(t, all, "portcullis-authz-sidecar").Data["authz.yaml"], &sidecar)
	if sidecar.Token.Issuer != issuer.Issuer || sidecar.Token.Audience != issuer.Audience {
		t.Errorf("authz trusts %s for %s, the issuer signs as %s for %s", sidecar.Token.Issuer, sidecar.Token.Audience, issuer.Issuer, issuer.Audience)
	}
}

// TestSidecarEnvoyIsTheCheckedEnvoy: the sidecar pod's Envoy configuration
// is envoy/envoy.yaml (validated and tested there) but for its clusters'
// addresses.
func TestSidecarEnvoyIsTheCheckedEnvoy(t *testing.T) {
	t.Parallel()
	all := loadManifests(t)
	got, err := envoy.ParseBootstrap([]byte(configMap(t, all, "portcullis-envoy").Data["envoy.yaml"]))
	if err != nil {
		t.Fatalf("the sidecar's Envoy configuration: %v", err)
	}
	want, err := envoy.LoadBootstrap("../../envoy/envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	addresses := map[string]string{"authz": "127.0.0.1:9001", "upstream": "127.0.0.1:8081", "issuer": "portcullis-issuer.portcullis.svc.cluster.local:8080"}
	for _, bs := range []*bootstrapv3.Bootstrap{got, want} {
		for _, c := range bs.GetStaticResources().GetClusters() {
			sa := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
			if bs == got {
				if at := fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()); at != addresses[c.GetName()] {
					t.Errorf("cluster %s points at %s, want %s", c.GetName(), at, addresses[c.GetName()])
				}
			}
			sa.Address, sa.PortSpecifier = "", nil
		}
	}
	if !proto.Equal(got, want) {
		t.Error("the sidecar's Envoy configuration differs from envoy/envoy.yaml in more than its clusters' addresses")
	}
	var pod pod
	for _, p := range workloads(all) {
		if p.meta.Labels["app.kubernetes.io/name"] == "api" {
			pod = p
		}
	}
	for _, c := range pod.spec.Containers {
		if c.Name == "envoy" && c.Image != composeEnvoyImage(t) {
			t.Errorf("the sidecar pod runs %s, docker-compose.yml (and the tests) %s", c.Image, composeEnvoyImage(t))
		}
	}
}

func composeEnvoyImage(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`image: (envoyproxy/envoy:\S+)`).FindSubmatch(raw)
	if m == nil {
		t.Fatal("no Envoy image in docker-compose.yml")
	}
	return string(m[1])
}

// TestIstioExample: the mesh configuration's extension provider and the
// AuthorizationPolicy decode strictly into Istio's API types, fail closed,
// and name authz's Service and the workload they guard.
func TestIstioExample(t *testing.T) {
	t.Parallel()
	all := loadManifests(t)
	strict := protojson.UnmarshalOptions{}
	var mesh meshv1alpha1.MeshConfig
	js, err := sigsyaml.YAMLToJSONStrict([]byte(configMap(t, all, "istio").Data["mesh"]))
	if err != nil {
		t.Fatal(err)
	}
	if err := strict.Unmarshal(js, &mesh); err != nil {
		t.Fatalf("istio/mesh-config.yaml: %v", err)
	}
	var provider *meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationGrpcProvider
	for _, p := range mesh.GetExtensionProviders() {
		if p.GetName() == "portcullis" {
			provider = p.GetEnvoyExtAuthzGrpc()
		}
	}
	if provider == nil {
		t.Fatal("no envoyExtAuthzGrpc extension provider named portcullis")
	}
	if provider.GetFailOpen() || provider.GetStatusOnError() != "503" || provider.GetService() != "portcullis-authz.portcullis.svc.cluster.local" || provider.GetPort() != 9001 {
		t.Errorf("the provider must fail closed with 503 and ask portcullis-authz on 9001: %v", provider)
	}
	var policies int
	for _, m := range all {
		ap, ok := m.obj.(*authorizationPolicy)
		if !ok {
			continue
		}
		policies++
		var spec securityv1beta1.AuthorizationPolicy
		if err := strict.Unmarshal(ap.Spec, &spec); err != nil {
			t.Fatalf("%s: %v", m.where, err)
		}
		if spec.GetAction() != securityv1beta1.AuthorizationPolicy_CUSTOM || spec.GetProvider().GetName() != "portcullis" {
			t.Errorf("%s: action %s, provider %q; want CUSTOM and portcullis", m.where, spec.GetAction(), spec.GetProvider().GetName())
		}
		if spec.GetSelector().GetMatchLabels()["app.kubernetes.io/name"] != "api" {
			t.Errorf("%s: guards %v, not the api workload", m.where, spec.GetSelector().GetMatchLabels())
		}
	}
	if policies != 1 {
		t.Errorf("found %d AuthorizationPolicies, want 1", policies)
	}
	// protojson is strict: a misspelt field is an error.
	if err := strict.Unmarshal([]byte(`{"extensionProviders":[{"name":"x","envoyExtAuthzGrpc":{"failopen":false}}]}`), &meshv1alpha1.MeshConfig{}); err == nil {
		t.Fatal("a misspelt provider field was accepted")
	}
}

// TestNothingReachesTheAPIAroundEnvoy: in the sidecar pod, only Envoy's
// listener and authz's admin port admit traffic from outside the pod.
func TestNothingReachesTheAPIAroundEnvoy(t *testing.T) {
	t.Parallel()
	all := loadManifests(t)
	var api pod
	for _, p := range workloads(all) {
		if p.meta.Labels["app.kubernetes.io/name"] == "api" {
			api = p
		}
	}
	var policy *networkingv1.NetworkPolicy
	for _, m := range all {
		if np, ok := m.obj.(*networkingv1.NetworkPolicy); ok {
			sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
			if err == nil && sel.Matches(labels.Set(api.meta.Labels)) {
				policy = np
			}
		}
	}
	if policy == nil || !slices.Contains(policy.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		t.Fatal("no ingress NetworkPolicy selects the sidecar pod")
	}
	var admitted []string
	for _, rule := range policy.Spec.Ingress {
		if len(rule.Ports) == 0 {
			t.Fatal("an ingress rule admits every port")
		}
		for _, p := range rule.Ports {
			admitted = append(admitted, p.Port.String())
		}
	}
	slices.Sort(admitted)
	if !slices.Equal(admitted, []string{"admin", "http"}) {
		t.Errorf("the sidecar pod admits ports %v, want Envoy's (http) and authz's admin only", admitted)
	}
}
