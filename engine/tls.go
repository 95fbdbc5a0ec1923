package engine

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"zkd/internal/keystore"
	"zkd/wire"
)

// The secure client port (secureClientPort): TLS with ZooKeeper's ssl.*
// settings. A TLS connection is served like any other: after the
// handshake, one goroutine pair carries its bytes between the TLS session
// and one end of a socket pair whose other end an event loop owns, as it
// owns a plain TCP connection. The connection keeps the client's address
// (ip identity, maxClientCnxns) and, with ZooKeeper's x509 provider, the
// identity of its certificate.

// X509Provider is the class of ZooKeeper's x509 authentication provider.
const X509Provider = "org.apache.zookeeper.server.auth.X509AuthenticationProvider"

// secureSettings are what the secure port serves with.
type secureSettings struct {
	addr  string
	tls   *tls.Config
	x509  bool   // the x509 provider is configured: certificates are identities
	super string // zookeeper.X509AuthenticationProvider.superUser
	// unified serves TLS on the client port too, beside plaintext
	// (client.portUnification).
	unified bool
}

// extra is an Extra setting, given with or without the "zookeeper."
// prefix, and the key it was given as.
func (c *Config) extra(key string) (string, string, bool) {
	if v, ok := c.Extra[key]; ok {
		return strings.TrimSpace(v), key, true
	}
	v, ok := c.Extra["zookeeper."+key]
	return strings.TrimSpace(v), "zookeeper." + key, ok
}

// secure reads the secure port's settings; nil when secureClientPort is
// not set (nor client.portUnification). A setting that cannot serve (no
// key store, a store that does not load, an unknown protocol or cipher
// suite) is an error naming it.
func (c *Config) secure(log *slog.Logger) (*secureSettings, error) {
	if err := c.checkFlags("client.portUnification", "client.certReload"); err != nil {
		return nil, err
	}
	v, key, ok := c.extra("secureClientPort")
	unified := c.flag("client.portUnification")
	if (!ok || v == "") && !unified {
		return nil, nil
	}
	st := &secureSettings{x509: c.TreeOptions().X509ACLs, unified: unified}
	if ok && v != "" {
		port, err := strconv.Atoi(v)
		if err != nil || port < 0 || port > 65535 {
			return nil, c.ErrorAt(key, "%q is not a port", v)
		}
		host := c.ClientPortAddress
		if a, _, ok := c.extra("secureClientPortAddress"); ok && a != "" {
			host = a
		}
		st.addr = net.JoinHostPort(host, strconv.Itoa(port))
	} else {
		key = "client.portUnification"
	}
	st.super, _, _ = c.extra("X509AuthenticationProvider.superUser")
	tp, err := c.tlsParams("ssl.", key, c.flag("client.certReload"), log)
	if err != nil {
		return nil, err
	}
	// The client port checks no client's host name: ZooKeeper's clients
	// connect from anywhere.
	// Each handshake gets the stores' current certificates.
	st.tls = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cert, pool := tp.live.Current()
		return &tls.Config{MinVersion: tp.min, MaxVersion: tp.max, CipherSuites: tp.suites, ClientAuth: tp.clientAuth,
			Certificates: []tls.Certificate{cert}, ClientCAs: pool}, nil
	}}
	return st, nil
}

// tlsParams are the TLS settings under one prefix of keys: ssl. for the
// client port, ssl.quorum. between servers.
type tlsParams struct {
	live                 *keystore.Live
	clientAuth           tls.ClientAuthType
	min, max             uint16
	suites               []uint16
	hostnameVerification bool
}

// flag is a boolean Extra setting, false unless "true".
func (c *Config) flag(key string) bool {
	v, _, _ := c.extra(key)
	return strings.EqualFold(v, "true")
}

// checkFlags refuses a value other than true or false for any of keys:
// for a security setting, a mistyped value read as false would turn the
// security off without a word.
func (c *Config) checkFlags(keys ...string) error {
	for _, k := range keys {
		if v, key, ok := c.extra(k); ok && !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
			return c.ErrorAt(key, "%q: want true or false", v)
		}
	}
	return nil
}

