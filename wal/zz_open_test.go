package wal_test

import (
	"os"
	"runtime"
	"testing"

	"zkd/wal"
)

func TestZZOpen(t *testing.T) {
	dir := os.Getenv("ZZ_DIR")
	if dir == "" {
		t.Skip()
	}
	s, err := wal.Open(wal.Options{Dir: dir, Logger: quiet, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	t.Logf("heap alloc %d MB, total alloc %d MB, sys %d MB, recovery %+v", m.HeapAlloc>>20, m.TotalAlloc>>20, m.Sys>>20, s.Recovery())
	s.Close()
}
