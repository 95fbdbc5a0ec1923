package engine

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"

	"zkd/wire"
)

// The hot-path benchmarks run a server in this process and drive it over
// loopback TCP with a client that allocates nothing: it writes frames
// encoded once and reads replies into one buffer. allocs/op is therefore
// what the server allocates per request (rule 6 of the design: none, in
// steady state). A request's work includes its socket read and write and,
// for setData, its fsync and publish.
//
//	go test ./engine -run XXX -bench HotPath -benchmem

// benchServer starts a standalone server on a free port with its data in
// a temporary directory, and a session on it with znodes /b/n0../b/n15
// of 1 KB.
func benchServer(b *testing.B) (*Server, *rawClient) {
	b.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = b.TempDir()
	s := startServer(b, cfg, Options{})
	c := dialRaw(b, s.Addr().String(), 30000)
	data := make([]byte, 1024)
	c.roundTrip(b, wire.OpCreate, &wire.CreateRequest{Path: "/b", ACL: openACL})
	for i := 0; i < 16; i++ {
		c.roundTrip(b, wire.OpCreate, &wire.CreateRequest{Path: fmt.Sprintf("/b/n%d", i), Data: data, ACL: openACL})
	}
	return s, c
}

// startServer starts an in-process server of cfg on a free loopback port,
// stopped when the test ends.
func startServer(tb testing.TB, cfg *Config, opts Options) *Server {
	tb.Helper()
	cfg.ClientPortAddress = "127.0.0.1"
	cfg.ClientPort = 0
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := New(cfg, opts)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

var openACL = []wire.ACL{{Perms: wire.PermAll, ID: wire.Id{Scheme: "world", ID: "anyone"}}}

// rawClient speaks the protocol over one connection with fixed buffers.
type rawClient struct {
	nc  net.Conn
	in  []byte
	xid int32
}

// dialRaw opens a session asking for timeout ms, closed when the test
// ends.
func dialRaw(tb testing.TB, addr string, timeout int32) *rawClient {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { nc.Close() })
	c := &rawClient{nc: nc, in: make([]byte, 0, 1<<20)}
	req := wire.ConnectRequest{TimeOut: timeout, Passwd: make([]byte, 16)}
	frame, start := wire.BeginFrame(nil)
	frame = wire.EndFrame(req.Append(frame), start)
	if _, err := nc.Write(frame); err != nil {
		tb.Fatal(err)
	}
	c.replies(tb, 1)
	return c
}

// send sends one request and returns its xid.
func (c *rawClient) send(tb testing.TB, op wire.OpCode, body wire.Record) int32 {
	tb.Helper()
	if _, err := c.nc.Write(c.frame(nil, op, body)); err != nil {
		tb.Fatal(err)
	}
	return c.xid
}

// next reads one reply frame unbuffered: its xid and error code, or ok
// false once the connection has ended.
func (c *rawClient) next() (xid int32, code wire.ErrCode, ok bool) {
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		return 0, 0, false
	}
	f := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.nc, f); err != nil || len(f) < 16 {
		return 0, 0, false
	}
	return int32(binary.BigEndian.Uint32(f)), wire.ErrCode(int32(binary.BigEndian.Uint32(f[12:]))), true
}

// frame encodes one request.
func (c *rawClient) frame(dst []byte, op wire.OpCode, body wire.Record) []byte {
	c.xid++
	dst, start := wire.BeginFrame(dst)
	hdr := wire.RequestHeader{Xid: c.xid, Type: op}
	dst = hdr.Append(dst)
	if body != nil {
		dst = body.Append(dst)
	}
	return wire.EndFrame(dst, start)
}

// roundTrip sends one request and fails the benchmark unless it succeeds.
func (c *rawClient) roundTrip(tb testing.TB, op wire.OpCode, body wire.Record) {
	tb.Helper()
	c.send(tb, op, body)
	c.replies(tb, 1)
}

// replies reads n reply frames and checks that each says OK; watch
// events (xid -1) are read past and not counted.
func (c *rawClient) replies(tb testing.TB, n int) {
	buf := c.in[:0]
	off := 0
	for n > 0 {
		for len(buf)-off >= 4 {
			size := int(binary.BigEndian.Uint32(buf[off:]))
			if len(buf)-off < 4+size {
				break
			}
			f := buf[off+4 : off+4+size]
			off += 4 + size
			if len(f) >= 16 && int32(binary.BigEndian.Uint32(f)) == wire.XidNotification {
				continue
			}
			// A connect reply has no reply header; every other reply
			// carries its error code at bytes 12..16.
			if size != 36 && size != 37 && len(f) >= 16 && binary.BigEndian.Uint32(f[12:]) != 0 {
				tb.Fatalf("request failed: error %d", int32(binary.BigEndian.Uint32(f[12:])))
			}
			n--
		}
		if n == 0 {
			break
		}
		rest := copy(buf, buf[off:])
		buf, off = buf[:rest], 0
		c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		m, err := c.nc.Read(buf[len(buf):cap(buf)])
		if err != nil {
			tb.Fatal(err)
		}
		buf = buf[:len(buf)+m]
	}
	c.in = buf[:0]
}

