// Package configfile loads a process's YAML configuration strictly and applies
// environment overrides, so that both binaries treat their settings the same way.
package configfile

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis/portcullis/internal/secretfile"
	"github.com/portcullis/portcullis/internal/suggest"
	"github.com/portcullis/portcullis/internal/yamlsyntax"
)

// Load decodes the YAML file at path into dst (a pointer to a struct already
// holding defaults), then applies environment overrides named prefix + the
// upper-cased yaml path joined by "_" (for example
// PORTCULLIS_ISSUER_KEYS_ALGORITHM for keys.algorithm). An empty path loads
// no file, so defaults plus environment still work.
//
// Every problem of the file is reported at once, each as FILE:LINE:COL and
// in the words of the file, not of Go: an unknown setting with the closest
// known one, a duration that does not parse with examples, a YAML syntax
// error at the line to fix.
//
// A setting tagged `secret:"inline"` (a key, a client secret) or
// `secret:"dsn"` (a connection string, when it carries a password) may be
// written in the file only if the file is owner-only, as the *_file forms
// of those secrets must be: a world-readable file with a key in it is as
// exposed as a world-readable key file.
func Load(path, prefix string, dst any) error {
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read config: %w", err)
		}
		if err := decode(path, raw, dst); err != nil {
			return err
		}
	}
	return applyEnv(reflect.ValueOf(dst).Elem(), prefix, os.LookupEnv)
}

// Decode reads YAML raw (from path) into dst strictly, as Load reads a
// configuration file: every problem at once, each as path:line:col in the
// file's own words, never Go's. Other YAML inputs (policy test cases) are
// held to the same standard through it.
func Decode(path string, raw []byte, dst any) error { return decode(path, raw, dst) }

func decode(path string, raw []byte, dst any) error {
	if serr := yamlsyntax.Check(raw); serr != nil {
		return fmt.Errorf("%s:%d: YAML syntax error: %s", path, serr.Line, serr.Message)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil // an empty file: defaults
	}
	c := checker{path: path}
	c.check(doc.Content[0], reflect.TypeOf(dst).Elem(), "")
	if len(c.secrets) > 0 {
		var exposed *secretfile.ExposedError
		if err := secretfile.Check(path); errors.As(err, &exposed) {
			for _, n := range c.secrets {
				c.add(n.node, "%s holds a secret, and this file is readable by group or others (mode %04o): run `chmod 600 %s`, or move the secret to its *_file setting or the environment",
					n.setting, exposed.Mode.Perm(), path)
			}
		} else if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	if len(c.problems) > 0 {
		return errors.Join(c.problems...)
	}
	if err := doc.Content[0].Decode(dst); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// checker walks a YAML document against the settings struct it must fill.
type checker struct {
	path     string
	problems []error
	// secrets are the settings of the file that hold secrets inline.
	secrets []inlineSecret
}

type inlineSecret struct {
	node    *yaml.Node
	setting string
}

// holdsSecret reports whether value, of a setting tagged secret:kind, is a
// secret: any non-empty value inline, a connection string only with a
// password in it.
func holdsSecret(kind, value string) bool {
	switch {
	case value == "":
		return false
	case kind == "dsn":
		if u, err := url.Parse(value); err == nil && u.User != nil {
			if _, ok := u.User.Password(); ok {
				return true
			}
		}
		return strings.Contains(value, "password=")
	}
	return true
}

func (c *checker) add(n *yaml.Node, format string, args ...any) {
	c.problems = append(c.problems, fmt.Errorf("%s:%d:%d: %s", c.path, n.Line, n.Column, fmt.Sprintf(format, args...)))
}

func (c *checker) check(n *yaml.Node, t reflect.Type, setting string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			c.add(n, "%s: expected a duration (e.g. 1s, 500ms, 5m)", setting)
		} else if _, err := time.ParseDuration(n.Value); err != nil {
			c.add(n, "%s: invalid duration %q (e.g. 1s, 500ms, 5m)", setting, n.Value)
		}
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			c.add(n, "%s: expected a mapping of settings", orTop(setting))
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, value := n.Content[i], n.Content[i+1]
			field, ok := fields[key.Value]
			if !ok {
				msg := fmt.Sprintf("unknown setting %q", join(setting, key.Value))
				if near := closest(key.Value, fields); near != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", join(setting, near))
				}
				c.add(key, "%s", msg)
				continue
			}
			c.check(value, field.Type, join(setting, key.Value))
			if kind := field.Tag.Get("secret"); kind != "" && value.Kind == yaml.ScalarNode && holdsSecret(kind, value.Value) {
				c.secrets = append(c.secrets, inlineSecret{node: key, setting: join(setting, key.Value)})
			}
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			c.add(n, "%s: expected a list, e.g. [a, b]", setting)
			return
		}
		for _, item := range n.Content {
			c.check(item, t.Elem(), setting)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			c.add(n, "%s: expected a single value", setting)
			return
		}
		if err := setFromString(reflect.New(t).Elem(), n.Value); err != nil {
			c.add(n, "%s: %q is %v", setting, n.Value, err)
		}
	}
}

