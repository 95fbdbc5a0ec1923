// Package nullserver is a server that does no work: it accepts ZooKeeper
// sessions and answers every request at once — getData with a canned
// reply of a fixed size, everything else with an empty OK — so that a
// benchmark against it measures the load generator and the machine, the
// ceiling no real server can pass.
package nullserver

import (
	"bufio"
	"net"
	"sync"
	"sync/atomic"

	"zkd/wire"
)

// Server is a running null server.
type Server struct {
	ln      net.Listener
	getData []byte // the canned getData reply body
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	served  atomic.Int64
	// Swap, when set, makes the server answer each pair of pipelined
	// requests in reverse order: a broken server, for client tests.
	Swap bool
}

// Start listens on addr ("127.0.0.1:0" for any port) and serves getData
// with dataSize bytes.
func Start(addr string, dataSize int) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	resp := wire.GetDataResponse{Data: make([]byte, dataSize), Stat: wire.Stat{Czxid: 1, Mzxid: 1, DataLength: int32(dataSize)}}
	s := &Server{ln: ln, getData: resp.Append(nil), conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the address it listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Served is the number of requests answered so far.
func (s *Server) Served() int64 { return s.served.Load() }

// Close stops the server and drops every connection.
func (s *Server) Close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	var next atomic.Int64
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c, 0x100000000+next.Add(1))
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// serve answers one connection: read what arrived, answer every complete
// request in it, write the answers in one go.
func (s *Server) serve(c net.Conn, session int64) {
	fr := wire.NewFrameReader(0)
	in := make([]byte, 64<<10)
	var out []byte
	w := bufio.NewWriterSize(c, 256<<10)
	handshake := true
	var held []byte // Swap: the reply held back to go after the next one
	for {
		n, err := c.Read(in)
		if n > 0 {
			fr.Write(in[:n])
			out = out[:0]
			for {
				p, err := fr.Next()
				if err != nil || p == nil {
					if err != nil {
						return
					}
					break
				}
				if handshake {
					handshake = false
					var req wire.ConnectRequest
					if _, err := req.Decode(p, wire.Alias); err != nil {
						return
					}
					resp := wire.ConnectResponse{TimeOut: req.TimeOut, SessionID: session, Passwd: make([]byte, 16), HasReadOnly: req.HasReadOnly}
					out = wire.AppendFrame(out, resp.Append(nil))
					continue
				}
				if len(p) < 8 {
					return
				}
				xid := int32(uint32(p[0])<<24 | uint32(p[1])<<16 | uint32(p[2])<<8 | uint32(p[3]))
				op := wire.OpCode(int32(uint32(p[4])<<24 | uint32(p[5])<<16 | uint32(p[6])<<8 | uint32(p[7])))
				var start int
				mark := len(out)
				out, start = wire.BeginFrame(out)
				out = wire.AppendReplyHeader(out, xid, 1, wire.ErrOK)
				if op == wire.OpGetData {
					out = append(out, s.getData...)
				}
				out = wire.EndFrame(out, start)
				s.served.Add(1)
				if s.Swap && xid > 0 {
					if held == nil {
						held = append(held, out[mark:]...)
						out = out[:mark]
					} else {
						out = append(out, held...)
						held = nil
					}
				}
				if op == wire.OpCloseSession {
					w.Write(out)
					w.Flush()
					return
				}
			}
			if _, err := w.Write(out); err != nil {
				return
			}
			if err := w.Flush(); err != nil {
				return
			}
		}
		if err != nil { // io.EOF included: the client went away
			return
		}
	}
}