// tlsParams reads the settings under prefix; by is the key that asks for
// TLS, named when the key store is missing; reload makes the stores
// reload when their files change.
func (c *Config) tlsParams(prefix, by string, reload bool, log *slog.Logger) (*tlsParams, error) {
	tp := &tlsParams{}
	loc, locKey, _ := c.extra(prefix + "keyStore.location")
	if loc == "" {
		return nil, c.ErrorAt(by, "set, but %skeyStore.location is not: TLS needs this server's key and certificate", prefix)
	}
	key := keystore.Store{Location: loc}
	key.Password, _, _ = c.extra(prefix + "keyStore.password")
	key.Type, _, _ = c.extra(prefix + "keyStore.type")
	var trust keystore.Store
	trustKey := by
	if loc, k, _ := c.extra(prefix + "trustStore.location"); loc != "" {
		trust.Location, trustKey = loc, k
		trust.Password, _, _ = c.extra(prefix + "trustStore.password")
		trust.Type, _, _ = c.extra(prefix + "trustStore.type")
	}
	var err error
	var keyErr *keystore.KeyStoreError
	if tp.live, err = keystore.NewLive(key, trust, reload, log); errors.As(err, &keyErr) {
		return nil, c.ErrorAt(locKey, "%v", err)
	} else if err != nil {
		return nil, c.ErrorAt(trustKey, "%v", err)
	}
	// ZooKeeper asks for a client certificate unless told otherwise.
	auth, authKey, _ := c.extra(prefix + "clientAuth")
	switch strings.ToLower(auth) {
	case "", "need":
		tp.clientAuth = tls.RequireAndVerifyClientCert
	case "want":
		tp.clientAuth = tls.VerifyClientCertIfGiven
	case "none":
		tp.clientAuth = tls.NoClientCert
	default:
		return nil, c.ErrorAt(authKey, "%q: want need, want or none", auth)
	}
	// ZooKeeper enables ssl.enabledProtocols, or else ssl.protocol alone
	// (TLSv1.2 by default).
	protos, protoKey, _ := c.extra(prefix + "enabledProtocols")
	if protos == "" {
		if protos, protoKey, _ = c.extra(prefix + "protocol"); protos == "" {
			protos = "TLSv1.2"
		}
	}
	for _, p := range strings.Split(protos, ",") {
		var ver uint16
		switch strings.TrimSpace(p) {
		case "TLSv1.2":
			ver = tls.VersionTLS12
		case "TLSv1.3":
			ver = tls.VersionTLS13
		default:
			return nil, c.ErrorAt(protoKey, "protocol %q: zkd offers TLSv1.2 and TLSv1.3", strings.TrimSpace(p))
		}
		if tp.min == 0 || ver < tp.min {
			tp.min = ver
		}
		tp.max = max(tp.max, ver)
	}
	if suites, suitesKey, _ := c.extra(prefix + "ciphersuites"); suites != "" {
		known := map[string]uint16{}
		for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
			known[cs.Name] = cs.ID
		}
		for _, name := range strings.Split(suites, ",") {
			id, ok := known[strings.TrimSpace(name)]
			if !ok {
				return nil, c.ErrorAt(suitesKey, "cipher suite %q is not one zkd offers", strings.TrimSpace(name))
			}
			tp.suites = append(tp.suites, id)
		}
	}
	hv, hvKey, _ := c.extra(prefix + "hostnameVerification")
	switch strings.ToLower(hv) {
	case "", "true":
		tp.hostnameVerification = true
	case "false":
	default:
		return nil, c.ErrorAt(hvKey, "%q: want true or false", hv)
	}
	return tp, nil
}

// listenSecure opens the secure port, when there is one.
func (s *Server) listenSecure() error {
	st, err := s.cfg.secure(s.log)
	if err != nil || st == nil {
		return err
	}
	if !st.x509 {
		s.log.Warn("the client port serves TLS, but no authProvider.N names " + X509Provider +
			": client certificates are checked and give no identity (ZooKeeper closes such connections)")
	}
	s.secure = st
	if st.unified {
		s.log.Info("the client port serves TLS and plaintext alike (client.portUnification)", "addr", s.cfg.Addr())
	}
	if st.addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", st.addr)
	if err != nil {
		return s.cfg.ErrorAt("secureClientPort", "cannot listen on %s: %v", st.addr, err)
	}
	s.secureLn = ln
	return nil
}

// secureAcceptLoop accepts TLS clients until the server stops; each
// one's handshake runs on a goroutine of its own.
func (s *Server) secureAcceptLoop() {
	s.accepting(s.secureLn, "accept on the secure client port", func(nc net.Conn) error {
		go s.serveSecure(nc)
		return nil
	})
}

