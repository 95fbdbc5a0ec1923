// Package sasl is the SASL authentication ZooKeeper offers: the DIGEST-MD5
// mechanism (RFC 2831) as ZooKeeper 3.8 runs it, with quality of protection
// auth only, and the JAAS file that lists its users. On the client port
// the server side runs with the users of the Server section (realm and
// server name "zk-sasl-md5", service "zookeeper"); between servers both
// sides run (realm "zk-quorum-sasl-md5", service "zookeeper-quorum"), with
// the QuorumServer and QuorumLearner sections.
package sasl

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ZooKeeper's names for the DIGEST-MD5 exchange: the realm (and server
// name) every ZooKeeper client expects, and the service.
const (
	Realm   = "zk-sasl-md5"
	Service = "zookeeper"
)

// The names of the exchange between servers, quorum SASL.
const (
	QuorumRealm   = "zk-quorum-sasl-md5"
	QuorumService = "zookeeper-quorum"
)

// maxResponse bounds a client's response, as RFC 2831 does (4 KB).
const maxResponse = 4096

// ErrFailed is the error of an exchange that failed: an unknown user, a
// wrong password, a response that is not DIGEST-MD5's. Its text says
// which, for the server's log, never the password.
var ErrFailed = errors.New("sasl: DIGEST-MD5 authentication failed")

// Digest is one connection's DIGEST-MD5 exchange, server side: Step takes
// each token the client sends and returns the one to send back.
type Digest struct {
	password       func(user string) (string, bool)
	realm, service string
	// sameAuthz refuses a response whose authorization id names another
	// user than the one authenticated, as ZooKeeper's quorum does.
	sameAuthz bool
	nonce     string
	step      int // 0: before the challenge, 1: challenge sent, 2: done
	user      string
}

// NewDigest starts a client port's exchange; password looks a user's
// password up.
func NewDigest(password func(user string) (string, bool)) *Digest {
	return newDigest(Realm, Service, password)
}

// NewQuorumDigest starts the exchange of a server that another server
// connects to; password looks a user of the QuorumServer section up.
func NewQuorumDigest(password func(user string) (string, bool)) *Digest {
	d := newDigest(QuorumRealm, QuorumService, password)
	d.sameAuthz = true
	return d
}

func newDigest(realm, service string, password func(user string) (string, bool)) *Digest {
	return &Digest{password: password, realm: realm, service: service, nonce: newNonce()}
}

func newNonce() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// Complete reports whether the client has authenticated.
func (d *Digest) Complete() bool { return d.step == 2 }

// User is the authenticated user's name, once Complete.
func (d *Digest) User() string { return d.user }

// Step takes the client's next token and returns the server's answer:
// the challenge for the first (empty) token, the response authentication
// (rspauth) for the client's digest response, after which the exchange is
// complete. An error ends the exchange.
func (d *Digest) Step(token []byte) ([]byte, error) {
	switch d.step {
	case 0:
		if len(token) != 0 {
			return nil, fmt.Errorf("%w: the client opened with a token; DIGEST-MD5 has no initial response", ErrFailed)
		}
		d.step = 1
		return []byte(`realm="` + d.realm + `",nonce="` + d.nonce + `",qop="auth",charset=utf-8,algorithm=md5-sess`), nil
	case 1:
		rsp, err := d.verify(token)
		if err != nil {
			d.step = 3
			return nil, err
		}
		d.step = 2
		return rsp, nil
	}
	return nil, fmt.Errorf("%w: a token after the exchange ended", ErrFailed)
}