func orTop(setting string) string {
	if setting == "" {
		return "the file"
	}
	return setting
}

func join(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// yamlFields maps a struct's yaml names to its fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	fields := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag != "" && tag != "-" && f.IsExported() {
			fields[tag] = f
		}
	}
	return fields
}

// closest returns the known name nearest to name, or "".
func closest(name string, known map[string]reflect.StructField) string {
	names := make([]string, 0, len(known))
	for k := range known {
		names = append(names, k)
	}
	return suggest.Closest(name, names)
}

// EnvNames lists every environment variable that can override a setting of
// the struct pointed to by dst, for documentation and --help output.
func EnvNames(prefix string, dst any) []string {
	var names []string
	_ = applyEnv(reflect.ValueOf(dst).Elem(), prefix, func(name string) (string, bool) {
		names = append(names, name)
		return "", false
	})
	return names
}

// SettingPaths lists every setting of the struct pointed to by dst by its
// dotted YAML path (keys.algorithm), for documentation checks.
func SettingPaths(dst any) []string {
	var paths []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for name, f := range yamlFields(t) {
			if f.Type.Kind() == reflect.Struct && f.Type != durationType {
				walk(f.Type, join(prefix, name))
				continue
			}
			paths = append(paths, join(prefix, name))
		}
	}
	walk(reflect.TypeOf(dst).Elem(), "")
	sort.Strings(paths)
	return paths
}

var durationType = reflect.TypeOf(time.Duration(0))

func applyEnv(v reflect.Value, prefix string, lookup func(string) (string, bool)) error {
	return eachSetting(v, prefix, "", func(name, _ string, _ reflect.StructField, fv reflect.Value) error {
		raw, ok := lookup(name)
		if !ok {
			return nil
		}
		if err := setFromString(fv, raw); err != nil {
			return fmt.Errorf("environment variable %s=%q: %w", name, raw, err)
		}
		return nil
	})
}

// eachSetting calls fn for every setting of the struct v (nested structs
// walked into, a duration is a setting): its variable name under prefix,
// its path, its field and its value.
func eachSetting(v reflect.Value, prefix, setting string, fn func(name, setting string, f reflect.StructField, fv reflect.Value) error) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		field := t.Field(i)
		tag := strings.Split(field.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" || !field.IsExported() {
			continue
		}
		name, path, fv := prefix+"_"+strings.ToUpper(tag), join(setting, tag), v.Field(i)
		var err error
		if fv.Kind() == reflect.Struct && fv.Type() != durationType {
			err = eachSetting(fv, name, path, fn)
		} else {
			err = fn(name, path, field, fv)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func setFromString(fv reflect.Value, raw string) error {
	if fv.Type() == durationType {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("not a duration (e.g. 1s, 500ms, 5m)")
		}
		fv.SetInt(int64(d))
		return nil
	}
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("not a boolean (use true or false)")
		}
		fv.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		fv.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fmt.Errorf("not a number")
		}
		fv.SetFloat(f)
	case reflect.Slice:
		if fv.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported list type")
		}
		var items []string
		for _, item := range strings.Split(raw, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		fv.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("unsupported setting type %s", fv.Type())
	}
	return nil
}

