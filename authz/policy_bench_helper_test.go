package authz

import "github.com/portcullis/portcullis/policy"

type staticPolicy struct{ p *policy.Policy }

func (s staticPolicy) Current() *policy.Policy { return s.p }

func newBenchPolicy() (staticPolicy, error) {
	p, err := policy.Load("../examples/policy")
	return staticPolicy{p}, err
}
