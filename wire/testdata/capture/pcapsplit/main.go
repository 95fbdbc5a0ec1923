// Command pcapsplit reads a tcpdump capture of a ZooKeeper ensemble's
// election and quorum ports on the loopback interface, puts each TCP
// connection's two byte streams back together, and cuts them into the
// messages the golden tests decode, one per line:
//
//	<conn> <dir> <kind> <hex>
//
// conn is e1, e2, … for election connections and q1, q2, … for quorum
// connections, in the order they were opened; dir is > for the side that
// opened the connection and < for the other; kind is hello (the opener's
// first message on the election port), note (a notification, with its
// length prefix) or packet (a QuorumPacket). The cutting follows only the
// length fields, so the vectors do not depend on the decoders they test.
// After a SNAP packet comes the leader's tree, kind snap: sessions, ACL
// lists and znodes by their lengths, up to the "/" that ends the znodes
// and the signature after it.
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
)

type endpoint struct {
	ip   [4]byte
	port uint16
}

func (e endpoint) String() string {
	return fmt.Sprintf("%d.%d.%d.%d:%d", e.ip[0], e.ip[1], e.ip[2], e.ip[3], e.port)
}

type flow struct{ src, dst endpoint }

// stream is one direction of a connection: its segments by offset from
// the first byte after the SYN.
type stream struct {
	isn     uint32
	haveISN bool
	segs    map[uint32][]byte
}

func (s *stream) bytes() []byte {
	offs := make([]uint32, 0, len(s.segs))
	for o := range s.segs {
		offs = append(offs, o)
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	var out []byte
	for _, o := range offs {
		seg := s.segs[o]
		switch {
		case int(o) > len(out):
			fmt.Fprintf(os.Stderr, "pcapsplit: %d bytes missing before offset %d\n", int(o)-len(out), o)
			return out
		case int(o)+len(seg) <= len(out):
			continue // a retransmission
		}
		out = append(out, seg[len(out)-int(o):]...)
	}
	return out
}

type conn struct {
	opener, acceptor endpoint
	order            int
}

func main() {
	electionPort := flag.Int("election-port", 3888, "the servers' election port")
	quorumPort := flag.Int("quorum-port", 2888, "the servers' quorum port")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: pcapsplit [-election-port N] [-quorum-port N] capture.pcap")
		os.Exit(2)
	}
	data, err := os.ReadFile(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "pcapsplit:", err)
		os.Exit(1)
	}
	streams, conns, err := parse(data)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pcapsplit:", err)
		os.Exit(1)
	}
	sort.Slice(conns, func(i, j int) bool { return conns[i].order < conns[j].order })
	ne, nq := 0, 0
	for _, c := range conns {
		out := streams[flow{c.opener, c.acceptor}]
		in := streams[flow{c.acceptor, c.opener}]
		var ob, ib []byte
		if out != nil {
			ob = out.bytes()
		}
		if in != nil {
			ib = in.bytes()
		}
		switch int(c.acceptor.port) {
		case *electionPort:
			ne++
			name := fmt.Sprintf("e%d", ne)
			fmt.Printf("# %s: %v opened to %v\n", name, c.opener, c.acceptor)
			ob = hello(os.Stdout, name, ob)
			notes(os.Stdout, name, ">", ob)
			notes(os.Stdout, name, "<", ib)
		case *quorumPort:
			nq++
			name := fmt.Sprintf("q%d", nq)
			fmt.Printf("# %s: %v opened to %v\n", name, c.opener, c.acceptor)
			packets(os.Stdout, name, ">", ob)
			packets(os.Stdout, name, "<", ib)
		}
	}
}

