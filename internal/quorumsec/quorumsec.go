// Package quorumsec secures the connections between the servers of an
// ensemble as ZooKeeper 3.8 does, so that zkd and ZooKeeper servers
// configured alike accept each other: TLS on the quorum and election ports
// (sslQuorum, with the ssl.quorum.* stores), plaintext beside TLS during a
// migration (portUnification), and SASL DIGEST-MD5 between servers
// (quorum.auth.*), whose exchange comes first on the quorum port and right
// after the hello on the election port.
//
// A nil *Config is an ensemble without any of it: plain TCP, no exchange.
package quorumsec

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"zkd/internal/keystore"
	"zkd/internal/sasl"
)

// Config is how a server secures its connections to the others.
type Config struct {
	// TLS, when set, is the key pair and trust store: sslQuorum.
	TLS *keystore.Live
	// Dial with TLS (sslQuorum); with Unified alone, a server dials in
	// plaintext and accepts both.
	DialTLS bool
	// Unified accepts TLS and plaintext on the same port
	// (portUnification), for moving an ensemble to TLS a server at a time.
	Unified bool
	// ClientAuth is ssl.quorum.clientAuth: whether a connecting server must
	// show a certificate (need, ZooKeeper's default), may (want), or is not
	// asked (none).
	ClientAuth tls.ClientAuthType
	// HostnameVerification (ssl.quorum.hostnameVerification, on by
	// default) requires the other server's certificate to name its
	// address or host name, on both ends of a connection.
	HostnameVerification bool
	// The TLS versions and cipher suites offered; zero for Go's.
	MinVersion, MaxVersion uint16
	CipherSuites           []uint16

	// SASL is quorum.auth.enableSasl: connecting servers that start the
	// exchange are authenticated against Users (the QuorumServer
	// section).
	SASL bool
	// ServerRequire (quorum.auth.serverRequireSasl) refuses a server that
	// does not authenticate, or fails to; without it such a server is let
	// in with a warning, as during a migration.
	ServerRequire bool
	// LearnerRequire (quorum.auth.learnerRequireSasl) makes this server
	// authenticate, as User, on every connection it opens.
	LearnerRequire bool
	Users          map[string]string
	User, Password string

	Log *slog.Logger
}

// ErrRefused wraps every refusal of a connection by its security: a
// failed handshake, a certificate that does not name its server, a
// failed or skipped authentication.
var ErrRefused = errors.New("refused")

func (c *Config) log() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// Dial connects to another server's port at addr, over TLS when the
// ensemble dials with TLS: its certificate must chain to the trust store
// and, with hostname verification, name addr's host.
func (c *Config) Dial(ctx context.Context, addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil || c == nil || !c.DialTLS {
		return raw, err
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	host, _, _ := net.SplitHostPort(addr)
	cert, roots := c.TLS.Current()
	conf := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   c.MinVersion, MaxVersion: c.MaxVersion, CipherSuites: c.CipherSuites,
		// The chain and the name are checked below, against the address
		// as ZooKeeper checks them: its IP, then its host name.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return c.verifyPeer(cs.PeerCertificates, roots, x509.ExtKeyUsageServerAuth, remoteIP(raw), host)
		},
	}
	tc := tls.Client(raw, conf)
	tc.SetDeadline(time.Now().Add(timeout))
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("%w: TLS handshake with %s: %v", ErrRefused, addr, err)
	}
	tc.SetDeadline(time.Time{})
	return tc, nil
}