// CheckEnv refuses variables that begin with prefix + "_" but name no
// setting of dst (nor prefix_CONFIG): a misspelt variable would otherwise
// be ignored in silence, while a misspelt key in the file is an error.
// Each comes with the closest real name.
func CheckEnv(prefix string, dst any, environ []string) error {
	known := map[string]reflect.StructField{prefix + "_CONFIG": {}}
	for _, name := range EnvNames(prefix, dst) {
		known[name] = reflect.StructField{}
	}
	var problems []error
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, prefix+"_") {
			continue
		}
		if _, ok := known[name]; ok {
			continue
		}
		msg := fmt.Sprintf("environment variable %s names no setting", name)
		if near := closest(name, known); near != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", near)
		}
		problems = append(problems, errors.New(msg+"; `env` lists them all"))
	}
	sort.Slice(problems, func(i, j int) bool { return problems[i].Error() < problems[j].Error() })
	return errors.Join(problems...)
}

// EnvVar is one environment variable that overrides a setting.
type EnvVar struct {
	Name    string `json:"name"`
	Setting string `json:"setting"`
	// Syntax says how a value is written: a duration, a number, true or
	// false, a comma-separated list, text.
	Syntax  string `json:"syntax"`
	Default string `json:"default"`
}

// EnvVars lists every variable of prefix that overrides a setting of
// defaults (a pointer to the settings struct holding its defaults).
func EnvVars(prefix string, defaults any) []EnvVar {
	var out []EnvVar
	_ = eachSetting(reflect.ValueOf(defaults).Elem(), prefix, "", func(name, setting string, f reflect.StructField, fv reflect.Value) error {
		if f.Tag.Get("retired") == "" { // a retired setting is kept only to refuse it with its replacement
			out = append(out, EnvVar{Name: name, Setting: setting, Syntax: syntaxOf(fv.Type()), Default: defaultOf(fv)})
		}
		return nil
	})
	return out
}

func syntaxOf(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration (1s, 500ms, 5m)"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Float64:
		return "number"
	case t.Kind() == reflect.Slice:
		return "comma-separated list"
	}
	return "text"
}

func defaultOf(v reflect.Value) string {
	switch {
	case v.Type() == durationType:
		return time.Duration(v.Int()).String()
	case v.Kind() == reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = fmt.Sprint(v.Index(i).Interface())
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v.Interface())
}

// Source says where each setting of a validation problem came from, for
// problems written "setting: message": the environment variable that set
// it, else the file's line and column, else nothing (a default).
func Source(path, prefix string, dst any, problems string, lookup func(string) (string, bool)) string {
	vars := map[string]string{}
	for _, v := range EnvVars(prefix, dst) {
		vars[v.Setting] = v.Name
	}
	var positions map[string][2]int
	if raw, err := os.ReadFile(path); path != "" && err == nil {
		positions = settingPositions(raw)
	}
	lines := strings.Split(problems, "\n")
	for i, l := range lines {
		setting, _, ok := strings.Cut(l, ": ")
		if !ok || strings.Contains(setting, " ") {
			continue
		}
		if name, ok := vars[setting]; ok {
			if _, set := lookup(name); set {
				lines[i] = name + " (" + l + ")"
				continue
			}
		}
		if pos, ok := positions[setting]; ok {
			lines[i] = fmt.Sprintf("%s:%d:%d: %s", path, pos[0], pos[1], l)
		}
	}
	return strings.Join(lines, "\n")
}

// settingPositions maps each setting written in a YAML file to its line
// and column.
func settingPositions(raw []byte) map[string][2]int {
	var doc yaml.Node
	out := map[string][2]int{}
	if yaml.Unmarshal(raw, &doc) != nil || len(doc.Content) == 0 {
		return out
	}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := join(prefix, n.Content[i].Value)
			out[key] = [2]int{n.Content[i].Line, n.Content[i].Column}
			walk(n.Content[i+1], key)
		}
	}
	walk(doc.Content[0], "")
	return out
}
