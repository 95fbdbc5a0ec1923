package wal

import "testing"

func TestLastNonZero(t *testing.T) {
	for _, tc := range []struct {
		b    []byte
		want int
	}{
		{nil, -1},
		{make([]byte, 10000), -1},
		{[]byte{1}, 0},
		{append([]byte{0, 7}, make([]byte, 9000)...), 1},
		{append(make([]byte, 5000), 3), 5000},
		{append(append(make([]byte, 4097), 9), make([]byte, 4096)...), 4097},
	} {
		if got := lastNonZero(tc.b); got != tc.want {
			t.Errorf("lastNonZero(%d bytes) = %d, want %d", len(tc.b), got, tc.want)
		}
	}
}
