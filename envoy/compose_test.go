package envoy

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/internal/configfile"
	"github.com/portcullis/portcullis/revocation"
	"github.com/portcullis/portcullis/tokenissuer/server"
)

type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       any               `yaml:"build"`
		Command     []string          `yaml:"command"`
		Ports       []string          `yaml:"ports"`
		Expose      []string          `yaml:"expose"`
		Volumes     []string          `yaml:"volumes"`
		Environment map[string]string `yaml:"environment"`
		DependsOn   any               `yaml:"depends_on"`
		Profiles    []string          `yaml:"profiles"`
		Restart     string            `yaml:"restart"`
		Deploy      struct {
			Replicas int `yaml:"replicas"`
		} `yaml:"deploy"`
		Healthcheck *struct {
			Test     []string `yaml:"test"`
			Interval string   `yaml:"interval"`
			Timeout  string   `yaml:"timeout"`
			Retries  int      `yaml:"retries"`
		} `yaml:"healthcheck"`
		Networks map[string]struct {
			IPv4Address string `yaml:"ipv4_address"`
		} `yaml:"networks"`
	} `yaml:"services"`
	Networks map[string]struct {
		IPAM struct {
			Config []struct {
				Subnet string `yaml:"subnet"`
			} `yaml:"config"`
		} `yaml:"ipam"`
	} `yaml:"networks"`
	Volumes map[string]any `yaml:"volumes"`
	// Extensions are the x- keys compose ignores (anchors to share).
	Extensions map[string]any `yaml:",inline"`
}

func readCompose(t *testing.T) composeFile { return readComposeFile(t, "../docker-compose.yml") }

// readComposeFile decodes a compose file strictly. Compose's own tags
// (!override, !reset) are read as the values they carry.
func readComposeFile(t *testing.T, path string) composeFile {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var untag func(n *yaml.Node)
	untag = func(n *yaml.Node) {
		if n.Tag == "!override" || n.Tag == "!reset" {
			n.Tag = ""
		}
		for _, c := range n.Content {
			untag(c)
		}
	}
	untag(&doc)
	plain, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	dec := yaml.NewDecoder(bytes.NewReader(plain))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for k := range c.Extensions {
		if !strings.HasPrefix(k, "x-") {
			t.Errorf("%s: unknown top-level key %q", path, k)
		}
	}
	return c
}

