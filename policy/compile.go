package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Policy is a compiled, immutable route policy. Matching reads it without
// locks or allocation; a reload builds a new Policy and swaps it whole.
type Policy struct {
	root   *node
	routes []*Route
	// Files are the policy files the policy was loaded from.
	Files []string
}

// node is a trie node for one path segment position.
type node struct {
	literals   map[string]*node
	param      *node
	star       *node
	doubleStar *methodTable
	// end holds the routes whose template ends at this node.
	end *methodTable
}

// methodTable maps a method index to the route that serves it.
type methodTable [len(knownMethods)]*Route

// lookup returns the route for method index mi; HEAD falls back to GET.
func (t *methodTable) lookup(mi int) *Route {
	if t == nil {
		return nil
	}
	if r := t[mi]; r != nil {
		return r
	}
	if mi == methodHEAD {
		return t[methodGET]
	}
	return nil
}

// Routes returns every route in load order.
func (p *Policy) Routes() []*Route { return p.routes }

// Compile builds a Policy from parsed routes, reporting routes that could
// match the same request with equal precedence.
func Compile(routes []*Route) (*Policy, error) {
	var ps problems
	p := compile(routes, &ps)
	if len(routes) == 0 && len(ps) == 0 {
		return nil, fmt.Errorf("the policy has no routes; every request would be denied")
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// compile builds the trie, adding conflicts and duplicate names to ps. The
// loader calls it on the valid routes even when others had problems, so one
// lint run reports every problem.
func compile(routes []*Route, ps *problems) *Policy {
	p := &Policy{root: &node{}, routes: routes}
	names := map[string]*Route{}
	for _, r := range routes {
		if prev, dup := names[r.Name]; dup {
			ps.add(r.Source, "route name %q is already used by the route at %s; names must be unique", r.Name, prev.Source)
		} else {
			names[r.Name] = r
		}
		table := p.root.insert(r.segments)
		for _, m := range r.Methods {
			mi := methodIndex(m)
			if prev := table[mi]; prev != nil {
				ps.add(r.Source, "route %s conflicts with route %s: both match %s %s with equal precedence; make one more specific or merge them",
					r.describe(), prev.describe(), m, r.Path)
				continue
			}
			table[mi] = r
		}
	}
	return p
}

func (n *node) insert(segs []segment) *methodTable {
	for _, s := range segs {
		switch s.kind {
		case segLiteral:
			if n.literals == nil {
				n.literals = map[string]*node{}
			}
			child := n.literals[s.text]
			if child == nil {
				child = &node{}
				n.literals[s.text] = child
			}
			n = child
		case segParam:
			if n.param == nil {
				n.param = &node{}
			}
			n = n.param
		case segStar:
			if n.star == nil {
				n.star = &node{}
			}
			n = n.star
		case segDoubleStar: // parseTemplate guarantees ** is last
			if n.doubleStar == nil {
				n.doubleStar = &methodTable{}
			}
			return n.doubleStar
		}
	}
	if n.end == nil {
		n.end = &methodTable{}
	}
	return n.end
}

// Load reads a policy from a file or from every *.yaml and *.yml file of a
// directory (not recursive; hidden files and editor backups are skipped) and
// compiles it. Every problem of every file is reported in one *LoadError.
func Load(path string) (*Policy, error) {
	files, err := policyFiles(path)
	if err != nil {
		return nil, err
	}
	var ps problems
	var routes []*Route
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			ps.add(Location{File: f, Line: 1, Col: 1}, "cannot read: %v", err)
			continue
		}
		routes = append(routes, parseFile(f, data, &ps)...)
	}
	p, err := compileParsed(routes, ps)
	if err != nil {
		return nil, err
	}
	p.Files = files
	return p, nil
}

// LoadBytes compiles a single policy document, named name in messages.
func LoadBytes(name string, data []byte) (*Policy, error) {
	var ps problems
	routes := parseFile(name, data, &ps)
	return compileParsed(routes, ps)
}

// compileParsed compiles the routes that parsed, adding their conflicts to
// the parse problems: a bad route elsewhere does not hide a conflict.
func compileParsed(routes []*Route, ps problems) (*Policy, error) {
	if len(ps) == 0 {
		return Compile(routes)
	}
	compile(routes, &ps)
	return nil, ps.err()
}

func policyFiles(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("policy directory %s: %w", path, err)
	}
	var files []string
	for _, e := range entries {
		if isPolicyFile(e.Name()) && !e.IsDir() {
			files = append(files, filepath.Join(path, e.Name()))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("policy directory %s has no *.yaml or *.yml files", path)
	}
	sort.Strings(files)
	return files, nil
}

func isPolicyFile(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") {
		return false
	}
	ext := filepath.Ext(name)
	return ext == ".yaml" || ext == ".yml"
}