// enrollEither serves a connection to a client port that takes TLS and
// plaintext alike: its first byte, looked at and left in place, tells
// which, on a goroutine of its own, as a client may take its time.
func (s *Server) enrollEither(nc net.Conn) error {
	// Admitted first: a connection counts against maxClientCnxns while
	// it is looked at, as a plain one does from its accept.
	ip := remoteIP(nc)
	if !s.admit(ip) {
		nc.Close()
		return nil
	}
	go func() {
		first, err := peekByte(nc, time.Duration(s.cfg.SessionlessCnxnTimeout)*time.Millisecond)
		switch {
		case err != nil:
			s.unadmit(ip)
			nc.Close()
		case first == tlsHandshakeRecord:
			s.serveSecureAdmitted(nc, ip)
		default:
			if err := s.enrollAdmitted(nc, ip); err != nil {
				s.log.Warn("a plaintext connection could not be handed to an event loop", "client", nc.RemoteAddr().String(), "err", err)
				nc.Close()
			}
		}
	}()
	return nil
}

// tlsHandshakeRecord is the first byte of a TLS connection; a ZooKeeper
// client's plaintext starts with a length's high byte, 0, or a
// four-letter word.
const tlsHandshakeRecord = 0x16

// peekByte waits at most d for nc's first byte and returns it, leaving
// it to be read.
func peekByte(nc net.Conn, d time.Duration) (byte, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return 0, fmt.Errorf("a %T cannot be peeked at", nc)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	nc.SetReadDeadline(time.Now().Add(d))
	defer nc.SetReadDeadline(time.Time{})
	var b [1]byte
	var n int
	var perr error
	if err := rc.Read(func(fd uintptr) bool {
		n, _, perr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		return perr != syscall.EAGAIN
	}); err != nil {
		return 0, err
	}
	if perr != nil {
		return 0, perr
	}
	if n == 0 {
		return 0, io.EOF
	}
	return b[0], nil
}

// serveSecure runs a TLS client's handshake and hands the connection to
// an event loop.
func (s *Server) serveSecure(raw net.Conn) {
	ip := remoteIP(raw)
	if !s.admit(ip) {
		raw.Close()
		return
	}
	s.serveSecureAdmitted(raw, ip)
}

// serveSecureAdmitted serves an admitted TLS connection.
func (s *Server) serveSecureAdmitted(raw net.Conn, ip string) {
	tc := tls.Server(raw, s.secure.tls)
	tc.SetDeadline(time.Now().Add(time.Duration(s.cfg.SessionlessCnxnTimeout) * time.Millisecond))
	if err := tc.Handshake(); err != nil {
		s.log.Warn("TLS handshake failed; closing the connection", "client", raw.RemoteAddr().String(), "err", err)
		s.unadmit(ip)
		raw.Close()
		return
	}
	tc.SetDeadline(time.Time{})
	inner, outer, err := socketPair()
	if err != nil {
		s.log.Error("a TLS connection could not be handed to an event loop", "client", raw.RemoteAddr().String(), "err", err)
		s.unadmit(ip)
		tc.Close()
		return
	}
	c := newConn(s, ip, raw.RemoteAddr().String())
	if st := s.secure; st.x509 {
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			id := certs[0].Subject.String()
			c.auth = append(c.auth, wire.Id{Scheme: "x509", ID: id})
			if st.super != "" && st.super == id {
				c.auth = append(c.auth, wire.Id{Scheme: "super", ID: id})
			}
		}
	}
	if _, err := s.gnet.EnrollContext(inner, c); err != nil {
		s.unadmit(ip)
		inner.Close()
		outer.Close()
		tc.Close()
		return
	}
	// gnet holds its own duplicate of inner's socket.
	go func() {
		io.Copy(outer, tc)
		outer.(*net.UnixConn).CloseWrite()
	}()
	go func() {
		io.Copy(tc, outer)
		tc.Close()
		outer.Close()
	}()
}

// socketPair returns the two ends of a connected Unix stream socket pair.
func socketPair() (net.Conn, net.Conn, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	conn := func(fd int, name string) (net.Conn, error) {
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		return net.FileConn(f)
	}
	a, err := conn(fds[0], "tls-inner")
	if err != nil {
		syscall.Close(fds[1])
		return nil, nil, err
	}
	b, err := conn(fds[1], "tls-outer")
	if err != nil {
		a.Close()
		return nil, nil, fmt.Errorf("socket pair: %w", err)
	}
	return a, b, nil
}