// parse reads a pcap file of Ethernet (loopback) or Linux cooked frames.
func parse(data []byte) (map[flow]*stream, []*conn, error) {
	if len(data) < 24 {
		return nil, nil, fmt.Errorf("not a pcap file")
	}
	var order binary.ByteOrder
	switch binary.LittleEndian.Uint32(data) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		order = binary.LittleEndian
	default:
		order = binary.BigEndian
	}
	link := order.Uint32(data[20:])
	streams := map[flow]*stream{}
	conns := map[flow]*conn{}
	var list []*conn
	for off, n := 24, 0; off+16 <= len(data); n++ {
		caplen := int(order.Uint32(data[off+8:]))
		if off+16+caplen > len(data) {
			break
		}
		frame := data[off+16 : off+16+caplen]
		off += 16 + caplen
		var ip []byte
		switch link {
		case 1: // Ethernet
			if len(frame) < 14 || binary.BigEndian.Uint16(frame[12:]) != 0x0800 {
				continue
			}
			ip = frame[14:]
		case 113: // Linux cooked
			if len(frame) < 16 || binary.BigEndian.Uint16(frame[14:]) != 0x0800 {
				continue
			}
			ip = frame[16:]
		default:
			return nil, nil, fmt.Errorf("link type %d: capture with -i lo", link)
		}
		if len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != 6 {
			continue
		}
		ihl := int(ip[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if total > len(ip) || ihl > total {
			return nil, nil, fmt.Errorf("packet %d: truncated (capture with -s 0)", n)
		}
		tcp := ip[ihl:total]
		if len(tcp) < 20 {
			continue
		}
		var f flow
		copy(f.src.ip[:], ip[12:16])
		copy(f.dst.ip[:], ip[16:20])
		f.src.port = binary.BigEndian.Uint16(tcp)
		f.dst.port = binary.BigEndian.Uint16(tcp[2:])
		seq := binary.BigEndian.Uint32(tcp[4:])
		flags := tcp[13]
		payload := tcp[int(tcp[12]>>4)*4:]
		syn, ack := flags&0x02 != 0, flags&0x10 != 0
		s := streams[f]
		if syn {
			// A new connection on this 4-tuple starts a fresh stream.
			s = &stream{isn: seq + 1, haveISN: true, segs: map[uint32][]byte{}}
			streams[f] = s
			if !ack {
				c := &conn{opener: f.src, acceptor: f.dst, order: n}
				conns[f] = c
				list = append(list, c)
			}
			continue
		}
		if s == nil || !s.haveISN || len(payload) == 0 {
			continue // a connection already open when the capture began
		}
		o := seq - s.isn
		if prev, ok := s.segs[o]; !ok || len(prev) < len(payload) {
			s.segs[o] = bytes.Clone(payload)
		}
	}
	return streams, list, nil
}

func line(w io.Writer, conn, dir, kind string, b []byte) {
	fmt.Fprintf(w, "%s %s %s %s\n", conn, dir, kind, hex.EncodeToString(b))
}

// hello writes the opener's first message and returns what follows it.
func hello(w io.Writer, conn string, b []byte) []byte {
	if len(b) < 8 {
		return b
	}
	n := 8
	if int64(binary.BigEndian.Uint64(b)) < 0 {
		if len(b) < 20 {
			return b
		}
		n = 20 + int(int32(binary.BigEndian.Uint32(b[16:])))
		if n > len(b) {
			return b
		}
	}
	line(w, conn, ">", "hello", b[:n])
	return b[n:]
}

// notes writes the length-prefixed notifications in b.
func notes(w io.Writer, conn, dir string, b []byte) {
	for len(b) >= 4 {
		n := 4 + int(int32(binary.BigEndian.Uint32(b)))
		if n < 4 || n > len(b) {
			break
		}
		line(w, conn, dir, "note", b[:n])
		b = b[n:]
	}
	if len(b) > 0 {
		fmt.Fprintf(w, "# %s %s: %d bytes at the end that make no whole notification\n", conn, dir, len(b))
	}
}

// packets writes the QuorumPackets in b, up to a SNAP.
func packets(w io.Writer, conn, dir string, b []byte) {
	for len(b) > 0 {
		n, ok := packetLen(b)
		if !ok {
			fmt.Fprintf(w, "# %s %s: %d bytes at the end that make no whole packet\n", conn, dir, len(b))
			return
		}
		line(w, conn, dir, "packet", b[:n])
		snap := binary.BigEndian.Uint32(b) == 15 // SNAP: the tree follows
		b = b[n:]
		if snap {
			m, ok := snapLen(b)
			if !ok {
				fmt.Fprintf(w, "# %s %s: %d bytes after SNAP that make no whole snapshot\n", conn, dir, len(b))
				return
			}
			line(w, conn, dir, "snap", b[:m])
			b = b[m:]
		}
	}
}

// packetLen is the length of the QuorumPacket at the start of b: type,
// zxid, a buffer, and a vector of (ustring, ustring) identities.
func packetLen(b []byte) (int, bool) {
	off := 12
	field := func() bool {
		if off+4 > len(b) {
			return false
		}
		n := int(int32(binary.BigEndian.Uint32(b[off:])))
		off += 4
		if n > 0 {
			off += n
		}
		return off <= len(b)
	}
	if !field() { // data
		return 0, false
	}
	if off+4 > len(b) {
		return 0, false
	}
	count := int(int32(binary.BigEndian.Uint32(b[off:])))
	off += 4
	for i := 0; i < count; i++ {
		if !field() || !field() {
			return 0, false
		}
	}
	return off, true
}

// snapLen is the length of the tree streamed after a SNAP: int32 count of
// (int64 session, int32 timeout); int32 count of (int64 key, int32 count
// of (int32 perms, ustring scheme, ustring id)); znodes of (ustring path,
// buffer data, int64 acl, 60-byte stat) until the path "/"; a ustring
// signature.
func snapLen(b []byte) (int, bool) {
	off := 0
	i32 := func() (int, bool) {
		if off+4 > len(b) {
			return 0, false
		}
		v := int(int32(binary.BigEndian.Uint32(b[off:])))
		off += 4
		return v, true
	}
	skip := func(n int) bool { off += n; return off <= len(b) }
	str := func() (string, bool) {
		n, ok := i32()
		if !ok {
			return "", false
		}
		if n <= 0 {
			return "", true
		}
		if !skip(n) {
			return "", false
		}
		return string(b[off-n : off]), true
	}
	sessions, ok := i32()
	if !ok || !skip(12*max(sessions, 0)) {
		return 0, false
	}
	lists, ok := i32()
	if !ok {
		return 0, false
	}
	for ; lists > 0; lists-- {
		if !skip(8) {
			return 0, false
		}
		n, ok := i32()
		if !ok {
			return 0, false
		}
		for ; n > 0; n-- {
			if !skip(4) {
				return 0, false
			}
			if _, ok := str(); !ok {
				return 0, false
			}
			if _, ok := str(); !ok {
				return 0, false
			}
		}
	}
	for {
		path, ok := str()
		if !ok {
			return 0, false
		}
		if path == "/" {
			break
		}
		if _, ok := str(); !ok || !skip(8+60) {
			return 0, false
		}
	}
	if _, ok := str(); !ok { // the signature
		return 0, false
	}
	return off, true
}
