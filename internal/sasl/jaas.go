package sasl

import (
	"fmt"
	"os"
	"strings"
)

// LoginModule is one entry of a JAAS login context: the module's class,
// its flag (required, requisite, sufficient, optional) and its options.
type LoginModule struct {
	Class   string
	Flag    string
	Options map[string]string
}

// JAAS is a JAAS login configuration file: its login contexts by name.
type JAAS map[string][]LoginModule

// ReadJAAS reads a JAAS file, the format of the file named by the JVM's
// java.security.auth.login.config: contexts of the form
//
//	Server {
//	    org.apache.zookeeper.server.auth.DigestLoginModule required
//	    user_bob="secret";
//	};
//
// with // and /* */ comments. An error names the file and the line.
func ReadJAAS(path string) (JAAS, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	j, line, err := parseJAAS(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s:%d: %v", path, line, err)
	}
	return j, nil
}

type jaasToken struct {
	text   string
	quoted bool
	line   int
}

func lexJAAS(s string) ([]jaasToken, int, error) {
	var toks []jaasToken
	line := 1
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case strings.HasPrefix(s[i:], "//"):
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case strings.HasPrefix(s[i:], "/*"):
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return nil, line, fmt.Errorf("a /* comment that does not end")
			}
			line += strings.Count(s[i:i+2+end], "\n")
			i += end + 4
		case c == '{' || c == '}' || c == ';' || c == '=':
			toks = append(toks, jaasToken{text: string(c), line: line})
			i++
		case c == '"':
			var b strings.Builder
			start := line
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				if s[i] == '\n' {
					line++
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, start, fmt.Errorf("a quoted value that does not end")
			}
			i++
			toks = append(toks, jaasToken{text: b.String(), quoted: true, line: start})
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n{};=\"", rune(s[j])) {
				j++
			}
			toks = append(toks, jaasToken{text: s[i:j], line: line})
			i = j
		}
	}
	return toks, line, nil
}

func parseJAAS(s string) (JAAS, int, error) {
	toks, line, err := lexJAAS(s)
	if err != nil {
		return nil, line, err
	}
	out := JAAS{}
	i := 0
	peek := func() *jaasToken {
		if i < len(toks) {
			return &toks[i]
		}
		return nil
	}
	expect := func(what string) (jaasToken, error) {
		t := peek()
		if t == nil {
			return jaasToken{}, fmt.Errorf("the file ends where %s should be", what)
		}
		i++
		return *t, nil
	}
	isWord := func(t jaasToken) bool { return t.quoted || !strings.ContainsAny(t.text, "{};=") }
	for peek() != nil {
		name, _ := expect("a login context's name")
		if !isWord(name) {
			return nil, name.line, fmt.Errorf("%q where a login context's name should be", name.text)
		}
		if t, err := expect("{"); err != nil || t.text != "{" || t.quoted {
			return nil, name.line, fmt.Errorf("login context %s: want { after its name", name.text)
		}
		var mods []LoginModule
		for {
			t, err := expect("a login module or }")
			if err != nil {
				return nil, name.line, fmt.Errorf("login context %s: %v", name.text, err)
			}
			if t.text == "}" && !t.quoted {
				break
			}
			flag, err := expect("the module's flag")
			if err != nil || !isWord(t) || !isWord(flag) {
				return nil, t.line, fmt.Errorf("login context %s: want a login module's class and flag", name.text)
			}
			switch strings.ToLower(flag.text) {
			case "required", "requisite", "sufficient", "optional":
			default:
				return nil, flag.line, fmt.Errorf("login module %s: flag %q, want required, requisite, sufficient or optional", t.text, flag.text)
			}
			m := LoginModule{Class: t.text, Flag: strings.ToLower(flag.text), Options: map[string]string{}}
			for {
				k, err := expect("an option or ;")
				if err != nil {
					return nil, t.line, fmt.Errorf("login module %s: %v", t.text, err)
				}
				if k.text == ";" && !k.quoted {
					break
				}
				if eq, err := expect("="); err != nil || eq.text != "=" || eq.quoted {
					return nil, k.line, fmt.Errorf("login module %s: option %s without = and a value", t.text, k.text)
				}
				v, err := expect("the value of " + k.text)
				if err != nil || !isWord(v) {
					return nil, k.line, fmt.Errorf("login module %s: option %s without a value", t.text, k.text)
				}
				m.Options[k.text] = v.text
			}
			mods = append(mods, m)
		}
		if t := peek(); t != nil && t.text == ";" && !t.quoted {
			i++
		} else {
			return nil, name.line, fmt.Errorf("login context %s: want ; after its }", name.text)
		}
		out[name.text] = append(out[name.text], mods...)
	}
	return out, line, nil
}

// The login modules ZooKeeper's Server context holds.
const (
	DigestLoginModule = "org.apache.zookeeper.server.auth.DigestLoginModule"
	krb5LoginModule   = "com.sun.security.auth.module.Krb5LoginModule"
)

// Users are the DIGEST-MD5 users of login context name (ZooKeeper's is
// "Server", or zookeeper.sasl.serverconfig): the user_NAME="password"
// options of its entries. A context for Kerberos (Krb5LoginModule) is an
// error: zkd offers no GSSAPI.
func (j JAAS) Users(name string) (map[string]string, error) {
	mods, ok := j[name]
	if !ok {
		return nil, fmt.Errorf("no %q login context; the server's SASL users are read from it", name)
	}
	users := map[string]string{}
	for _, m := range mods {
		if m.Class == krb5LoginModule {
			return nil, fmt.Errorf("login context %q uses Kerberos (%s): zkd offers SASL with DIGEST-MD5 only, not GSSAPI", name, m.Class)
		}
		for k, v := range m.Options {
			if user, ok := strings.CutPrefix(k, "user_"); ok {
				users[user] = v
			}
		}
	}
	return users, nil
}

// Login is the DIGEST-MD5 user and password login context name gives a
// server that authenticates to another (ZooKeeper's QuorumLearner
// context): the username and password options of its DigestLoginModule.
func (j JAAS) Login(name string) (user, password string, err error) {
	mods, ok := j[name]
	if !ok {
		return "", "", fmt.Errorf("no %q login context; a server's quorum SASL credentials are read from it", name)
	}
	for _, m := range mods {
		if m.Class == krb5LoginModule {
			return "", "", fmt.Errorf("login context %q uses Kerberos (%s): zkd offers SASL with DIGEST-MD5 only, not GSSAPI", name, m.Class)
		}
		if u, ok := m.Options["username"]; ok {
			return u, m.Options["password"], nil
		}
	}
	return "", "", fmt.Errorf("login context %q has no username option", name)
}