// Accept secures a connection another server opened, within timeout:
// the TLS handshake when the ensemble uses TLS (or, with Unified, when
// the connection starts with one), checking the other server's
// certificate as ssl.quorum.clientAuth and hostname verification ask.
// The connection it returns is the one to use; on an error raw is closed.
func (c *Config) Accept(raw net.Conn, timeout time.Duration) (net.Conn, error) {
	if c == nil || c.TLS == nil || (!c.DialTLS && !c.Unified) {
		return raw, nil
	}
	raw.SetDeadline(time.Now().Add(timeout))
	conn := raw
	if c.Unified {
		first := make([]byte, 1)
		if _, err := io.ReadFull(raw, first); err != nil {
			raw.Close()
			return nil, err
		}
		conn = &prefixConn{Conn: raw, pre: first}
		if first[0] != tlsHandshakeRecord {
			raw.SetDeadline(time.Time{})
			return conn, nil
		}
	}
	cert, roots := c.TLS.Current()
	ip := remoteIP(raw)
	conf := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   c.MinVersion, MaxVersion: c.MaxVersion, CipherSuites: c.CipherSuites,
		ClientAuth: tls.RequestClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				if c.ClientAuth == tls.RequireAndVerifyClientCert {
					return errors.New("the server showed no certificate, and ssl.quorum.clientAuth is need")
				}
				return nil
			}
			if c.ClientAuth == tls.NoClientCert {
				return nil
			}
			return c.verifyPeer(cs.PeerCertificates, roots, x509.ExtKeyUsageClientAuth, ip, "")
		},
	}
	if c.ClientAuth == tls.NoClientCert {
		conf.ClientAuth = tls.NoClientCert
	}
	tc := tls.Server(conn, conf)
	if err := tc.Handshake(); err != nil {
		raw.Close()
		return nil, fmt.Errorf("%w: TLS handshake: %v", ErrRefused, err)
	}
	raw.SetDeadline(time.Time{})
	return tc, nil
}

// tlsHandshakeRecord is the first byte of every TLS connection; a
// ZooKeeper server's plaintext starts otherwise (0xff for the election
// hello, 0x5f for the quorum SASL magic, 0x00 for a quorum packet).
const tlsHandshakeRecord = 0x16

// verifyPeer checks another server's certificate chain against roots for
// usage and, with hostname verification, that the certificate names ip or,
// failing that, host (for an incoming connection, the names ip resolves
// back to).
func (c *Config) verifyPeer(certs []*x509.Certificate, roots *x509.CertPool, usage x509.ExtKeyUsage, ip, host string) error {
	if len(certs) == 0 {
		return errors.New("no certificate")
	}
	inter := x509.NewCertPool()
	for _, ic := range certs[1:] {
		inter.AddCert(ic)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return fmt.Errorf("certificate of %q: %w", certs[0].Subject.String(), err)
	}
	if !c.HostnameVerification {
		return nil
	}
	if certs[0].VerifyHostname(ip) == nil {
		return nil
	}
	names := []string{host}
	if host == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		names, _ = net.DefaultResolver.LookupAddr(ctx, ip)
		cancel()
	}
	for _, n := range names {
		if n != "" && certs[0].VerifyHostname(n) == nil {
			return nil
		}
	}
	return fmt.Errorf("the certificate of %q names neither %s nor its host name %v (ssl.quorum.hostnameVerification)",
		certs[0].Subject.String(), ip, names)
}

func remoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	return host
}

// prefixConn gives back the bytes read to tell TLS from plaintext.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.pre) > 0 {
		n := copy(b, p.pre)
		p.pre = p.pre[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// The quorum SASL exchange: QuorumAuthPacket records (int64 magic, int32
// status, buffer token) each way.
const (
	// authMagic is ZooKeeper's -0xa0dbcafecafe1234L, which Java reads as
	// the negation of a negative long: this positive number.
	authMagic      int64 = 0x5f2435013501edcc
	authInProgress int32 = 0
	authSuccess    int32 = 1
	authError      int32 = -1
	// maxAuthToken bounds a token read, far above DIGEST-MD5's.
	maxAuthToken = 64 << 10
	// maxAuthRounds bounds the exchange, as ZooKeeper's server does.
	maxAuthRounds = 5
)

func writeAuth(w io.Writer, status int32, token []byte) error {
	b := make([]byte, 16, 16+len(token))
	binary.BigEndian.PutUint64(b, uint64(authMagic))
	binary.BigEndian.PutUint32(b[8:], uint32(status))
	n := int32(len(token))
	if token == nil {
		n = -1
	}
	binary.BigEndian.PutUint32(b[12:], uint32(n))
	_, err := w.Write(append(b, token...))
	return err
}

func readAuth(r io.Reader) (status int32, token []byte, err error) {
	var head [16]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, nil, err
	}
	if m := int64(binary.BigEndian.Uint64(head[:])); m != authMagic {
		return 0, nil, fmt.Errorf("%w: the other server sent something other than an authentication packet", ErrRefused)
	}
	status = int32(binary.BigEndian.Uint32(head[8:]))
	n := int32(binary.BigEndian.Uint32(head[12:]))
	if n < -1 || n > maxAuthToken {
		return 0, nil, fmt.Errorf("%w: an authentication token of %d bytes", ErrRefused, n)
	}
	if n <= 0 {
		return status, nil, nil
	}
	token = make([]byte, n)
	_, err = io.ReadFull(r, token)
	return status, token, err
}

