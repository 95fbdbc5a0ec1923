package wal

import "encoding/binary"

// Adler-32 of every log entry, computed a 64-bit word at a time.
//
// Each commit checksums every txn it logs, on the applier's goroutine, and
// at 1 KB per setData hash/adler32's byte loop was 5–7 % of the server's
// CPU under a write load. Eight bytes b0…b7 move the two sums by
//
//	s2 += 8·s1 + 8·b0 + 7·b1 + … + 1·b7
//	s1 += b0 + b1 + … + b7
//
// and both come out of one 64-bit load: the even and the odd bytes are
// spread into four 16-bit lanes each, and one multiplication per lane set
// sums the lanes, another weighs them, the result collecting in the top
// lane. The loop takes four words a turn and adds their lanes before
// multiplying; no lane can carry into the next: the largest, the weighted
// even bytes of four words, is 4·255·(8+6+4+2).

const (
	adlerMod  = 65521
	adlerNMax = 5552 // the most bytes before s2 could pass 2^32
)

const (
	laneMask   = 0x00ff00ff00ff00ff
	laneSum    = 0x0001000100010001
	evenWeight = 8<<48 | 6<<32 | 4<<16 | 2 // lanes b0, b2, b4, b6
	oddWeight  = 7<<48 | 5<<32 | 3<<16 | 1 // lanes b1, b3, b5, b7
)

// adlerSum is the Adler-32 checksum of p, as hash/adler32.Checksum.
func adlerSum(p []byte) uint32 {
	s1, s2 := uint64(1), uint64(0)
	for len(p) > 0 {
		n := min(len(p), adlerNMax&^7)
		q := p[:n]
		p = p[n:]
		for len(q) >= 32 {
			// Four words at once: word k's bytes also weigh 8·(3-k)
			// more, which is 8 times the sum of the words before it,
			// added up over the four.
			x0 := binary.LittleEndian.Uint64(q)
			x1 := binary.LittleEndian.Uint64(q[8:])
			x2 := binary.LittleEndian.Uint64(q[16:])
			x3 := binary.LittleEndian.Uint64(q[24:])
			e0, o0 := x0&laneMask, x0>>8&laneMask
			e1, o1 := x1&laneMask, x1>>8&laneMask
			e2, o2 := x2&laneMask, x2>>8&laneMask
			e3, o3 := x3&laneMask, x3>>8&laneMask
			l0 := e0 + o0
			l01 := l0 + e1 + o1
			l012 := l01 + e2 + o2
			all := l012 + e3 + o3
			even, odd := e0+e1+e2+e3, o0+o1+o2+o3
			s2 += 32*s1 + (even*evenWeight)>>48 + (odd*oddWeight)>>48 + 8*(((l0+l01+l012)*laneSum)>>48)
			s1 += (all * laneSum) >> 48
			q = q[32:]
		}
		for len(q) >= 8 {
			x := binary.LittleEndian.Uint64(q)
			even, odd := x&laneMask, x>>8&laneMask
			s2 += 8*s1 + (even*evenWeight)>>48 + (odd*oddWeight)>>48
			s1 += ((even + odd) * laneSum) >> 48
			q = q[8:]
		}
		for _, b := range q {
			s1 += uint64(b)
			s2 += s1
		}
		s1 %= adlerMod
		s2 %= adlerMod
	}
	return uint32(s2<<16 | s1)
}
