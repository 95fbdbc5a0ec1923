package keystore

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// Store is one key or trust store as the ssl.* settings name it.
type Store struct {
	Location, Password, Type string
}

// Live is a key pair and the pool that vouches for the other end, loaded
// from their stores and, when reloading, loaded again once their files
// change, so that certificates can be renewed without a restart: the
// next handshake uses the new ones, connections already made keep theirs.
// A store that does not load after a change is logged and the previous
// one kept, so a half-written file never leaves the server without keys.
type Live struct {
	key, trust Store
	reload     bool
	log        *slog.Logger

	mu    sync.Mutex
	cert  tls.Certificate
	pool  *x509.CertPool
	stamp string // the files' sizes and modification times when loaded
}

// NewLive loads key and trust (a trust store without a location is the
// system's pool); reload makes Current look at the files again.
func NewLive(key, trust Store, reload bool, log *slog.Logger) (*Live, error) {
	l := &Live{key: key, trust: trust, reload: reload, log: log}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	cert, pool, err := l.load()
	if err != nil {
		return nil, err
	}
	l.cert, l.pool, l.stamp = cert, pool, l.stampNow()
	return l, nil
}

// KeyStoreError is a failure of the key store, as against the trust
// store, so that a caller can name the setting at fault.
type KeyStoreError struct{ Err error }

func (e *KeyStoreError) Error() string { return e.Err.Error() }
func (e *KeyStoreError) Unwrap() error { return e.Err }

func (l *Live) load() (tls.Certificate, *x509.CertPool, error) {
	cert, err := KeyPair(l.key.Location, l.key.Password, l.key.Type)
	if err != nil {
		return cert, nil, &KeyStoreError{err}
	}
	var pool *x509.CertPool
	if l.trust.Location != "" {
		pool, err = Trust(l.trust.Location, l.trust.Password, l.trust.Type)
	} else if pool, err = x509.SystemCertPool(); err != nil {
		err = fmt.Errorf("no trust store is set, and the system's trusted certificates cannot be read: %w", err)
	}
	return cert, pool, err
}

func (l *Live) stampNow() string {
	var s string
	for _, f := range []string{l.key.Location, l.trust.Location} {
		if f == "" {
			continue
		}
		if st, err := os.Stat(f); err == nil {
			s += fmt.Sprintf("%s %d %d;", f, st.Size(), st.ModTime().UnixNano())
		} else {
			s += f + " missing;"
		}
	}
	return s
}

// Current is the key pair and trust pool to handshake with now.
func (l *Live) Current() (tls.Certificate, *x509.CertPool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reload {
		if stamp := l.stampNow(); stamp != l.stamp {
			cert, pool, err := l.load()
			if err != nil {
				l.log.Error("a key or trust store changed and does not load; the previous certificates stay in use",
					"keyStore", l.key.Location, "trustStore", l.trust.Location, "err", err)
			} else {
				l.cert, l.pool = cert, pool
				l.log.Info("key and trust stores reloaded", "keyStore", l.key.Location, "trustStore", l.trust.Location,
					"subject", cert.Leaf.Subject.String(), "notAfter", cert.Leaf.NotAfter)
			}
			l.stamp = stamp // a broken file is not tried again until it changes once more
		}
	}
	return l.cert, l.pool
}
