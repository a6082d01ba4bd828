package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"github.com/spf13/cobra"

	"github.com/portcullis/portcullis/cmd/internal/cli"
	"github.com/portcullis/portcullis/tokenissuer"
)

// newClientKeysCommand is what a client's owner needs for private_key_jwt
// from a private key in a PEM file (openssl genpkey): the JWKS of its
// public half to register, and assertions to try the token endpoint with.
// The private key never reaches the issuer.
func newClientKeysCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "client-keys",
		Short: "A client's keys for private_key_jwt: the JWKS to register, and assertions to try them",
		Args:  cobra.ArbitraryArgs,
		RunE:  cli.Group,
	}
	var keyFile, kid string
	jwks := &cobra.Command{
		Use:     "jwks",
		Short:   "Print the JWKS of the public half of --private-key (PEM), to register with clients create|set-keys --jwks-file",
		Example: "  openssl genpkey -algorithm ed25519 -out acme-app.key\n  issuer client-keys jwks --private-key acme-app.key --kid k1 > acme-app.jwks.json",
		Args:    cli.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			key, _, err := readPrivateKey(keyFile, kid)
			if err != nil {
				return err
			}
			public, err := key.PublicKey()
			if err != nil {
				return err
			}
			set := jwk.NewSet()
			if err := set.AddKey(public); err != nil {
				return err
			}
			return json.NewEncoder(c.OutOrStdout()).Encode(set)
		},
	}
	var clientID, audience string
	var lifetime time.Duration
	assertion := &cobra.Command{
		Use:     "assertion",
		Short:   "Print a client assertion signed with --private-key, good once for --lifetime",
		Example: "  issuer client-keys assertion --private-key acme-app.key --kid k1 --client acme-app --audience http://127.0.0.1:8080/oauth2/token",
		Args:    cli.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if clientID == "" || audience == "" {
				return cli.UsageError{Command: c.CommandPath(), Msg: "give --client and --audience (the issuer's token endpoint)"}
			}
			key, alg, err := readPrivateKey(keyFile, kid)
			if err != nil {
				return err
			}
			now := time.Now()
			tok, err := jwt.NewBuilder().Issuer(clientID).Subject(clientID).Audience([]string{audience}).IssuedAt(now).
				Expiration(now.Add(lifetime)).JwtID(tokenissuer.RandomID(16)).Build()
			if err != nil {
				return err
			}
			signed, err := jwt.Sign(tok, jwt.WithKey(alg, key))
			if err != nil {
				return fmt.Errorf("sign: %w", err)
			}
			fmt.Fprintln(c.OutOrStdout(), string(signed))
			return nil
		},
	}
	for _, sub := range []*cobra.Command{jwks, assertion} {
		sub.Flags().StringVar(&keyFile, "private-key", "", "the client's private key, PEM (Ed25519, EC P-256 or RSA)")
		sub.Flags().StringVar(&kid, "kid", "k1", "the key's ID, as registered")
	}
	assertion.Flags().StringVar(&clientID, "client", "", "the client ID")
	assertion.Flags().StringVar(&audience, "audience", "", "the issuer's token endpoint URL")
	assertion.Flags().DurationVar(&lifetime, "lifetime", time.Minute, "how long the assertion is good (at most 5m)")
	c.AddCommand(jwks, assertion)
	return c
}

// readPrivateKey reads a PEM private key and the algorithm it signs with.
func readPrivateKey(path, kid string) (jwk.Key, jwa.SignatureAlgorithm, error) {
	if path == "" {
		return nil, "", fmt.Errorf("--private-key is required (make one with: openssl genpkey -algorithm ed25519 -out client.key)")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("--private-key: %w", err)
	}
	key, err := jwk.ParseKey(raw, jwk.WithPEM(true))
	if err != nil {
		return nil, "", fmt.Errorf("--private-key %s: not a PEM private key: %w", path, err)
	}
	if err := key.Set(jwk.KeyIDKey, kid); err != nil {
		return nil, "", err
	}
	switch key.(type) {
	case jwk.OKPPrivateKey:
		return key, jwa.EdDSA, nil
	case jwk.ECDSAPrivateKey:
		return key, jwa.ES256, nil
	case jwk.RSAPrivateKey:
		return key, jwa.PS256, nil
	}
	return nil, "", fmt.Errorf("--private-key %s: not a private key (Ed25519, EC P-256 or RSA)", path)
}
