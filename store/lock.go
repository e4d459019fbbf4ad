package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// lockPath takes a lock on the file p (created if needed), waiting until it
// is free or ctx ends. onWait, if set, is called once when the lock is busy.
// The returned function releases the lock.
func lockPath(ctx context.Context, p string, exclusive bool, onWait func()) (func(), error) {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, diskError(p, err)
	}
	delay := 20 * time.Millisecond
	waited := false
	for {
		ok, err := tryLock(f, exclusive)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("locking %s: %v", p, err)
		}
		if ok {
			return func() { unlockFile(f); f.Close() }, nil
		}
		if !waited && onWait != nil {
			onWait()
		}
		waited = true
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, context.Cause(ctx)
		case <-t.C:
		}
		if delay < 500*time.Millisecond {
			delay *= 2
		}
	}
}

// lockStore takes the store-wide lock: shared while pulling (blobs may be
// created), exclusive while removing (blobs may be collected).
func (s *Store) lockStore(ctx context.Context, exclusive bool) (func(), error) {
	return lockPath(ctx, filepath.Join(s.Home, "tmp", "store.lock"), exclusive, nil)
}
