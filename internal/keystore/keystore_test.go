package keystore

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jks "github.com/pavlo-v-chernykh/keystore-go/v4"
	"software.sslmate.com/src/go-pkcs12"
)

// The same key and certificate, stored as PEM, PKCS12 and JKS, load alike;
// so do the trust stores; a wrong password and an unknown type are errors
// that name the file.
func TestStoresOfEachType(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pk, _ := x509.MarshalPKCS8PrivateKey(key)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pemStore := write("k.pem", append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...))
	p12, err := pkcs12.Modern.Encode(key, cert, nil, "pw")
	if err != nil {
		t.Fatal(err)
	}
	p12Store := write("k.p12", p12)
	p12Trust, err := pkcs12.Modern.EncodeTrustStore([]*x509.Certificate{cert}, "pw")
	if err != nil {
		t.Fatal(err)
	}
	p12TrustStore := write("t.p12", p12Trust)
	ks := jks.New()
	chain := []jks.Certificate{{Type: "X509", Content: der}}
	if err := ks.SetPrivateKeyEntry("server", jks.PrivateKeyEntry{CreationTime: time.Now(), PrivateKey: pk, CertificateChain: chain}, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	if err := ks.SetTrustedCertificateEntry("ca", jks.TrustedCertificateEntry{CreationTime: time.Now(), Certificate: chain[0]}); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := ks.Store(&b, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	jksStore := write("k.jks", []byte(b.String()))

	for _, c := range []struct{ path, typ string }{{pemStore, ""}, {p12Store, ""}, {jksStore, ""}, {jksStore, "jks"}} {
		kp, err := KeyPair(c.path, "pw", c.typ)
		if err != nil {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		if kp.Leaf.Subject.CommonName != "server" || len(kp.Certificate) != 1 {
			t.Errorf("%s: %+v", c.path, kp.Leaf.Subject)
		}
	}
	for _, p := range []string{pemStore, p12TrustStore, jksStore} {
		if _, err := Trust(p, "pw", ""); err != nil {
			t.Errorf("trust %s: %v", p, err)
		}
	}
	if _, err := KeyPair(p12Store, "wrong", ""); err == nil || !strings.Contains(err.Error(), "k.p12") {
		t.Errorf("a wrong password: %v", err)
	}
	if _, err := KeyPair(write("k.bin", nil), "", ""); err == nil || !strings.Contains(err.Error(), "k.bin") {
		t.Errorf("an unknown type: %v", err)
	}
	if _, err := KeyPair(pemStore, "", "BCFKS"); err == nil {
		t.Error("BCFKS was taken")
	}
}
