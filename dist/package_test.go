package dist

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestPackageContentsDocumented: docs/operations.md's "What the package installs" lists
// exactly the files nfpm.yaml puts in the package (and the changelog nfpm adds). .ci/deb
// compares the same list with the built package's files.
func TestPackageContentsDocumented(t *testing.T) {
	b, err := os.ReadFile("nfpm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Changelog string `yaml:"changelog"`
		Contents  []struct {
			Src  string `yaml:"src"`
			Dst  string `yaml:"dst"`
			Type string `yaml:"type"`
		} `yaml:"contents"`
	}
	if err := yaml.Unmarshal(b, &conf); err != nil {
		t.Fatalf("nfpm.yaml: %v", err)
	}
	var packaged []string
	for _, c := range conf.Contents {
		if c.Type != "dir" {
			packaged = append(packaged, c.Dst)
		}
	}
	if conf.Changelog != "" {
		packaged = append(packaged, "/usr/share/doc/hexcron/changelog.Debian.gz")
	}
	sort.Strings(packaged)

	doc, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n### What the package installs\n")
	if !ok {
		t.Fatal(`docs/operations.md has no "### What the package installs" section`)
	}
	if i := strings.Index(section, "\n#"); i >= 0 {
		section = section[:i]
	}
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(/[^`]*)`").FindAllStringSubmatch(section, -1) {
		documented = append(documented, m[1])
	}
	sort.Strings(documented)
	if strings.Join(documented, "\n") != strings.Join(packaged, "\n") {
		t.Errorf("docs/operations.md lists:\n  %s\nnfpm.yaml packages:\n  %s",
			strings.Join(documented, "\n  "), strings.Join(packaged, "\n  "))
	}
	for _, want := range []string{"/usr/bin/hexcron", "/lib/systemd/system/hexcron.service", "/etc/hexcron/schedules.yaml",
		"/usr/share/man/man1/hexcron.1.gz", "/usr/share/bash-completion/completions/hexcron", "/usr/share/zsh/vendor-completions/_hexcron"} {
		if !strings.Contains(strings.Join(packaged, "\n")+"\n", want+"\n") {
			t.Errorf("nfpm.yaml does not package %s", want)
		}
	}
	for _, c := range conf.Contents {
		if c.Dst == "/etc/hexcron/schedules.yaml" && c.Type != "config" {
			t.Errorf("/etc/hexcron/schedules.yaml has type %q, want config (a conffile: upgrades keep the operator's edits)", c.Type)
		}
	}
}
