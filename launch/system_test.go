//go:build unix

package launch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/internal/testtor"
)

func TestSystemCookie(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tt := testtor.Start(t, testtor.Options{})
	tor, err := System(ctx, SystemOptions{
		Endpoints: []Endpoint{
			{"unix", filepath.Join(t.TempDir(), "nothing-here")},
			{"tcp", tt.ControlAddr},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if tor.Process() != nil {
		t.Errorf("Process %v, want nil for a system tor", tor.Process())
	}
	if n, a := tor.ControlAddr(); n != "tcp" || a != tt.ControlAddr {
		t.Errorf("ControlAddr = %s %s", n, a)
	}
	if tor.CookieFile() != tt.CookieFile {
		t.Errorf("CookieFile = %q, want %q", tor.CookieFile(), tt.CookieFile)
	}
	if _, err := tor.Control().GetInfoValue(ctx, "version"); err != nil {
		t.Fatal(err)
	}
	if err := tor.Close(); err != nil {
		t.Fatal(err)
	}
	// We never stop a tor we did not start.
	time.Sleep(200 * time.Millisecond)
	if !tt.Running() {
		t.Fatal("closing a System Tor stopped the system tor")
	}
	// The unix socket works too.
	tor, err = System(ctx, SystemOptions{Endpoints: []Endpoint{{"unix", tt.ControlSocket}}})
	if err != nil {
		t.Fatal(err)
	}
	tor.Close()
	checkGoroutines(t, false) // the test's tor still runs, with its exec copiers
}

func TestSystemPassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tt := testtor.Start(t, testtor.Options{Password: "correct horse", NoCookie: true})
	ep := []Endpoint{{"tcp", tt.ControlAddr}}

	asked := 0
	tor, err := System(ctx, SystemOptions{Endpoints: ep, Password: func(context.Context) (string, error) {
		asked++
		return "correct horse", nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if asked != 1 {
		t.Errorf("password asked %d times", asked)
	}
	if _, err := tor.Control().GetInfoValue(ctx, "version"); err != nil {
		t.Fatal(err)
	}
	tor.Close()

	// No callback: a clear error.
	_, err = System(ctx, SystemOptions{Endpoints: ep})
	if !errors.Is(err, ErrNoTor) || !strings.Contains(err.Error(), "SystemOptions.Password") {
		t.Errorf("System without password = %v", err)
	}
	// A wrong password: tor's 515 is in the error.
	_, err = System(ctx, SystemOptions{Endpoints: ep, Password: func(context.Context) (string, error) { return "wrong", nil }})
	var ce *control.Error
	if !errors.Is(err, ErrNoTor) || !errors.As(err, &ce) {
		t.Errorf("System with a wrong password = %v", err)
	}
	t.Log(err)
	// A failing callback.
	boom := errors.New("no tty")
	_, err = System(ctx, SystemOptions{Endpoints: ep, Password: func(context.Context) (string, error) { return "", boom }})
	if !errors.Is(err, boom) {
		t.Errorf("System with a failing callback = %v", err)
	}
}

// Cookie first; when it fails tor closes the connection, so System must
// redial for the password.
func TestSystemRedialsAfterAuthFailure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tt := testtor.Start(t, testtor.Options{Password: "pw"})
	wrongCookie := filepath.Join(t.TempDir(), "cookie")
	os.WriteFile(wrongCookie, []byte(strings.Repeat("x", 32)), 0o600)
	tor, err := System(ctx, SystemOptions{
		Endpoints:  []Endpoint{{"tcp", tt.ControlAddr}},
		CookieFile: wrongCookie,
		Password:   func(context.Context) (string, error) { return "pw", nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tor.Close()
	if _, err := tor.Control().GetInfoValue(ctx, "version"); err != nil {
		t.Fatal(err)
	}
}

func TestSystemListsEveryAttempt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tt := testtor.Start(t, testtor.Options{Password: "pw", NoCookie: true})
	missing := filepath.Join(t.TempDir(), "control")
	closed := fmt.Sprintf("127.0.0.1:%d", closedPort(t))
	_, err := System(ctx, SystemOptions{Endpoints: []Endpoint{
		{"unix", missing},
		{"tcp", closed},
		{"tcp", tt.ControlAddr},
	}})
	var se *SystemError
	if !errors.As(err, &se) || len(se.Attempts) != 3 {
		t.Fatalf("System = %v, want 3 attempts", err)
	}
	msg := err.Error()
	for _, want := range []string{missing, closed, tt.ControlAddr, "HASHEDPASSWORD"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q: %s", want, msg)
		}
	}
	// Each address once: the dial error names it, nothing repeats it.
	for _, addr := range []string{missing, closed} {
		if n := strings.Count(msg, addr); n != 1 {
			t.Errorf("%s appears %d times in: %s", addr, n, msg)
		}
	}
	t.Log(err)
}

func TestDefaultEndpoints(t *testing.T) {
	got := fmt.Sprint(DefaultEndpoints())
	want := "[unix:/run/tor/control unix:/var/run/tor/control tcp:127.0.0.1:9051 tcp:127.0.0.1:9151]"
	if got != want {
		t.Errorf("DefaultEndpoints = %s", got)
	}
}
