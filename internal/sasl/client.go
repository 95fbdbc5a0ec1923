package sasl

import (
	"crypto/subtle"
	"fmt"
	"strings"
)

// DigestClient is the client side of one DIGEST-MD5 exchange, as a server
// joining an ensemble runs it with the user of its QuorumLearner section:
// Step answers the server's challenge with the digest response, then
// checks the server's response authentication, which proves the server
// knows the password too.
type DigestClient struct {
	user, password  string
	service, server string
	step            int // 0: before the challenge, 1: response sent, 2: done
	ha1             []byte
	nonce, cnonce   string
	uri             string
}

// NewQuorumDigestClient starts a joining server's exchange as user.
func NewQuorumDigestClient(user, password string) *DigestClient {
	return &DigestClient{user: user, password: password, service: QuorumService, server: QuorumRealm}
}

// Complete reports whether the server has proved itself.
func (d *DigestClient) Complete() bool { return d.step == 2 }

// Step takes the server's next token: the challenge, answered with the
// digest response, then the response authentication (rspauth), answered
// with nothing. An error ends the exchange.
func (d *DigestClient) Step(token []byte) ([]byte, error) {
	switch d.step {
	case 0:
		return d.respond(token)
	case 1:
		dirs, err := parseDirectives(string(token))
		if err != nil {
			return nil, fmt.Errorf("%w: the server's last token: %v", ErrFailed, err)
		}
		want := digestKD(d.ha1, d.nonce, "00000001", d.cnonce, "auth", ":"+d.uri)
		if subtle.ConstantTimeCompare([]byte(strings.ToLower(dirs["rspauth"])), []byte(want)) != 1 {
			return nil, fmt.Errorf("%w: the server's response authentication is wrong: it does not know the password", ErrFailed)
		}
		d.step = 2
		return nil, nil
	}
	return nil, fmt.Errorf("%w: a token after the exchange ended", ErrFailed)
}

func (d *DigestClient) respond(challenge []byte) ([]byte, error) {
	if len(challenge) > maxResponse {
		return nil, fmt.Errorf("%w: a challenge of %d bytes", ErrFailed, len(challenge))
	}
	dirs, err := parseDirectives(string(challenge))
	if err != nil {
		return nil, fmt.Errorf("%w: the server's challenge: %v", ErrFailed, err)
	}
	d.nonce = dirs["nonce"]
	if d.nonce == "" {
		return nil, fmt.Errorf("%w: the server's challenge has no nonce", ErrFailed)
	}
	if qops := dirs["qop"]; qops != "" && !containsToken(qops, "auth") {
		return nil, fmt.Errorf("%w: the server offers quality of protection %q, and this one does auth only", ErrFailed, qops)
	}
	if alg := dirs["algorithm"]; alg != "" && alg != "md5-sess" {
		return nil, fmt.Errorf("%w: algorithm %q, not md5-sess", ErrFailed, alg)
	}
	realm := dirs["realm"] // the server's name when it offers none
	if realm == "" {
		realm = d.server
	}
	d.cnonce = newNonce()
	d.uri = d.service + "/" + d.server
	d.ha1 = digestHA1(d.user, realm, d.password, d.nonce, d.cnonce, "")
	rsp := digestKD(d.ha1, d.nonce, "00000001", d.cnonce, "auth", "AUTHENTICATE:"+d.uri)
	d.step = 1
	var b strings.Builder
	if dirs["charset"] == "utf-8" {
		b.WriteString("charset=utf-8,")
	}
	fmt.Fprintf(&b, `username=%s,realm=%s,nonce=%s,nc=00000001,cnonce=%s,digest-uri=%s,maxbuf=65536,response=%s,qop=auth`,
		quote(d.user), quote(realm), quote(d.nonce), quote(d.cnonce), quote(d.uri), rsp)
	return []byte(b.String()), nil
}

// quote is a quoted-string value, with quotes and backslashes escaped.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// containsToken reports whether the comma-separated list holds tok.
func containsToken(list, tok string) bool {
	for _, t := range strings.Split(list, ",") {
		if strings.TrimSpace(t) == tok {
			return true
		}
	}
	return false
}
