package engine

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"

	"zkd/wire"
)

// TestPacketConnKeepsEachPacketsData reads quorum packets that arrive a
// few at a time, as a leader's PROPOSALs do, and keeps them all: each
// packet's data and auth ids must stay as sent after the reads that
// follow, which reuse the reader's buffer, and packets must not share
// room in the slab their data is copied to.
func TestPacketConnKeepsEachPacketsData(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var sent []wire.QuorumPacket
	for i := range 300 {
		p := wire.QuorumPacket{Type: wire.PacketProposal, Zxid: int64(i)}
		switch {
		case i%50 == 7:
			p.Data = nil // an ACK's
		case i%50 == 8:
			p.Data = []byte{}
		case i%100 == 9:
			p.Data = bytes.Repeat([]byte{byte(i)}, slabSize/2) // its own allocation
		default:
			p.Data = bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 1+i*7%900)
		}
		if i%30 == 0 {
			p.AuthInfo = []wire.Id{{Scheme: "digest", ID: fmt.Sprintf("user%d", i)}}
		}
		sent = append(sent, p)
	}
	go func() {
		// Three packets to a write; the pipe hands each write over in
		// the reads the reader makes.
		for i := 0; i < len(sent); i += 3 {
			var buf []byte
			for _, p := range sent[i:min(i+3, len(sent))] {
				buf = p.Append(buf)
			}
			if _, err := a.Write(buf); err != nil {
				return
			}
		}
	}()
	pc := newPacketConn(b)
	before := time.Now()
	var got []wire.QuorumPacket
	for range sent {
		p, err := pc.read(5 * time.Second)
		if err != nil {
			t.Fatalf("packet %d: %v", len(got), err)
		}
		if pc.at.Before(before) || pc.at.After(time.Now()) {
			t.Fatalf("packet %d: read at %v, outside the read's %v..now", len(got), pc.at, before)
		}
		if (p.Data == nil) != (sent[len(got)].Data == nil) {
			t.Fatalf("packet %d: data nil %v, sent nil %v", len(got), p.Data == nil, sent[len(got)].Data == nil)
		}
		// Each copy's capacity ends with it: what is appended to one
		// packet's data is not written over by the next packet's.
		p.Data = append(p.Data, 0xff)
		got = append(got, p)
	}
	for i, p := range got {
		w := sent[i]
		if p.Type != w.Type || p.Zxid != w.Zxid || !bytes.Equal(p.Data, append(w.Data[:len(w.Data):len(w.Data)], 0xff)) {
			t.Fatalf("packet %d: got type %d zxid %d data %d bytes, want %d %d %d bytes and the byte appended",
				i, p.Type, p.Zxid, len(p.Data), w.Type, w.Zxid, len(w.Data))
		}
		if fmt.Sprint(p.AuthInfo) != fmt.Sprint(w.AuthInfo) {
			t.Fatalf("packet %d: auth %v, want %v", i, p.AuthInfo, w.AuthInfo)
		}
	}
}
