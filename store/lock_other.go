//go:build !unix

package store

import (
	"os"
	"sync"
)

// Without flock, locks only serialize pulls within one process.
var (
	lockMu   sync.Mutex
	lockHeld = map[string]int{} // path -> -1 exclusive, n>0 shared holders
	lockOf   = map[*os.File]string{}
)

func tryLock(f *os.File, exclusive bool) (bool, error) {
	lockMu.Lock()
	defer lockMu.Unlock()
	p := f.Name()
	n := lockHeld[p]
	if n < 0 || (exclusive && n > 0) {
		return false, nil
	}
	if exclusive {
		lockHeld[p] = -1
	} else {
		lockHeld[p] = n + 1
	}
	lockOf[f] = p
	return true, nil
}

func unlockFile(f *os.File) {
	lockMu.Lock()
	defer lockMu.Unlock()
	p, ok := lockOf[f]
	if !ok {
		return
	}
	delete(lockOf, f)
	if n := lockHeld[p]; n > 1 {
		lockHeld[p] = n - 1
	} else {
		delete(lockHeld, p)
	}
}
