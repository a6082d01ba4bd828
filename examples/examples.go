// Package examples embeds the sample policy and user directory, so that
// `portcullis local` runs from any directory, not only the repository's.
package examples

import "embed"

// Samples holds policy/*.yaml and users/users.yaml.
//
//go:embed policy/*.yaml users/users.yaml
var Samples embed.FS
