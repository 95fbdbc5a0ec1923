package sasl

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDigestResponse sends arbitrary bytes as a client's digest response,
// on the client port and on the quorum port: the server must refuse them
// with ErrFailed, never panic, and never take them (the right digest of
// a password is not something the fuzzer can guess).
func FuzzDigestResponse(f *testing.F) {
	f.Add([]byte(`username="bob",realm="zk-sasl-md5",nonce="n",nc=00000001,cnonce="c",digest-uri="zookeeper/zk-sasl-md5",maxbuf=65536,response=0123456789abcdef0123456789abcdef,qop=auth`))
	f.Add([]byte(`charset=utf-8,username="a\"b",nonce="x\\",nc=00000001`))
	f.Add([]byte(`username=bob,,,,realm=`))
	f.Add([]byte(`="`))
	lookup := func(u string) (string, bool) { return "s3cret", u == "bob" }
	f.Fuzz(func(t *testing.T, token []byte) {
		for _, d := range []*Digest{NewDigest(lookup), NewQuorumDigest(lookup)} {
			if _, err := d.Step(nil); err != nil {
				t.Fatal(err)
			}
			rsp, err := d.Step(token)
			if err == nil || !errors.Is(err, ErrFailed) || rsp != nil || d.Complete() {
				t.Fatalf("%q: answer %q, error %v, complete %v", token, rsp, err, d.Complete())
			}
		}
	})
}

// FuzzDigestChallenge gives a joining server's client side arbitrary
// bytes as the challenge: it must not panic, and whatever it answers must
// read back as a response naming the challenge's nonce.
func FuzzDigestChallenge(f *testing.F) {
	f.Add([]byte(`realm="zk-quorum-sasl-md5",nonce="abc",qop="auth",charset=utf-8,algorithm=md5-sess`))
	f.Add([]byte(`nonce="a\"b\\c",qop="auth-int, auth"`))
	f.Add([]byte(`nonce=plain`))
	f.Fuzz(func(t *testing.T, challenge []byte) {
		c := NewQuorumDigestClient("learner", "pw")
		rsp, err := c.Step(challenge)
		if err != nil {
			if !errors.Is(err, ErrFailed) || rsp != nil {
				t.Fatalf("%q: answer %q, error %v", challenge, rsp, err)
			}
			return
		}
		dirs, err := parseDirectives(string(rsp))
		if err != nil {
			t.Fatalf("%q: the answer %q does not read back: %v", challenge, rsp, err)
		}
		sent, _ := parseDirectives(string(challenge))
		if dirs["nonce"] != sent["nonce"] || dirs["username"] != "learner" || dirs["nc"] != "00000001" {
			t.Fatalf("%q: the answer %q reads back as %v", challenge, rsp, dirs)
		}
	})
}

// FuzzDigestExchange runs whole exchanges, the client side against the
// quorum's server side, for arbitrary user names and passwords: a user
// the server knows with that password gets in, and each side proves
// itself to the other; a wrong password does not.
func FuzzDigestExchange(f *testing.F) {
	f.Add("learner", "pw")
	f.Add(`a"b\c,d=e`, `p"w\`)
	f.Add("zoë", "pässword")
	f.Add("user", "")
	f.Fuzz(func(t *testing.T, user, password string) {
		if user == "" || !utf8.ValidString(user) || !utf8.ValidString(password) {
			return // a response must be UTF-8 and name its user
		}
		for _, right := range []bool{true, false} {
			server := NewQuorumDigest(func(u string) (string, bool) {
				if !right {
					return password + "x", u == user
				}
				return password, u == user
			})
			client := NewQuorumDigestClient(user, password)
			ch, err := server.Step(nil)
			if err != nil {
				t.Fatal(err)
			}
			rsp, err := client.Step(ch)
			if err != nil {
				t.Fatalf("user %q: the client cannot answer %q: %v", user, ch, err)
			}
			if len(rsp) > maxResponse {
				return // too long a name for one response; refused as such
			}
			auth, err := server.Step(rsp)
			if !right {
				if err == nil || server.Complete() {
					t.Fatalf("user %q: a wrong password was taken", user)
				}
				continue
			}
			if err != nil || !server.Complete() || server.User() != user {
				t.Fatalf("user %q, password %q: the server refused %q: %v (user %q)", user, password, rsp, err, server.User())
			}
			if _, err := client.Step(auth); err != nil || !client.Complete() {
				t.Fatalf("user %q: the client refused the server's proof %q: %v", user, auth, err)
			}
		}
	})
}

// FuzzParseJAAS reads arbitrary text as a JAAS file: it must not panic,
// and an error must name a line the text has.
func FuzzParseJAAS(f *testing.F) {
	f.Add("Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  user_bob=\"s\\\"ecret\";\n};\n")
	f.Add("QuorumServer { a.B required user_x=\"1\" /* c */ ; };\n// end\nQuorumLearner { a.B required username=\"x\" password=\"1\"; };")
	f.Add("Server {\n  org.x.Module required\n  user_a=\"b;\n};\n")
	f.Add("/* unterminated")
	f.Fuzz(func(t *testing.T, text string) {
		j, line, err := parseJAAS(text)
		if err != nil {
			if lines := strings.Count(text, "\n") + 1; line < 1 || line > lines {
				t.Fatalf("%q: error %v at line %d of %d", text, err, line, lines)
			}
			return
		}
		for name := range j {
			j.Users(name)
			j.Login(name)
		}
	})
}
