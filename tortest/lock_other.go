//go:build !unix

package tortest

import "context"

// startLock is a no-op where flock is not available: concurrent start-ups
// in separate processes are then not serialised.
type startLock struct{}

func acquireStartLock(ctx context.Context) (*startLock, error) { return &startLock{}, ctx.Err() }

func (l *startLock) release() {}

type dirLock struct{}

func lockDir(dir string) (*dirLock, error) { return &dirLock{}, nil }

func (l *dirLock) release() {}

// abandoned cannot tell without flock, so nothing is swept.
func abandoned(dir string) bool { return false }
