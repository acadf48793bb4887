package tortest

import (
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// dirPrefix starts the name of every network directory.
const dirPrefix = "gotorcon-tortest-"

var sweepOnce sync.Map // parent directory -> *sync.Once

// sweepStale removes, once per parent directory and process, the network
// directories left by programs that died without Close (their tor
// processes exited with them: each tor is owned by its program's control
// connection).
func sweepStale(parent string, lg *slog.Logger) {
	if parent == "" {
		parent = os.TempDir()
	}
	once, _ := sweepOnce.LoadOrStore(parent, new(sync.Once))
	once.(*sync.Once).Do(func() {
		dirs, _ := filepath.Glob(filepath.Join(parent, dirPrefix+"*"))
		for _, d := range dirs {
			if fi, err := os.Lstat(d); err != nil || !fi.IsDir() || !abandoned(d) {
				continue
			}
			if err := os.RemoveAll(d); err == nil {
				lg.Info("tortest: removed the directory of a network whose program died", "dir", d)
			}
		}
	})
}
