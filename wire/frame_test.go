package wire

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

func frames(payloads ...[]byte) []byte {
	var b []byte
	for _, p := range payloads {
		b = AppendFrame(b, p)
	}
	return b
}

// drain returns copies of every complete frame the reader holds.
func drain(t *testing.T, r *FrameReader) [][]byte {
	t.Helper()
	var out [][]byte
	for {
		p, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if p == nil {
			return out
		}
		out = append(out, append([]byte(nil), p...))
	}
}

func TestSplitFrame(t *testing.T) {
	stream := frames([]byte("one"), nil, []byte("three"))
	var got []string
	for len(stream) > 0 {
		p, n, err := SplitFrame(stream, 16)
		if err != nil || n == 0 {
			t.Fatalf("split: n=%d err=%v", n, err)
		}
		got = append(got, string(p))
		stream = stream[n:]
	}
	if want := []string{"one", "", "three"}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("got %q", got)
	}
	// Incomplete: no frame, no error.
	for _, b := range [][]byte{nil, {0, 0}, {0, 0, 0, 5, 'a'}} {
		if p, n, err := SplitFrame(b, 16); p != nil || n != 0 || err != nil {
			t.Errorf("%x: %q %d %v", b, p, n, err)
		}
	}
}

func TestSplitFrameLimits(t *testing.T) {
	atLimit := frames(make([]byte, 16))
	if _, n, err := SplitFrame(atLimit, 16); err != nil || n != 20 {
		t.Fatalf("frame at the limit: n=%d err=%v", n, err)
	}
	// Over the limit and negative lengths fail on the prefix alone.
	for _, c := range []struct {
		prefix []byte
		want   error
	}{
		{[]byte{0, 0, 0, 17}, ErrFrameTooLarge},
		{[]byte{0x7f, 0xff, 0xff, 0xff}, ErrFrameTooLarge},
		{[]byte{0xff, 0xff, 0xff, 0xff}, ErrNegativeFrame},
		{[]byte{0x80, 0, 0, 0}, ErrNegativeFrame},
	} {
		if _, _, err := SplitFrame(c.prefix, 16); !errors.Is(err, c.want) {
			t.Errorf("%x: err %v, want %v", c.prefix, err, c.want)
		}
	}
	// The default limit is ZooKeeper's jute.maxbuffer default.
	big := []byte{0x00, 0x10, 0x00, 0x00} // 0x100000 = 0xfffff + 1
	if _, _, err := SplitFrame(big, DefaultMaxBuffer); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("1 MiB frame: err %v", err)
	}
}

// Feeding a stream in random pieces must yield the same frames as feeding it
// whole, however it is cut.
func TestFrameReaderReassembles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var payloads [][]byte
	for i := 0; i < 200; i++ {
		p := make([]byte, rng.IntN(300))
		for j := range p {
			p[j] = byte(rng.Uint32())
		}
		payloads = append(payloads, p)
	}
	stream := frames(payloads...)
	for trial := 0; trial < 50; trial++ {
		r := NewFrameReader(1024)
		var got [][]byte
		for rest := stream; len(rest) > 0; {
			n := 1 + rng.IntN(700)
			if trial == 0 {
				n = 1 // byte by byte
			}
			n = min(n, len(rest))
			r.Write(rest[:n])
			rest = rest[n:]
			got = append(got, drain(t, r)...)
		}
		if len(got) != len(payloads) {
			t.Fatalf("trial %d: %d frames, want %d", trial, len(got), len(payloads))
		}
		for i := range got {
			if !bytes.Equal(got[i], payloads[i]) {
				t.Fatalf("trial %d: frame %d differs", trial, i)
			}
		}
		if r.Buffered() != 0 {
			t.Fatalf("trial %d: %d bytes left buffered", trial, r.Buffered())
		}
	}
}

// A client that announces a huge frame and then trickles bytes must be
// refused at the prefix, before the reader buffers anything for it.
func TestFrameReaderRefusesOversizeBeforeBuffering(t *testing.T) {
	r := NewFrameReader(0) // default limit
	r.Write(frames([]byte("ok")))
	r.Write([]byte{0x00, 0x10, 0x00}) // first 3 bytes of a 1 MiB length
	if p, err := r.Next(); err != nil || string(p) != "ok" {
		t.Fatalf("first frame: %q %v", p, err)
	}
	if p, err := r.Next(); p != nil || err != nil {
		t.Fatalf("partial prefix: %q %v", p, err)
	}
	r.Write([]byte{0x00, 'x', 'y'})
	if _, err := r.Next(); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err %v, want ErrFrameTooLarge", err)
	}
	// The error sticks: the stream cannot be resynchronised.
	r.Write(frames([]byte("later")))
	if _, err := r.Next(); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("after error: %v", err)
	}
	if r.Buffered() != 0 {
		t.Fatalf("%d bytes held after refusing", r.Buffered())
	}
}

// The reader's buffer stays bounded by the largest frame plus one read, not
// by the total bytes that went through it.
func TestFrameReaderMemoryIsBounded(t *testing.T) {
	r := NewFrameReader(256)
	chunk := frames(make([]byte, 100), make([]byte, 100), make([]byte, 50))
	for i := 0; i < 10000; i++ {
		r.Write(chunk[:len(chunk)-7]) // leave a partial frame behind
		drain(t, r)
		r.Write(chunk[len(chunk)-7:])
		drain(t, r)
	}
	if c := cap(r.buf); c > 4*len(chunk) {
		t.Fatalf("buffer grew to %d bytes", c)
	}
}

func TestBeginEndFrame(t *testing.T) {
	dst := []byte("previous")
	dst, start := BeginFrame(dst)
	dst = AppendReplyHeader(dst, 1, 2, ErrOK)
	dst = EndFrame(dst, start)
	p, n, err := SplitFrame(dst[len("previous"):], DefaultMaxBuffer)
	if err != nil || n != 20 || len(p) != ReplyHeaderSize {
		t.Fatalf("%x %d %v", p, n, err)
	}
}
