package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/portcullis/portcullis/authz/policycases"
	"github.com/portcullis/portcullis/cmd/internal/cli"
	"github.com/portcullis/portcullis/policy"
)

// structured reports whether c was asked for -o json or -o yaml. The policy
// tools print for people unless asked: their text is what CI logs show.
func structured(c *cobra.Command) bool {
	f := c.Flag("output")
	return f != nil && (f.Value.String() == "json" || f.Value.String() == "yaml")
}

// printData prints v as -o asks (json or yaml), and as JSON for the older
// --json flag.
func printData(c *cobra.Command, v any) error {
	if !structured(c) {
		if err := c.Flags().Set("output", "json"); err != nil {
			return err
		}
	}
	return cli.Print(c, v)
}

// routeView is a route as the policy tools print it.
type routeView struct {
	Name    string          `json:"name"`
	Methods []string        `json:"methods"`
	Path    string          `json:"path"`
	Scopes  []string        `json:"scopes"`
	User    string          `json:"user,omitempty"`
	Public  bool            `json:"public"`
	Source  policy.Location `json:"source"`
}

func viewRoute(r *policy.Route) *routeView {
	if r == nil {
		return nil
	}
	scopes := r.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return &routeView{Name: r.Name, Methods: r.Methods, Path: r.Path, Scopes: scopes, User: string(r.User), Public: r.Public, Source: r.Source}
}

// lintView is `policy lint`'s result.
type lintView struct {
	Policy   string           `json:"policy"`
	OK       bool             `json:"ok"`
	Routes   int              `json:"routes"`
	Files    int              `json:"files"`
	Problems []policy.Problem `json:"problems"`
}

func viewLint(path string, p *policy.Policy, err error) (lintView, error) {
	v := lintView{Policy: path, OK: err == nil, Problems: []policy.Problem{}}
	if err == nil {
		v.Routes, v.Files = len(p.Routes()), len(p.Files)
		return v, nil
	}
	var le *policy.LoadError
	if !errors.As(err, &le) {
		return v, err
	}
	v.Problems = le.Problems
	return v, nil
}

// explainView is `policy explain`'s result.
type explainView struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	// Refused is why the path is refused before matching (invalid-path).
	Refused string            `json:"refused,omitempty"`
	Route   *routeView        `json:"route"`
	Params  map[string]string `json:"params,omitempty"`
	Others  []candidateView   `json:"others"`
}

type candidateView struct {
	Route *routeView `json:"route"`
	Why   string     `json:"why"`
}

func viewExplanation(ex policy.Explanation) explainView {
	v := explainView{Method: ex.Method, Path: ex.Path, Route: viewRoute(ex.Winner), Params: ex.Params, Others: []candidateView{}}
	if ex.PathError != nil {
		v.Refused = ex.PathError.Detail
	}
	for _, c := range ex.Others {
		v.Others = append(v.Others, candidateView{Route: viewRoute(c.Route), Why: c.Why})
	}
	return v
}

// testView is `policy test`'s result.
type testView struct {
	Cases       []caseView   `json:"cases"`
	Passed      int          `json:"passed"`
	Failed      int          `json:"failed"`
	Unexercised []*routeView `json:"unexercised"`
	RoutesTotal int          `json:"routes_total"`
}

type caseView struct {
	Name   string          `json:"name"`
	Source policy.Location `json:"source"`
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Expect string          `json:"expect"`
	Status int             `json:"status,omitempty"`
	Got    string          `json:"got"`
	Passed bool            `json:"passed"`
	Route  *routeView      `json:"route"`
}

func viewTest(casesPath string, p *policy.Policy, results []policycases.Result) testView {
	v := testView{Cases: []caseView{}, Unexercised: []*routeView{}, RoutesTotal: len(p.Routes())}
	for _, r := range results {
		v.Cases = append(v.Cases, caseView{Name: r.Case.Name, Source: policy.Location{File: casesPath, Line: r.Case.Line()},
			Method: r.Case.Method, Path: r.Case.Path, Expect: r.Case.Expect, Status: r.Case.Status, Got: r.Got, Passed: r.Passed, Route: viewRoute(r.Route)})
		if r.Passed {
			v.Passed++
		} else {
			v.Failed++
		}
	}
	for _, r := range policycases.Unexercised(p, results) {
		v.Unexercised = append(v.Unexercised, viewRoute(r))
	}
	return v
}
