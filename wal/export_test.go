package wal

import "time"

// WaitSnapshots waits, up to ten seconds, until no background snapshot is
// being written. A roll point reached while one is written skips its own
// snapshot, so a test that counts snapshots waits after each batch rather
// than depend on how fast a loaded machine writes them.
func (s *Store) WaitSnapshots() {
	for end := time.Now().Add(10 * time.Second); s.snapBusy.Load() && time.Now().Before(end); {
		time.Sleep(time.Millisecond)
	}
}