// Learn authenticates this server to the one at the other end of c, which
// it has just connected to (and, on the election port, said hello to),
// when quorum.auth.learnerRequireSasl asks it to. The caller bounds it
// with c's deadline. It reads no byte past the exchange.
func (c *Config) Learn(rw io.ReadWriter, peer string) error {
	if c == nil || !c.LearnerRequire {
		return nil
	}
	dc := sasl.NewQuorumDigestClient(c.User, c.Password)
	if err := writeAuth(rw, authInProgress, []byte{}); err != nil {
		return err
	}
	for range maxAuthRounds + 2 {
		status, token, err := readAuth(rw)
		if err != nil {
			return err
		}
		switch status {
		case authSuccess:
			if _, err := dc.Step(token); err != nil || !dc.Complete() {
				return fmt.Errorf("%w: the server at %s said the authentication succeeded, and it did not: %v", ErrRefused, peer, err)
			}
			return nil
		case authInProgress:
			rsp, err := dc.Step(token)
			if err != nil {
				writeAuth(rw, authError, []byte{})
				return fmt.Errorf("%w: authenticating to %s: %v", ErrRefused, peer, err)
			}
			if err := writeAuth(rw, authInProgress, rsp); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: the server at %s refused this server's quorum SASL credentials (the QuorumLearner section's user %q)",
				ErrRefused, peer, c.User)
		}
	}
	return fmt.Errorf("%w: the server at %s did not end the authentication", ErrRefused, peer)
}

// Admit authenticates the server that opened the connection whose bytes
// r reads and w writes, when quorum.auth.enableSasl is set: r must be
// where the connection's later bytes are read, as Admit peeks at what
// comes first. nil lets the server in; with quorum.auth.serverRequireSasl
// a server that skips the exchange or fails it is refused, else it is let
// in with a warning. peer names it in the log.
func (c *Config) Admit(r *bufio.Reader, w io.Writer, peer string) error {
	if c == nil || !c.SASL {
		return nil
	}
	refuse := func(err error) error {
		if c.ServerRequire {
			c.log().Warn("quorum SASL: refusing a server (quorum.auth.serverRequireSasl)", "peer", peer, "err", err)
			return fmt.Errorf("%w: %v", ErrRefused, err)
		}
		c.log().Warn("quorum SASL: letting a server in that did not authenticate, as quorum.auth.serverRequireSasl is false",
			"peer", peer, "err", err)
		return nil
	}
	head, err := r.Peek(8)
	if err != nil {
		return refuse(fmt.Errorf("nothing to read: %v", err))
	}
	if int64(binary.BigEndian.Uint64(head)) != authMagic {
		return refuse(errors.New("it did not start the authentication"))
	}
	d := sasl.NewQuorumDigest(func(user string) (string, bool) { pw, ok := c.Users[user]; return pw, ok })
	status, token, err := readAuth(r)
	for round := 0; err == nil; round++ {
		if status != authInProgress {
			err = fmt.Errorf("a learner's packet with status %d", status)
			break
		}
		var ch []byte
		if ch, err = d.Step(token); err != nil {
			break
		}
		if d.Complete() {
			if err = writeAuth(w, authSuccess, ch); err != nil {
				break
			}
			c.log().Info("quorum SASL: a server authenticated", "peer", peer, "user", d.User())
			return nil
		}
		if round >= maxAuthRounds {
			err = errors.New("too many rounds")
			break
		}
		if err = writeAuth(w, authInProgress, ch); err != nil {
			break
		}
		status, token, err = readAuth(r)
	}
	writeAuth(w, authError, []byte{})
	return refuse(err)
}