// strictYAML decodes a config file as the binaries do: unknown keys fail.
func strictYAML(t *testing.T, path string, into any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// dockerCopies maps image paths to repository paths from the Dockerfile's
// COPY lines (build context only).
func dockerCopies(t *testing.T) (map[string]string, string) {
	t.Helper()
	raw, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	copies := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "COPY" && !strings.HasPrefix(f[1], "--") {
			copies[f[2]] = f[1]
		}
	}
	return copies, string(raw)
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestComposeEnvoyDockerfileAndConfigsAgree(t *testing.T) {
	t.Parallel()
	compose := readCompose(t)
	copies, dockerfile := dockerCopies(t)
	bs := loadConfig(t)

	// Envoy: pinned official image, mounting this config where -c points.
	envoySvc, ok := compose.Services["envoy"]
	if !ok || !regexp.MustCompile(`^envoyproxy/envoy:v\d+\.\d+\.\d+$`).MatchString(envoySvc.Image) {
		t.Fatalf("envoy service must use a pinned envoyproxy/envoy image: %q", envoySvc.Image)
	}
	cfgPath := ""
	for i, a := range envoySvc.Command {
		if a == "-c" && i+1 < len(envoySvc.Command) {
			cfgPath = envoySvc.Command[i+1]
		}
	}
	if !contains(envoySvc.Volumes, "./envoy/envoy.yaml:"+cfgPath+":ro") {
		t.Errorf("envoy mounts %v but runs -c %s", envoySvc.Volumes, cfgPath)
	}
	listenerPort := fmt.Sprint(bs.GetStaticResources().GetListeners()[0].GetAddress().GetSocketAddress().GetPortValue())
	if !containsSuffix(envoySvc.Ports, ":"+listenerPort) {
		t.Errorf("envoy listens on %s but compose publishes %v", listenerPort, envoySvc.Ports)
	}

	// Each Envoy cluster names a compose service on the port it listens on.
	authzCfg := authz.DefaultConfig()
	issuerCfg := server.DefaultConfig()
	configs := map[string]string{}
	for _, svc := range []string{"authz", "issuer"} {
		cmd := compose.Services[svc].Command
		if len(cmd) < 4 || cmd[0] != svc || cmd[1] != "serve" || cmd[2] != "--config" {
			t.Fatalf("%s command %v", svc, cmd)
		}
		src, ok := copies[cmd[3]]
		if !ok {
			t.Fatalf("%s config %s is not copied into the image", svc, cmd[3])
		}
		configs[svc] = filepath.Join("..", src)
	}
	strictYAML(t, configs["authz"], &authzCfg)
	strictYAML(t, configs["issuer"], &issuerCfg)
	if err := issuerCfg.Validate(); err != nil {
		t.Errorf("issuer compose config: %v", err)
	}
	if err := authzCfg.Validate(); err != nil {
		t.Errorf("authz compose config: %v", err)
	}
	want := map[string]string{
		"authz":    port(t, authzCfg.Listen),
		"issuer":   port(t, issuerCfg.Listen),
		"upstream": compose.Services["upstream"].Environment["HTTP_PORT"],
	}
	for _, c := range bs.GetStaticResources().GetClusters() {
		sa := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
		svc, ok := compose.Services[sa.GetAddress()]
		if !ok {
			t.Errorf("cluster %s points at %s, which is not a compose service", c.GetName(), sa.GetAddress())
			continue
		}
		p := fmt.Sprint(sa.GetPortValue())
		if want[sa.GetAddress()] != p {
			t.Errorf("cluster %s uses port %s, service %s listens on %s", c.GetName(), p, sa.GetAddress(), want[sa.GetAddress()])
		}
		if !contains(svc.Expose, p) && !containsSuffix(svc.Ports, ":"+p) {
			t.Errorf("service %s does not expose port %s", sa.GetAddress(), p)
		}
	}

	// authz trusts the issuer that compose runs, for the same audience.
	if authzCfg.Token.Issuer != issuerCfg.Issuer || authzCfg.Token.Audience != issuerCfg.Audience {
		t.Errorf("authz expects iss %q aud %q, the issuer mints %q %q", authzCfg.Token.Issuer, authzCfg.Token.Audience, issuerCfg.Issuer, issuerCfg.Audience)
	}
	if !strings.HasPrefix(issuerCfg.Issuer, "http://issuer:"+port(t, issuerCfg.Listen)) {
		t.Errorf("issuer URL %s is not reachable at the issuer service", issuerCfg.Issuer)
	}
	// The policy and users authz reads are in the image.
	if src := copies[authzCfg.Policy]; src != "examples/policy" {
		t.Errorf("authz policy %s is not the sample policy copied into the image", authzCfg.Policy)
	}
	if src := copies[filepath.Dir(authzCfg.Users.File)]; filepath.Join("..", src, filepath.Base(authzCfg.Users.File)) != "../examples/users/users.yaml" {
		t.Errorf("authz users file %s is not copied into the image", authzCfg.Users.File)
	}
	// The issuer's state is on the named volume.
	if !contains(compose.Services["issuer"].Volumes, "issuer-data:"+filepath.Dir(issuerCfg.Store.SQLitePath)) {
		t.Errorf("issuer store %s is not on a volume: %v", issuerCfg.Store.SQLitePath, compose.Services["issuer"].Volumes)
	}
	// Multi-stage, static, non-root.
	if strings.Count(dockerfile, "\nFROM ") < 1 || !strings.Contains(dockerfile, "AS build") || !strings.Contains(dockerfile, "CGO_ENABLED=0") {
		t.Error("Dockerfile must be a multi-stage static build")
	}
	if !regexp.MustCompile(`(?m)^USER (65532|nonroot)`).MatchString(dockerfile) {
		t.Error("Dockerfile must run as a non-root user")
	}
	for dst, src := range copies {
		if strings.HasPrefix(src, "/") || src == "." || strings.HasSuffix(src, ".") {
			continue
		}
		if _, err := os.Stat(filepath.Join("..", src)); err != nil {
			t.Errorf("Dockerfile copies %s to %s, but it does not exist", src, dst)
		}
	}
}

// TestComposePublishesOnlyEnvoy: nothing can be reached around Envoy. Only
// its listener is published, its admin stays on loopback, and the issuer
// believes X-Forwarded-For from Envoy's fixed address only, so a client can
// neither choose its address for the failure limit nor lock out another's.
func TestComposePublishesOnlyEnvoyAndTheLoopbackPortal(t *testing.T) {
	t.Parallel()
	compose := readCompose(t)
	bs := loadConfig(t)
	listenerPort := fmt.Sprint(bs.GetStaticResources().GetListeners()[0].GetAddress().GetSocketAddress().GetPortValue())
	for name, svc := range compose.Services {
		switch {
		case name == "envoy":
			if len(svc.Ports) != 1 || !strings.HasSuffix(svc.Ports[0], ":"+listenerPort) {
				t.Errorf("envoy publishes %v; only its listener (%s) may be", svc.Ports, listenerPort)
			}
		case name == "issuer":
			// The admin API and portal, for the person at this machine.
			icfg := server.DefaultConfig()
			strictYAML(t, "../examples/compose/issuer.yaml", &icfg)
			_, adminPort, _ := net.SplitHostPort(icfg.AdminListen)
			if len(svc.Ports) != 1 || svc.Ports[0] != "127.0.0.1:"+adminPort+":"+adminPort || !strings.HasPrefix(icfg.PortalURL(), "http://127.0.0.1:"+adminPort+"/") {
				t.Errorf("the issuer publishes %v, its admin listener is %s and its portal %s; only the admin listener, on the host's loopback, may be published",
					svc.Ports, icfg.AdminListen, icfg.PortalURL())
			}
		case len(svc.Ports) > 0:
			t.Errorf("service %s publishes %v: it must be reached through Envoy only", name, svc.Ports)
		}
	}
	if addr := bs.GetAdmin().GetAddress().GetSocketAddress().GetAddress(); addr != "127.0.0.1" {
		t.Errorf("Envoy admin on %s", addr)
	}

	envoyIP, err := netip.ParseAddr(compose.Services["envoy"].Networks["default"].IPv4Address)
	if err != nil {
		t.Fatalf("envoy needs a fixed address on the default network: %v", err)
	}
	subnets := compose.Networks["default"].IPAM.Config
	if len(subnets) != 1 {
		t.Fatalf("the default network needs one fixed subnet, got %v", subnets)
	}
	if subnet, err := netip.ParsePrefix(subnets[0].Subnet); err != nil || !subnet.Contains(envoyIP) {
		t.Fatalf("envoy's %s is not in the network's subnet %s", envoyIP, subnets[0].Subnet)
	}
	copies, _ := dockerCopies(t)
	issuerCfg := server.DefaultConfig()
	strictYAML(t, filepath.Join("..", copies[compose.Services["issuer"].Command[3]]), &issuerCfg)
	if len(issuerCfg.RateLimit.TrustedProxies) != 1 || issuerCfg.RateLimit.TrustedProxies[0] != envoyIP.String() {
		t.Errorf("the issuer trusts X-Forwarded-For from %v; only Envoy (%s) may be trusted", issuerCfg.RateLimit.TrustedProxies, envoyIP)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func containsSuffix(list []string, suffix string) bool {
	for _, x := range list {
		if strings.HasSuffix(strings.Trim(x, `"`), suffix) {
			return true
		}
	}
	return false
}

// TestComposeFollowsTheRevocationFeed: revocation is on as shipped, and the
// secret authz reads is the one the feed-client service writes, into a
// volume both mount, before authz starts.
func TestComposeFollowsTheRevocationFeed(t *testing.T) {
	t.Parallel()
	compose := readCompose(t)
	cfg := authz.DefaultConfig()
	strictYAML(t, "../examples/compose/authz.yaml", &cfg)
	if !cfg.Revocation.Enabled || cfg.Revocation.ClientID == "" || cfg.Revocation.ClientSecretFile == "" {
		t.Fatalf("compose's authz does not follow the feed: %+v", cfg.Revocation)
	}
	setup, ok := compose.Services["feed-client"]
	if !ok {
		t.Fatal("no feed-client service creates authz's client")
	}
	cmd := strings.Join(setup.Command, " ")
	for _, want := range []string{"clients create", "--id " + cfg.Revocation.ClientID, "--scopes " + revocation.ReadScope,
		"--secret-file " + cfg.Revocation.ClientSecretFile, "--exists-ok"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("feed-client runs %q, without %q", cmd, want)
		}
	}
	dir := filepath.Dir(cfg.Revocation.ClientSecretFile)
	for _, svc := range []string{"feed-client", "authz"} {
		mounted := false
		for _, v := range compose.Services[svc].Volumes {
			if parts := strings.Split(v, ":"); len(parts) >= 2 && parts[0] == "feed-secret" && parts[1] == dir {
				mounted = true
			}
		}
		if !mounted {
			t.Errorf("%s does not mount the volume at %s", svc, dir)
		}
	}
	if !strings.Contains(fmt.Sprint(compose.Services["authz"].DependsOn), "feed-client:map[condition:service_completed_successfully]") {
		t.Errorf("authz does not wait for feed-client: %v", compose.Services["authz"].DependsOn)
	}
	for _, p := range []string{"../examples/authz.yaml"} {
		c := authz.DefaultConfig()
		strictYAML(t, p, &c)
		if !c.Revocation.Enabled {
			t.Errorf("%s ships with revocation off", p)
		}
	}
}

// TestComposeReplicasArePostgresBehindEnvoy: docker-compose.postgres.yml
// runs the issuer twice on one PostgreSQL, behind the Envoy of
// docker-compose.yml: the replicas are the service Envoy's issuer cluster
// resolves, they start once PostgreSQL answers (a healthcheck and depends_on
// service_healthy) and restart if they still lose the race, the feed client
// is made where they read it, and their settings are real ones.
func TestComposeReplicasArePostgresBehindEnvoy(t *testing.T) {
	base := readCompose(t)
	c := readComposeFile(t, "../docker-compose.postgres.yml")
	pg := c.Services["postgres"]
	if pg.Healthcheck == nil || len(pg.Healthcheck.Test) < 2 || pg.Healthcheck.Test[1] != "pg_isready" {
		t.Fatalf("postgres has no pg_isready healthcheck: %+v", pg.Healthcheck)
	}
	for name := range c.Services {
		if _, ok := base.Services[name]; !ok && name != "postgres" {
			t.Errorf("service %s is not in docker-compose.yml: the override file adds only postgres", name)
		}
	}
	issuer := c.Services["issuer"]
	if issuer.Deploy.Replicas < 2 {
		t.Errorf("issuer replicas: %d", issuer.Deploy.Replicas)
	}
	if len(issuer.Ports) != 1 || !strings.HasPrefix(issuer.Ports[0], "127.0.0.1:") || !strings.Contains(issuer.Ports[0], "-") {
		t.Errorf("issuer ports %v: one loopback port per replica", issuer.Ports)
	}
	deps, _ := issuer.DependsOn.(map[string]any)
	cond, _ := deps["postgres"].(map[string]any)
	if cond["condition"] != "service_healthy" || issuer.Restart == "" {
		t.Errorf("issuer: depends_on %v, restart %q; want postgres service_healthy and a restart policy", issuer.DependsOn, issuer.Restart)
	}
	known := map[string]bool{}
	defaults := server.DefaultConfig()
	for _, v := range configfile.EnvVars("PORTCULLIS_ISSUER", &defaults) {
		known[v.Name] = true
	}
	for _, name := range []string{"issuer", "feed-client"} {
		env := c.Services[name].Environment
		if env["PORTCULLIS_ISSUER_STORE_DRIVER"] != "postgres" || !strings.Contains(env["PORTCULLIS_ISSUER_STORE_POSTGRES_DSN"], "@postgres:5432/") {
			t.Errorf("%s does not use the postgres service: %v", name, env)
		}
		for k := range env {
			if !known[k] {
				t.Errorf("%s: %s is not an issuer setting", name, k)
			}
		}
	}
	// Envoy reaches the issuer by the service's name, which Docker resolves
	// to every replica.
	var bootstrap struct {
		StaticResources struct {
			Clusters []struct {
				Name           string `yaml:"name"`
				Type           string `yaml:"type"`
				LoadAssignment struct {
					Endpoints []struct {
						LbEndpoints []struct {
							Endpoint struct {
								Address struct {
									SocketAddress struct {
										Address string `yaml:"address"`
									} `yaml:"socket_address"`
								} `yaml:"address"`
							} `yaml:"endpoint"`
						} `yaml:"lb_endpoints"`
					} `yaml:"endpoints"`
				} `yaml:"load_assignment"`
			} `yaml:"clusters"`
		} `yaml:"static_resources"`
	}
	raw, err := os.ReadFile("envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &bootstrap); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, cl := range bootstrap.StaticResources.Clusters {
		if cl.Name == "issuer" {
			found = cl.Type == "STRICT_DNS" && len(cl.LoadAssignment.Endpoints) == 1 &&
				cl.LoadAssignment.Endpoints[0].LbEndpoints[0].Endpoint.Address.SocketAddress.Address == "issuer"
		}
	}
	if !found {
		t.Error("envoy.yaml's issuer cluster does not resolve the issuer service by name (STRICT_DNS): replicas would not be behind Envoy")
	}
}
