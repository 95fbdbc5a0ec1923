package engine

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
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
// not set. A setting that cannot serve (no key store, a store that does
// not load, an unknown protocol or cipher suite) is an error naming it.
func (c *Config) secure() (*secureSettings, error) {
	v, key, ok := c.extra("secureClientPort")
	if !ok || v == "" {
		return nil, nil
	}
	port, err := strconv.Atoi(v)
	if err != nil || port < 0 || port > 65535 {
		return nil, c.ErrorAt(key, "%q is not a port", v)
	}
	host := c.ClientPortAddress
	if a, _, ok := c.extra("secureClientPortAddress"); ok && a != "" {
		host = a
	}
	st := &secureSettings{addr: net.JoinHostPort(host, strconv.Itoa(port)), x509: c.TreeOptions().X509ACLs}
	st.super, _, _ = c.extra("X509AuthenticationProvider.superUser")
	conf := &tls.Config{MinVersion: tls.VersionTLS12}

	loc, locKey, _ := c.extra("ssl.keyStore.location")
	if loc == "" {
		return nil, c.ErrorAt(key, "set, but ssl.keyStore.location is not: the secure port needs the server's key and certificate")
	}
	pw, _, _ := c.extra("ssl.keyStore.password")
	typ, _, _ := c.extra("ssl.keyStore.type")
	cert, err := keystore.KeyPair(loc, pw, typ)
	if err != nil {
		return nil, c.ErrorAt(locKey, "%v", err)
	}
	conf.Certificates = []tls.Certificate{cert}
	if loc, locKey, _ := c.extra("ssl.trustStore.location"); loc != "" {
		pw, _, _ := c.extra("ssl.trustStore.password")
		typ, _, _ := c.extra("ssl.trustStore.type")
		if conf.ClientCAs, err = keystore.Trust(loc, pw, typ); err != nil {
			return nil, c.ErrorAt(locKey, "%v", err)
		}
	} else if conf.ClientCAs, err = x509.SystemCertPool(); err != nil {
		return nil, c.ErrorAt(key, "no ssl.trustStore.location, and the system's trusted certificates cannot be read: %v", err)
	}
	// ZooKeeper asks for a client certificate unless told otherwise.
	auth, authKey, _ := c.extra("ssl.clientAuth")
	switch strings.ToLower(auth) {
	case "", "need":
		conf.ClientAuth = tls.RequireAndVerifyClientCert
	case "want":
		conf.ClientAuth = tls.VerifyClientCertIfGiven
	case "none":
		conf.ClientAuth = tls.NoClientCert
	default:
		return nil, c.ErrorAt(authKey, "%q: want need, want or none", auth)
	}
	// ZooKeeper enables ssl.enabledProtocols, or else ssl.protocol alone
	// (TLSv1.2 by default).
	protos, protoKey, _ := c.extra("ssl.enabledProtocols")
	if protos == "" {
		if protos, protoKey, _ = c.extra("ssl.protocol"); protos == "" {
			protos = "TLSv1.2"
		}
	}
	conf.MinVersion, conf.MaxVersion = 0, 0
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
		if conf.MinVersion == 0 || ver < conf.MinVersion {
			conf.MinVersion = ver
		}
		conf.MaxVersion = max(conf.MaxVersion, ver)
	}
	if suites, suitesKey, _ := c.extra("ssl.ciphersuites"); suites != "" {
		known := map[string]uint16{}
		for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
			known[cs.Name] = cs.ID
		}
		for _, name := range strings.Split(suites, ",") {
			id, ok := known[strings.TrimSpace(name)]
			if !ok {
				return nil, c.ErrorAt(suitesKey, "cipher suite %q is not one zkd offers", strings.TrimSpace(name))
			}
			conf.CipherSuites = append(conf.CipherSuites, id)
		}
	}
	st.tls = conf
	return st, nil
}

// listenSecure opens the secure port, when there is one.
func (s *Server) listenSecure() error {
	st, err := s.cfg.secure()
	if err != nil || st == nil {
		return err
	}
	ln, err := net.Listen("tcp", st.addr)
	if err != nil {
		return s.cfg.ErrorAt("secureClientPort", "cannot listen on %s: %v", st.addr, err)
	}
	if !st.x509 {
		s.log.Warn("the secure client port serves TLS, but no authProvider.N names "+X509Provider+
			": client certificates are checked and give no identity (ZooKeeper closes such connections)", "addr", st.addr)
	}
	s.secure, s.secureLn = st, ln
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

// serveSecure runs a TLS client's handshake and hands the connection to
// an event loop.
func (s *Server) serveSecure(raw net.Conn) {
	ip := remoteIP(raw)
	if !s.admit(ip) {
		raw.Close()
		return
	}
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