func (d *Digest) verify(token []byte) ([]byte, error) {
	if len(token) > maxResponse {
		return nil, fmt.Errorf("%w: a response of %d bytes", ErrFailed, len(token))
	}
	dirs, err := parseDirectives(string(token))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFailed, err)
	}
	get := func(k string) string { return dirs[k] }
	user, realm, nonce, cnonce, nc, uri, response := get("username"), get("realm"), get("nonce"),
		get("cnonce"), get("nc"), get("digest-uri"), get("response")
	qop := get("qop")
	if qop == "" {
		qop = "auth"
	}
	switch {
	case user == "" || cnonce == "" || response == "":
		return nil, fmt.Errorf("%w: the response lacks username, cnonce or response", ErrFailed)
	case nonce != d.nonce:
		return nil, fmt.Errorf("%w: the response names another nonce", ErrFailed)
	case nc != "00000001":
		return nil, fmt.Errorf("%w: nonce count %q, want 00000001", ErrFailed, nc)
	case qop != "auth":
		return nil, fmt.Errorf("%w: quality of protection %q; this server offers auth only", ErrFailed, qop)
	case realm != "" && realm != d.realm:
		return nil, fmt.Errorf("%w: realm %q, want %s", ErrFailed, realm, d.realm)
	case uri != d.service+"/"+d.realm:
		return nil, fmt.Errorf("%w: digest-uri %q, want %s/%s", ErrFailed, uri, d.service, d.realm)
	case d.sameAuthz && get("authzid") != "" && get("authzid") != user:
		return nil, fmt.Errorf("%w: user %q asks to act as %q", ErrFailed, user, get("authzid"))
	}
	pw, ok := d.password(user)
	if !ok {
		return nil, fmt.Errorf("%w: no user %q in the Server section", ErrFailed, user)
	}
	ha1 := digestHA1(user, realm, pw, nonce, cnonce, get("authzid"))
	want := digestKD(ha1, nonce, nc, cnonce, qop, "AUTHENTICATE:"+uri)
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(response)), []byte(want)) != 1 {
		return nil, fmt.Errorf("%w: wrong password for user %q", ErrFailed, user)
	}
	d.user = user
	return []byte("rspauth=" + digestKD(ha1, nonce, nc, cnonce, qop, ":"+uri)), nil
}

// digestHA1 is RFC 2831's H(A1) for md5-sess.
func digestHA1(user, realm, password, nonce, cnonce, authzid string) []byte {
	inner := md5.Sum(latin1OrUTF8(user + ":" + realm + ":" + password))
	a1 := append(inner[:], ":"+nonce+":"+cnonce...)
	if authzid != "" {
		a1 = append(a1, ":"+authzid...)
	}
	h := md5.Sum(a1)
	return h[:]
}

// digestKD is the hex response value for H(A1) and A2.
func digestKD(ha1 []byte, nonce, nc, cnonce, qop, a2 string) string {
	ha2 := md5.Sum([]byte(a2))
	kd := md5.Sum([]byte(hex.EncodeToString(ha1) + ":" + nonce + ":" + nc + ":" + cnonce + ":" + qop + ":" + hex.EncodeToString(ha2[:])))
	return hex.EncodeToString(kd[:])
}

// latin1OrUTF8 encodes s as RFC 2831 asks with charset=utf-8: in ISO
// 8859-1 when every character has a code there, else in UTF-8.
func latin1OrUTF8(s string) []byte {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return []byte(s)
		}
		out = append(out, byte(r))
	}
	return out
}

// parseDirectives reads a digest response: key=value pairs separated by
// commas, a value a token or a quoted string with backslash escapes.
func parseDirectives(s string) (map[string]string, error) {
	if !utf8.ValidString(s) {
		return nil, errors.New("the response is not UTF-8")
	}
	out := map[string]string{}
	i := 0
	skip := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',' || s[i] == '\r' || s[i] == '\n') {
			i++
		}
	}
	for skip(); i < len(s); skip() {
		eq := strings.IndexByte(s[i:], '=')
		if eq <= 0 {
			return nil, fmt.Errorf("a directive without a value at %q", s[i:])
		}
		key := strings.ToLower(strings.TrimSpace(s[i : i+eq]))
		i += eq + 1
		var val strings.Builder
		if i < len(s) && s[i] == '"' {
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("an unterminated quoted value of %s", key)
			}
			i++
		} else {
			j := i
			for j < len(s) && s[j] != ',' {
				j++
			}
			val.WriteString(strings.TrimSpace(s[i:j]))
			i = j
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("directive %s given twice", key)
		}
		out[key] = val.String()
	}
	return out, nil
}
