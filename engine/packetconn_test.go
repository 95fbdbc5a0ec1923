package engine

import (
	"bytes"
	"fmt"
	"io"
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

// TestPacketWriterSendsWhatAppendEncodes writes batches of quorum packets
// as a leader's and a follower's senders do, over TCP (where long data
// goes out from where it lies, in one writev) and over a pipe (copied):
// the bytes the other end reads must be the packets' encodings back to
// back, whatever the mix of short, long, nil and empty data and auth ids,
// and batches with more pieces than one writev takes.
func TestPacketWriterSendsWhatAppendEncodes(t *testing.T) {
	var batches [][]wire.QuorumPacket
	for _, n := range []int{1, 3, 700, 2} { // 700 long packets: 1,400 pieces and more
		var batch []wire.QuorumPacket
		for i := range n {
			p := wire.QuorumPacket{Type: wire.PacketProposal, Zxid: int64(len(batches)<<20 | i)}
			switch i % 7 {
			case 1:
				p.Type, p.Data = wire.PacketCommit, nil
			case 2:
				p.Data = []byte{}
			case 3:
				p.Data = bytes.Repeat([]byte{byte(i)}, sharedData-1)
			case 4:
				p.Data = bytes.Repeat([]byte{byte(i)}, sharedData)
			default:
				p.Data = bytes.Repeat([]byte{byte(i), byte(n)}, 300+i%1000)
			}
			if i%5 == 0 {
				p.AuthInfo = []wire.Id{{Scheme: "digest", ID: fmt.Sprintf("user%d", i)}}
			}
			batch = append(batch, p)
		}
		batches = append(batches, batch)
	}
	var want []byte
	for _, batch := range batches {
		for i := range batch {
			want = batch[i].Append(want)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dialed, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	accepted, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	pa, pb := net.Pipe()
	for _, link := range []struct {
		name string
		w, r net.Conn
	}{{"tcp", dialed, accepted}, {"pipe", pa, pb}} {
		t.Run(link.name, func(t *testing.T) {
			defer link.w.Close()
			defer link.r.Close()
			done := make(chan error, 1)
			go func() {
				var w packetWriter
				for _, batch := range batches {
					if err := w.write(link.w, batch); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			got := make([]byte, len(want))
			link.r.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(link.r, got); err != nil {
				t.Fatalf("read %v", err)
			}
			if err := <-done; err != nil {
				t.Fatalf("write: %v", err)
			}
			if i := firstDifference(got, want); i >= 0 {
				t.Fatalf("%d bytes read; first difference at byte %d of %d", len(got), i, len(want))
			}
		})
	}
	for _, batch := range batches {
		for i := range batch {
			if batch[i].Data != nil && len(batch[i].Data) >= sharedData && batch[i].Data[0] != byte(i) {
				t.Fatalf("packet %d's data changed by the write", i)
			}
		}
	}
}

// firstDifference is the first index where a and b differ, -1 if none.
func firstDifference(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}
