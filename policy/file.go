package policy

import (
	"github.com/portcullis/portcullis/internal/yamlsyntax"

	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The keys a policy file may use.
var (
	topLevelKeys = []string{"version", "routes"}
	routeKeys    = []string{"name", "methods", "path", "scopes", "user", "public"}
)

var (
	scopePattern     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9:._/\-]*$`)
	routeNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/\-]*$`)
)

// parseFile parses one policy file strictly, adding every problem to ps.
func parseFile(name string, data []byte, ps *problems) []*Route {
	at := func(n *yaml.Node) Location { return Location{File: name, Line: n.Line, Col: n.Column} }
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			ps.add(Location{File: name, Line: 1, Col: 1}, "the file is empty; write `version: 1` and a list of `routes:`")
			return nil
		}
		hint := ""
		if bytes.Contains(data, []byte("{")) {
			// The usual cause: a {param} path inside a { } flow mapping.
			hint = "; if a path holds {parameters}, quote it: path: \"/v1/accounts/{accountId}\""
		}
		loc, msg := Location{File: name, Line: 1, Col: 1}, strings.TrimPrefix(err.Error(), "yaml: ")
		if serr := yamlsyntax.Check(data); serr != nil {
			loc.Line, msg = serr.Line, serr.Message
		}
		ps.add(loc, "not valid YAML: %s%s", msg, hint)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		ps.add(at(&extra), "a policy file holds one YAML document; move this one to its own file")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		ps.add(at(root), "a policy file is a mapping with `version: 1` and `routes:`")
		return nil
	}
	fields := mappingFields(root, topLevelKeys, "top level", at, ps)
	if v, ok := fields["version"]; !ok {
		ps.add(at(root), "missing `version: 1` at the top of the file")
	} else if v.Kind != yaml.ScalarNode || v.Value != "1" {
		ps.add(at(v), "unsupported version %q; this release reads `version: 1`", v.Value)
	}
	routesNode, ok := fields["routes"]
	if !ok {
		ps.add(at(root), "missing `routes:` (a list of routes)")
		return nil
	}
	if routesNode.Kind != yaml.SequenceNode {
		ps.add(at(routesNode), "`routes` must be a list; start each route with `- `")
		return nil
	}
	var routes []*Route
	for _, item := range routesNode.Content {
		if r := parseRoute(item, at, ps); r != nil {
			routes = append(routes, r)
		}
	}
	return routes
}

