package configfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type nested struct {
	Algorithm string        `yaml:"algorithm"`
	Delay     time.Duration `yaml:"delay"`
}

type settings struct {
	Listen  string   `yaml:"listen"`
	Enabled bool     `yaml:"enabled"`
	Count   int      `yaml:"count"`
	Rate    float64  `yaml:"rate"`
	List    []string `yaml:"list"`
	Keys    nested   `yaml:"keys"`
}

func TestLoadAppliesFileThenEnvironment(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	os.WriteFile(file, []byte("listen: 127.0.0.1:1\nkeys:\n  algorithm: ES256\n  delay: 5m\n"), 0o644)
	t.Setenv("TEST_KEYS_ALGORITHM", "EdDSA")
	t.Setenv("TEST_COUNT", "7")
	t.Setenv("TEST_ENABLED", "true")
	t.Setenv("TEST_LIST", "a, b,,c")
	t.Setenv("TEST_RATE", "0.5")
	s := settings{Count: 1}
	if err := Load(file, "TEST", &s); err != nil {
		t.Fatal(err)
	}
	if s.Listen != "127.0.0.1:1" || s.Keys.Algorithm != "EdDSA" || s.Keys.Delay != 5*time.Minute || s.Count != 7 || !s.Enabled || s.Rate != 0.5 || strings.Join(s.List, "|") != "a|b|c" {
		t.Fatalf("got %+v", s)
	}
}

func TestLoadRejectsUnknownKeysAndBadEnvironment(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	os.WriteFile(file, []byte("listen: x\nlisten_addr: y\n"), 0o644)
	var s settings
	if err := Load(file, "TEST", &s); err == nil || !strings.Contains(err.Error(), "listen_addr") {
		t.Fatalf("unknown key: %v", err)
	}
	t.Setenv("TEST_KEYS_DELAY", "five minutes")
	if err := Load("", "TEST", &s); err == nil || !strings.Contains(err.Error(), "TEST_KEYS_DELAY") {
		t.Fatalf("bad duration: %v", err)
	}
}

func TestEnvNames(t *testing.T) {
	names := strings.Join(EnvNames("TEST", &settings{}), " ")
	if !strings.Contains(names, "TEST_KEYS_ALGORITHM") || !strings.Contains(names, "TEST_LISTEN") {
		t.Fatal(names)
	}
}

// TestLoadSpeaksTheFilesLanguage: problems name the file, line and setting
// as written, suggest the setting meant, and never show Go types.
func TestLoadSpeaksTheFilesLanguage(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	os.WriteFile(file, []byte("listn: x\nkeys:\n  algoritm: ES256\n  delay: 1 second\ncount: many\nenabled: maybe\nlist: notalist\n"), 0o644)
	var s settings
	err := Load(file, "TEST", &s)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		file + `:1:1: unknown setting "listn" (did you mean "listen"?)`,
		file + `:3:3: unknown setting "keys.algoritm" (did you mean "keys.algorithm"?)`,
		file + `:4:10: keys.delay: invalid duration "1 second" (e.g. 1s, 500ms, 5m)`,
		file + `:5:8: count: "many" is not an integer`,
		file + `:6:10: enabled: "maybe" is not a boolean (use true or false)`,
		file + `:7:7: list: expected a list, e.g. [a, b]`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "settings") && strings.Contains(err.Error(), "type") {
		t.Errorf("Go types leak: %v", err)
	}
	os.WriteFile(file, []byte("listen: a\nkeys:\n  algorithm: [ES256\n  delay: 5m\n"), 0o644)
	if err := Load(file, "TEST", &s); err == nil || !strings.HasPrefix(err.Error(), file+":3: YAML syntax error") {
		t.Errorf("syntax error: %v", err)
	}
	os.WriteFile(file, []byte(""), 0o644)
	if err := Load(file, "TEST", &s); err != nil {
		t.Errorf("empty file: %v", err)
	}
}

type withSecrets struct {
	Key string `yaml:"key" secret:"inline"`
	DSN string `yaml:"dsn" secret:"dsn"`
}

// TestInlineSecretsNeedAnOwnerOnlyFile: a key written in a file anyone can
// read is as exposed as a key file anyone can read, which is refused.
func TestInlineSecretsNeedAnOwnerOnlyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil { // whatever the umask
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct {
		name, body string
		mode       os.FileMode
		refused    string
	}{
		{"a key in a readable file", "key: c2VjcmV0\n", 0o644, "c.yaml:1:1: key holds a secret, and this file is readable by group or others (mode 0644): run `chmod 600"},
		{"a password in a readable DSN", "dsn: postgres://app:hunter2@db/issuer\n", 0o640, "c.yaml:1:1: dsn holds a secret"},
		{"a password keyword in a readable DSN", "dsn: host=db password=hunter2\n", 0o604, "dsn holds a secret"},
		{"a key in an owner-only file", "key: c2VjcmV0\n", 0o600, ""},
		{"a DSN without a password", "dsn: postgres://app@db/issuer\n", 0o644, ""},
		{"no secret", "key: \"\"\n", 0o644, ""},
	} {
		path := write(strings.ReplaceAll(tc.name, " ", "-")+"-c.yaml", tc.body, tc.mode)
		var s withSecrets
		err := Load(path, "TEST", &s)
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused) || !strings.Contains(err.Error(), path)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.refused)
		}
	}
}

// TestMisspeltVariablesAreRefused: as a misspelt key in the file is.
func TestMisspeltVariablesAreRefused(t *testing.T) {
	t.Parallel()
	var s settings
	err := CheckEnv("TEST", &s, []string{"TEST_KEYS_ALGORITM=EdDSA", "TEST_LISTEN=x", "TEST_CONFIG=f.yaml", "OTHER_THING=1", "TESTING=1"})
	if err == nil || !strings.Contains(err.Error(), "TEST_KEYS_ALGORITM names no setting (did you mean TEST_KEYS_ALGORITHM?)") {
		t.Fatalf("%v", err)
	}
	if err := CheckEnv("TEST", &s, []string{"TEST_LISTEN=x", "TEST_CONFIG=f.yaml", "PATH=/bin"}); err != nil {
		t.Fatalf("only real names: %v", err)
	}
}

// TestEnvVarsSayHowToWriteThem: each variable with its setting, syntax and
// default; a retired setting is not offered.
func TestEnvVarsSayHowToWriteThem(t *testing.T) {
	t.Parallel()
	type withRetired struct {
		Keys nested `yaml:"keys"`
		Old  bool   `yaml:"old" retired:"true"`
	}
	got := EnvVars("TEST", &withRetired{Keys: nested{Algorithm: "ES256", Delay: 5 * time.Minute}})
	want := []EnvVar{
		{Name: "TEST_KEYS_ALGORITHM", Setting: "keys.algorithm", Syntax: "text", Default: "ES256"},
		{Name: "TEST_KEYS_DELAY", Setting: "keys.delay", Syntax: "duration (1s, 500ms, 5m)", Default: "5m0s"},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("%+v", got)
	}
}
