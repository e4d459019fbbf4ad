package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

func init() {
	register(&command{
		name:    "version",
		summary: "print the version and commit of this binary",
		run: func(args []string, stdout, stderr io.Writer) error {
			if len(args) > 0 {
				return fmt.Errorf("%w: version takes no arguments, got %q", errUsage, args)
			}
			fmt.Fprintln(stdout, readVersion())
			return nil
		},
	})
}

// linkVersion and linkCommit are set at link time (go build -ldflags
// "-X main.linkVersion=v1.2.3 -X main.linkCommit=abc123", as make build
// does); when empty, the build information's module version and VCS
// revision are used.
var linkVersion, linkCommit string

// buildVersion is what `sluice version`, `--version` and /version report.
type buildVersion struct {
	Version  string // module version: a tag, a pseudo-version, or "dev"
	Commit   string // VCS revision, "unknown" when the build has none
	Modified bool   // built from a tree with uncommitted changes
	Go       string
}

// readVersion reads the version from the binary's build information.
func readVersion() buildVersion {
	v := buildVersion{Version: "dev", Commit: "unknown", Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if mv := bi.Main.Version; mv != "" && mv != "(devel)" {
			v.Version = mv
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if linkVersion != "" {
		v.Version = linkVersion
	}
	if linkCommit != "" {
		v.Commit, v.Modified = linkCommit, false
	}
	return v
}

// commit is the revision with a "-dirty" suffix for a modified tree.
func (v buildVersion) commit() string {
	if v.Modified {
		return v.Commit + "-dirty"
	}
	return v.Commit
}

func (v buildVersion) String() string {
	return fmt.Sprintf("sluice %s (commit %s, %s)", v.Version, v.commit(), v.Go)
}