// mappingFields returns the values of a mapping by key, reporting unknown and
// repeated keys.
func mappingFields(m *yaml.Node, allowed []string, where string, at func(*yaml.Node) Location, ps *problems) map[string]*yaml.Node {
	fields := make(map[string]*yaml.Node, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if !contains(allowed, k.Value) {
			ps.add(at(k), "unknown key %q in %s%s; allowed keys are %s", k.Value, where, suggest(k.Value, allowed), strings.Join(allowed, ", "))
			continue
		}
		if _, dup := fields[k.Value]; dup {
			ps.add(at(k), "key %q appears twice in %s; keep one", k.Value, where)
			continue
		}
		fields[k.Value] = v
	}
	return fields
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func parseRoute(n *yaml.Node, at func(*yaml.Node) Location, ps *problems) *Route {
	if n.Kind != yaml.MappingNode {
		ps.add(at(n), "a route is a mapping with methods, path and scopes (or public: true)")
		return nil
	}
	before := len(*ps)
	r := &Route{Source: at(n), User: UserOptional}
	fields := mappingFields(n, routeKeys, "a route", at, ps)

	if v, ok := fields["name"]; ok {
		if v.Kind != yaml.ScalarNode || !routeNamePattern.MatchString(v.Value) {
			ps.add(at(v), "route name %q: use letters, digits and . _ : / -", v.Value)
		} else {
			r.Name = v.Value
		}
	}

	if v, ok := fields["methods"]; !ok {
		ps.add(at(n), "route has no `methods`; list them, for example methods: [GET, POST]")
	} else if items, ok := stringList(v, "methods", at, ps); ok {
		if len(items) == 0 {
			ps.add(at(v), "`methods` is empty; list at least one method")
		}
		seen := map[string]bool{}
		for _, item := range items {
			m := item.Value
			switch {
			case methodIndex(m) < 0 && methodIndex(strings.ToUpper(m)) >= 0:
				ps.add(at(item), "method %q must be upper-case: %s", m, strings.ToUpper(m))
			case methodIndex(m) < 0:
				ps.add(at(item), "unknown method %q; use one of %s", m, strings.Join(knownMethods[:], ", "))
			case seen[m]:
				ps.add(at(item), "method %s is listed twice", m)
			default:
				seen[m] = true
				r.Methods = append(r.Methods, m)
			}
		}
	}

	if v, ok := fields["path"]; !ok {
		ps.add(at(n), "route has no `path`; write a template such as /v1/accounts/{accountId}")
	} else if v.Kind != yaml.ScalarNode {
		ps.add(at(v), "`path` must be a string such as /v1/accounts/{accountId}")
	} else if segs, err := parseTemplate(v.Value); err != nil {
		ps.add(at(v), "%s", err)
	} else {
		r.Path, r.segments = v.Value, segs
	}

	if v, ok := fields["public"]; ok {
		if v.Kind != yaml.ScalarNode || (v.Value != "true" && v.Value != "false") {
			ps.add(at(v), "`public` must be true or false")
		} else {
			r.Public = v.Value == "true"
		}
	}

	if v, ok := fields["scopes"]; ok {
		if items, ok := stringList(v, "scopes", at, ps); ok {
			if r.Public && len(items) > 0 {
				ps.add(at(v), "a public route takes no token, so it cannot require scopes; remove `scopes` or `public: true`")
			}
			seen := map[string]bool{}
			for _, item := range items {
				switch {
				case strings.Contains(item.Value, " "):
					ps.add(at(item), "scope %q contains a space; list each scope as its own item", item.Value)
				case !scopePattern.MatchString(item.Value):
					ps.add(at(item), "malformed scope %q; a scope is letters, digits and : . _ / - (for example accounts:read)", item.Value)
				case seen[item.Value]:
					ps.add(at(item), "scope %q is listed twice", item.Value)
				default:
					seen[item.Value] = true
					r.Scopes = append(r.Scopes, item.Value)
				}
			}
		}
	}

	if v, ok := fields["user"]; ok {
		rule := UserRule(v.Value)
		switch {
		case v.Kind != yaml.ScalarNode || (rule != UserRequired && rule != UserOptional && rule != UserForbidden):
			ps.add(at(v), "`user` must be required, optional or forbidden%s", suggest(v.Value, []string{"required", "optional", "forbidden"}))
		case r.Public:
			ps.add(at(v), "a public route has no token and so no user context; remove `user`")
		default:
			r.User = rule
		}
	}

	if len(*ps) > before {
		return nil
	}
	r.finish()
	return r
}

// stringList reads a YAML sequence of scalars (or a single scalar, reported
// as an error with a hint).
func stringList(v *yaml.Node, key string, at func(*yaml.Node) Location, ps *problems) ([]*yaml.Node, bool) {
	if v.Kind == yaml.ScalarNode {
		ps.add(at(v), "`%s` must be a list, for example %s: [%s]", key, key, v.Value)
		return nil, false
	}
	if v.Kind != yaml.SequenceNode {
		ps.add(at(v), "`%s` must be a list of strings", key)
		return nil, false
	}
	for _, item := range v.Content {
		if item.Kind != yaml.ScalarNode {
			ps.add(at(item), "`%s` items must be strings", key)
			return nil, false
		}
	}
	return v.Content, true
}

// describe is used in messages that name a route.
func (r *Route) describe() string {
	return fmt.Sprintf("%q (%s %s) at %s", r.Name, strings.Join(r.Methods, ","), r.Path, r.Source)
}
