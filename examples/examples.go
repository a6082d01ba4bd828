// Package examples embeds the sample policy and user directory, so that
// `portcullis local` runs from any directory, not only the repository's.
package examples

import (
	"embed"
	"fmt"
)

// Samples holds policy/*.yaml and users/users.yaml.
//
//go:embed policy/*.yaml users/users.yaml
var Samples embed.FS

// The addresses the proxy sites of nginx/ and caddy/ name: the proxy's
// listener, authz's HTTP listener and the API. The tests and the load tool
// run those sites as shipped, with only these addresses moved.
const (
	ProxyAddr     = "127.0.0.1:8000"
	AuthzHTTPAddr = "127.0.0.1:9003"
	UpstreamAddr  = "127.0.0.1:8090"
)

// NginxMain is the smallest nginx.conf around an http-block site such as
// nginx/portcullis.conf: in the foreground, one worker, errors to stderr,
// its pid and temporary files in dir, so that nginx runs unprivileged
// beside anything else.
func NginxMain(dir, site string) string {
	return fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
%[2]s
}
`, dir, site)
}
