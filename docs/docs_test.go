// Package docs holds the user documentation; its test keeps every command
// the README and these pages show runnable.
package docs

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var binaries = []string{"authz", "issuer", "portcullis"}

// TestEveryDocumentedCommandExists builds the three binaries and checks
// each command line of the README's and docs' shell blocks against them:
// the command exists, and every flag it uses is one of its flags.
func TestEveryDocumentedCommandExists(t *testing.T) {
	bin := t.TempDir()
	for _, b := range binaries {
		out, err := exec.Command("go", "build", "-o", filepath.Join(bin, b), "../cmd/"+b).CombinedOutput()
		if err != nil {
			t.Fatalf("go build %s: %v\n%s", b, err, out)
		}
	}
	files, _ := filepath.Glob("*.md")
	files = append(files, "../README.md")
	helps := map[string]string{}
	help := func(args []string) string {
		key := strings.Join(args, " ")
		if h, ok := helps[key]; ok {
			return h
		}
		argv := append(append([]string{}, args[1:]...), "--help")
		out, _ := exec.Command(filepath.Join(bin, args[0]), argv...).CombinedOutput()
		helps[key] = string(out)
		return helps[key]
	}
	checked := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, cmd := range documentedCommands(string(raw)) {
			checked++
			words := cmd.words
			// The subcommand path: leading words that are commands.
			path := []string{words[0]}
			for _, w := range words[1:] {
				if strings.HasPrefix(w, "-") {
					break
				}
				next := append(append([]string{}, path...), w)
				if !strings.Contains(help(path), "\n  "+w+" ") {
					break
				}
				path = next
			}
			if len(words) > 1 && !strings.HasPrefix(words[1], "-") && len(path) == 1 {
				t.Errorf("%s:%d: %q: %s has no command %q", f, cmd.line, cmd.text, words[0], words[1])
				continue
			}
			h := help(path)
			for _, w := range words[len(path):] {
				if !strings.HasPrefix(w, "-") || w == "-" || w == "--" {
					continue
				}
				flag, _, _ := strings.Cut(w, "=")
				if !flagPattern(flag).MatchString(h) {
					t.Errorf("%s:%d: %q: %s has no flag %s", f, cmd.line, cmd.text, strings.Join(path, " "), flag)
				}
			}
		}
	}
	if checked < 30 {
		t.Fatalf("only %d documented commands found: is the parser still reading the blocks?", checked)
	}
}

func flagPattern(flag string) *regexp.Regexp {
	if strings.HasPrefix(flag, "--") {
		return regexp.MustCompile(`(^|[\s,])` + regexp.QuoteMeta(flag) + `([\s=]|$)`)
	}
	return regexp.MustCompile(`(^|\s)` + regexp.QuoteMeta(flag) + `,`)
}

type documented struct {
	line  int
	text  string
	words []string
}

// documentedCommands finds the invocations of the three binaries in a
// page's sh blocks: at the start of a line, after a pipe, &&, ; or $(.
func documentedCommands(page string) []documented {
	var out []documented
	inSh := false
	lines := strings.Split(page, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(l, "```") {
			inSh = !inSh && (l == "```sh" || l == "```bash" || l == "```shell")
			continue
		}
		if !inSh {
			continue
		}
		start := i + 1
		for strings.HasSuffix(strings.TrimSpace(l), "\\") && i+1 < len(lines) {
			i++
			l = strings.TrimSuffix(strings.TrimSpace(l), "\\") + " " + lines[i]
		}
		words := shellWords(l)
		var seg []string
		flush := func() {
			for len(seg) > 0 && strings.Contains(seg[0], "=") && !strings.HasPrefix(seg[0], "-") {
				seg = seg[1:] // VAR=value before the command
			}
			if len(seg) > 0 && isBinary(seg[0]) {
				out = append(out, documented{line: start, text: strings.TrimSpace(l), words: seg})
			}
			seg = nil
		}
		for _, w := range words {
			switch {
			case w == "#":
				flush()
				seg = nil
				goto next
			case w == "|" || w == "&&" || w == ";" || w == "||":
				flush()
			case strings.HasPrefix(w, "$("):
				flush()
				if rest := strings.TrimPrefix(w, "$("); rest != "" {
					seg = append(seg, rest)
				}
			default:
				seg = append(seg, strings.TrimSuffix(w, ")"))
			}
		}
		flush()
	next:
	}
	return out
}

func isBinary(w string) bool {
	for _, b := range binaries {
		if w == b {
			return true
		}
	}
	return false
}

// shellWords splits a line as a shell would, closely enough: quotes group,
// # starts a comment, | && ; are words of their own.
func shellWords(l string) []string {
	var words []string
	var cur strings.Builder
	var quote rune
	inWord := false
	emit := func() {
		if inWord {
			words = append(words, cur.String())
		}
		cur.Reset()
		inWord = false
	}
	for _, r := range l {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == '#' && !inWord:
			emit()
			words = append(words, "#")
			return words
		case r == ' ' || r == '\t':
			emit()
		case r == '|' || r == ';':
			emit()
			words = append(words, string(r))
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	emit()
	for i, w := range words {
		if w == "&" && i+1 < len(words) && words[i+1] == "&" {
			words[i] = "&&"
		}
	}
	return words
}