// BenchmarkHotPath measures one request of each hot kind, pipelined 16
// at a time on one connection, with the server's allocations per request.
func BenchmarkHotPath(b *testing.B) {
	data := make([]byte, 1024)
	cases := []struct {
		name string
		op   wire.OpCode
		body func(i int) wire.Record
		// op2 and body2, when set, make every other request: a read
		// behind a write of its session waits for it in the applier.
		op2   wire.OpCode
		body2 func(i int) wire.Record
	}{
		{"ping", wire.OpPing, func(int) wire.Record { return nil }, 0, nil},
		{"getData", wire.OpGetData, func(i int) wire.Record { return &wire.PathWatchRequest{Path: fmt.Sprintf("/b/n%d", i)} }, 0, nil},
		{"exists", wire.OpExists, func(i int) wire.Record { return &wire.PathWatchRequest{Path: fmt.Sprintf("/b/n%d", i)} }, 0, nil},
		{"getChildren", wire.OpGetChildren, func(int) wire.Record { return &wire.PathWatchRequest{Path: "/b"} }, 0, nil},
		{"getChildren2", wire.OpGetChildren2, func(int) wire.Record { return &wire.PathWatchRequest{Path: "/b"} }, 0, nil},
		{"setData", wire.OpSetData, func(i int) wire.Record {
			return &wire.SetDataRequest{Path: fmt.Sprintf("/b/n%d", i), Data: data, Version: -1}
		}, 0, nil},
		{"setData+getData", wire.OpSetData, func(i int) wire.Record {
			return &wire.SetDataRequest{Path: fmt.Sprintf("/b/n%d", i), Data: data, Version: -1}
		}, wire.OpGetData, func(i int) wire.Record { return &wire.PathWatchRequest{Path: fmt.Sprintf("/b/n%d", i-1)} }},
	}
	const depth = 16
	for _, tc := range cases {
		b.Run("op="+tc.name, func(b *testing.B) {
			_, c := benchServer(b)
			var batch []byte
			for i := 0; i < depth; i++ {
				if tc.op2 != 0 && i%2 == 1 {
					batch = c.frame(batch, tc.op2, tc.body2(i))
				} else {
					batch = c.frame(batch, tc.op, tc.body(i))
				}
			}
			runBatches(b, c, [][]byte{batch}, depth)
		})
	}
	// setData spread over 10,000 znodes, as zkbench's saturate load does:
	// a published version shares the B-tree's nodes, so the first write
	// to a leaf after a publish copies it, and a batch of writes touches
	// many leaves.
	b.Run("op=setData-10k", func(b *testing.B) {
		_, c := benchServer(b)
		const znodes = 10000
		var batch []byte
		for i := 16; i < znodes; i++ {
			batch = c.frame(batch, wire.OpCreate, &wire.CreateRequest{Path: fmt.Sprintf("/b/n%d", i), Data: data, ACL: openACL})
			if (i+1)%depth == 0 {
				if _, err := c.nc.Write(batch); err != nil {
					b.Fatal(err)
				}
				c.replies(b, depth)
				batch = batch[:0]
			}
		}
		var batches [][]byte
		for i := 0; i < znodes; i += depth {
			batch = nil
			for k := 0; k < depth; k++ {
				// A stride, so that a batch's writes fall in different leaves.
				n := (i + k*(znodes/depth)) % znodes
				batch = c.frame(batch, wire.OpSetData, &wire.SetDataRequest{Path: fmt.Sprintf("/b/n%d", n), Data: data, Version: -1})
			}
			batches = append(batches, batch)
		}
		runBatches(b, c, batches, depth)
	})
}

// runBatches sends the batches of depth requests round after round, each
// once its replies are in, and reports the server's allocations per
// request: allocs/op, and mallocs/req with its fraction (allocs/op rounds
// down, hiding what a publish per commit costs).
func runBatches(b *testing.B, c *rawClient, batches [][]byte, depth int) {
	run := func(rounds int) {
		for r := 0; r < rounds; r++ {
			if _, err := c.nc.Write(batches[r%len(batches)]); err != nil {
				b.Fatal(err)
			}
			c.replies(b, depth)
		}
	}
	run(max(200, 2*len(batches))) // warm every buffer up
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	rounds := (b.N + depth - 1) / depth
	run(rounds)
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(rounds*depth), "mallocs/req")
}
