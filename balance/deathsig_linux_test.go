package balance

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gotorcon/tor/internal/leakcheck"
)

// TestDiesWithProgram kills (SIGKILL) a program that runs a Frontend and
// checks that its onionbalance dies too, as the program's tors do.
func TestDiesWithProgram(t *testing.T) {
	if os.Getenv("GOTORCON_BALANCE_HELPER") != "" {
		helper(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDiesWithProgram$", "-test.v")
	cmd.Env = append(os.Environ(), "GOTORCON_BALANCE_HELPER=1", "GOTORCON_BALANCE_FAKE="+writeFake(t))
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()
	pid := 0
	sc := bufio.NewScanner(out)
	rx := regexp.MustCompile(`onionbalance pid (\d+)`)
	for pid == 0 && sc.Scan() {
		if m := rx.FindStringSubmatch(sc.Text()); m != nil {
			pid, _ = strconv.Atoi(m[1])
		}
	}
	require.NotZero(t, pid, "the helper did not report onionbalance's pid")
	require.True(t, leakcheck.PidAlive(pid))
	require.NoError(t, cmd.Process.Kill())
	cmd.Wait()
	took := leakcheck.WaitPidGone(t, pid, 10*time.Second)
	t.Logf("onionbalance (pid %d) gone %v after its program was killed", pid, took)
}

// helper runs a Frontend with the fake onionbalance, says its pid, and
// waits to be killed.
func helper(t *testing.T) {
	f := newFakeTor(t)
	ks := keys(t, 2)
	logs := &logBuffer{}
	fe := &Frontend{Key: ks[0], Backends: []string{ks[1].Hostname()}, Path: os.Getenv("GOTORCON_BALANCE_FAKE"),
		Logger: slog.New(slog.NewTextHandler(logs, nil))}
	require.NoError(t, fe.Start(context.Background(), f.tor(t)))
	fmt.Printf("onionbalance pid %s\n", logs.waitLog(t, `pid (\d+) running`))
	time.Sleep(time.Minute) // killed long before
}
