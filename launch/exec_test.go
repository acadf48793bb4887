package launch

import (
	"os/exec"
	"path/filepath"
)

type execCmd = exec.Cmd

func newExecCmd(path string, args []string) *exec.Cmd { return exec.Command(path, args...) }

// torrcDir returns the directory of the "-f" torrc in tor's arguments.
func torrcDir(args []string) string {
	for i, a := range args {
		if a == "-f" && i+1 < len(args) {
			return filepath.Dir(args[i+1])
		}
	}
	return ""
}
