package sasl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// RFC 2831's example exchange (section 4), whose response and rspauth are
// given there: chris, password secret, realm elwood.innosoft.com.
func TestDigestValuesOfRFC2831(t *testing.T) {
	ha1 := digestHA1("chris", "elwood.innosoft.com", "secret", "OA6MG9tEQGm2hh", "OA6MHXh6VqTrRk", "")
	uri := "imap/elwood.innosoft.com"
	if got := digestKD(ha1, "OA6MG9tEQGm2hh", "00000001", "OA6MHXh6VqTrRk", "auth", "AUTHENTICATE:"+uri); got != "d388dad90d4bbd760a152321f2143af7" {
		t.Errorf("response %s", got)
	}
	if got := digestKD(ha1, "OA6MG9tEQGm2hh", "00000001", "OA6MHXh6VqTrRk", "auth", ":"+uri); got != "ea40f60335c427b5527b84dbabcdfffd" {
		t.Errorf("rspauth %s", got)
	}
}

// clientResponse is what a DIGEST-MD5 client answers to the challenge.
func clientResponse(t *testing.T, challenge []byte, user, password, authzid string) []byte {
	t.Helper()
	dirs, err := parseDirectives(string(challenge))
	if err != nil {
		t.Fatal(err)
	}
	if dirs["realm"] != Realm || dirs["qop"] != "auth" || dirs["algorithm"] != "md5-sess" || dirs["nonce"] == "" {
		t.Fatalf("challenge %q", challenge)
	}
	uri := Service + "/" + Realm
	ha1 := digestHA1(user, Realm, password, dirs["nonce"], "cn0nce", authzid)
	rsp := `charset=utf-8,username="` + user + `",realm="` + Realm + `",nonce="` + dirs["nonce"] + `",nc=00000001,cnonce="cn0nce",digest-uri="` + uri +
		`",maxbuf=65536,response=` + digestKD(ha1, dirs["nonce"], "00000001", "cn0nce", "auth", "AUTHENTICATE:"+uri) + `,qop=auth`
	if authzid != "" {
		rsp += `,authzid="` + authzid + `"`
	}
	return []byte(rsp)
}

func TestDigestExchange(t *testing.T) {
	users := map[string]string{"bob": "s3cret", "zoë": "pässword"}
	lookup := func(u string) (string, bool) { p, ok := users[u]; return p, ok }
	for _, c := range []struct {
		name, user, password, authzid string
		ok                            bool
	}{
		{"right password", "bob", "s3cret", "", true},
		{"with an authzid, as a Java client sends", "bob", "s3cret", "bob", true},
		{"characters beyond ASCII", "zoë", "pässword", "", true},
		{"wrong password", "bob", "nope", "", false},
		{"unknown user", "eve", "s3cret", "", false},
	} {
		d := NewDigest(lookup)
		ch, err := d.Step(nil)
		if err != nil || d.Complete() {
			t.Fatalf("%s: challenge: %v", c.name, err)
		}
		rsp, err := d.Step(clientResponse(t, ch, c.user, c.password, c.authzid))
		if (err == nil) != c.ok || d.Complete() != c.ok {
			t.Errorf("%s: err %v, complete %v; want ok %v", c.name, err, d.Complete(), c.ok)
			continue
		}
		if !c.ok {
			if strings.Contains(err.Error(), c.password) {
				t.Errorf("%s: the error %q shows the password", c.name, err)
			}
			continue
		}
		if d.User() != c.user || !strings.HasPrefix(string(rsp), "rspauth=") {
			t.Errorf("%s: user %q, final token %q", c.name, d.User(), rsp)
		}
		if _, err := d.Step(nil); err == nil {
			t.Errorf("%s: a token after the end was taken", c.name)
		}
	}
	// A response made for another nonce, or another service, is refused.
	d := NewDigest(lookup)
	ch, _ := d.Step(nil)
	other, _ := NewDigest(lookup).Step(nil)
	if _, err := d.Step(clientResponse(t, other, "bob", "s3cret", "")); err == nil {
		t.Error("a response to another challenge's nonce was taken")
	}
	d = NewDigest(lookup)
	ch, _ = d.Step(nil)
	bad := strings.Replace(string(clientResponse(t, ch, "bob", "s3cret", "")), "zookeeper/zk-sasl-md5", "imap/zk-sasl-md5", 1)
	if _, err := d.Step([]byte(bad)); err == nil {
		t.Error("a response for another service was taken")
	}
	if _, err := NewDigest(lookup).Step([]byte("x")); err == nil {
		t.Error("an initial response was taken")
	}
}

func TestReadJAAS(t *testing.T) {
	dir := t.TempDir()
	write := func(text string) string {
		p := filepath.Join(dir, "jaas.conf")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	j, err := ReadJAAS(write(`
// the server's users
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="adminsecret"   /* the admin */
    user_bob="bob\"s secret";
};
Client {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="bob"
    password="x";
};
`))
	if err != nil {
		t.Fatal(err)
	}
	users, err := j.Users("Server")
	if err != nil || len(users) != 2 || users["super"] != "adminsecret" || users["bob"] != `bob"s secret` {
		t.Fatalf("users %v, %v", users, err)
	}
	if _, err := j.Users("QuorumServer"); err == nil {
		t.Error("a missing context gave users")
	}
	j, err = ReadJAAS(write("Server {\n com.sun.security.auth.module.Krb5LoginModule required\n useKeyTab=true\n keyTab=\"/k\";\n};\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Users("Server"); err == nil || !strings.Contains(err.Error(), "GSSAPI") {
		t.Errorf("Kerberos: %v", err)
	}
	for text, line := range map[string]string{
		"Server {\n  org.x.Module required\n  user_a=\"b\"\n};\n": ":4:", // no ; after the module
		"Server {\n  org.x.Module maybe;\n};\n":                   ":2:",
		"Server {\n  org.x.Module required\n  user_a;\n};\n":      ":3:",
		"Server {\n  org.x.Module required\n  user_a=\"b;\n};\n":  ":3:",
		"Server {\n  org.x.Module required\n  user_a=\"b\";\n}\n": ":1:",
	} {
		if _, err := ReadJAAS(write(text)); err == nil || !strings.Contains(err.Error(), "jaas.conf"+line) {
			t.Errorf("%q: error %v, want one naming the file and line %s", text, err, line)
		}
	}
}
