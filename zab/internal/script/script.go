// Package script runs the scripted scenarios of zab's tests: text files of
// commands, each followed by a line of dashes and the output the command
// must produce, blocks separated by blank lines, comments starting with #.
// With rewrite set (a test's -rewrite flag) the outputs the code produces
// are written back into the files, to be read in the diff.
package script

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type block struct {
	comment, cmd, want string // comment: the lines starting with # before cmd
}

func parse(text string) ([]block, error) {
	var blocks []block
	var comment strings.Builder
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); {
		l := lines[i]
		if strings.HasPrefix(l, "#") {
			comment.WriteString(l + "\n")
			i++
			continue
		}
		if strings.TrimSpace(l) == "" {
			i++
			continue
		}
		if i+1 >= len(lines) || lines[i+1] != "----" {
			return nil, fmt.Errorf("line %d: %q is not followed by ----", i+1, l)
		}
		j := i + 2
		for j < len(lines) && lines[j] != "" {
			j++
		}
		want := strings.Join(lines[i+2:j], "\n")
		if want != "" {
			want += "\n"
		}
		blocks = append(blocks, block{comment: comment.String(), cmd: l, want: want})
		comment.Reset()
		i = j
	}
	return blocks, nil
}

// Run runs every file matching glob as a subtest: newRunner gives each
// file a fresh run function, which carries out one command and returns
// its output (an error stops the file).
func Run(t *testing.T, glob string, rewrite bool, newRunner func() func(cmd string) (string, error)) {
	files, err := filepath.Glob(glob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios in %s (%v)", glob, err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			blocks, err := parse(string(raw))
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			run := newRunner()
			var rewritten strings.Builder
			for _, b := range blocks {
				got, err := run(b.cmd)
				if err != nil {
					t.Fatalf("%s: %s: %v", file, b.cmd, err)
				}
				if got != b.want && !rewrite {
					t.Errorf("%s: %s\n--- want\n%s--- got\n%s", file, b.cmd, b.want, got)
				}
				fmt.Fprintf(&rewritten, "%s%s\n----\n%s\n", b.comment, b.cmd, got)
			}
			if rewrite {
				if err := os.WriteFile(file, []byte(strings.TrimRight(rewritten.String(), "\n")+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
