package wal

import (
	"bytes"
	"hash/adler32"
	"math/rand"
	"testing"
)

// TestAdler32MatchesTheStandardChecksum checks the log's Adler-32 against
// hash/adler32 (the checksum ZooKeeper's readers verify) on every length
// up to a few blocks, on random bytes and on the all-0xff input that
// drives both sums to their largest.
func TestAdler32MatchesTheStandardChecksum(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	buf := make([]byte, 3*adlerNMax+17)
	r.Read(buf)
	ff := bytes.Repeat([]byte{0xff}, len(buf))
	// Every length where the word loops or a chunk of adlerNMax bytes
	// ends differently: all up to 512 bytes, all within 64 of a chunk's
	// end, and every 61st between.
	for n := 0; n <= len(buf); n++ {
		if d := n % adlerNMax; n > 512 && d > 64 && d < adlerNMax-64 && n%61 != 0 {
			continue
		}
		for _, p := range [][]byte{buf[:n], ff[:n], buf[len(buf)-n:]} {
			if got, want := adlerSum(p), adler32.Checksum(p); got != want {
				t.Fatalf("%d bytes: adlerSum %#08x, want %#08x", n, got, want)
			}
		}
	}
	big := bytes.Repeat([]byte{0xff}, 1<<20)
	if got, want := adlerSum(big), adler32.Checksum(big); got != want {
		t.Fatalf("1 MB of 0xff: adlerSum %#08x, want %#08x", got, want)
	}
}

func BenchmarkAdler32(b *testing.B) {
	p := make([]byte, 1100)
	rand.New(rand.NewSource(1)).Read(p)
	b.Run("zkd", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			adlerSum(p)
		}
	})
	b.Run("hash-adler32", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			adler32.Checksum(p)
		}
	})
}
