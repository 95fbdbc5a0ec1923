// Package keystore loads the key stores and trust stores ZooKeeper's ssl.*
// settings name, in the formats ZooKeeper 3.8 reads: PEM, PKCS12 and JKS.
package keystore

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	jks "github.com/pavlo-v-chernykh/keystore-go/v4"
	"software.sslmate.com/src/go-pkcs12"
)

// Type is the store's format: the ssl.*.type setting when given, else
// the file name's extension, as ZooKeeper guesses it (.pem, .p12 or
// .pkcs12, .jks).
func Type(location, setting string) (string, error) {
	t := strings.ToUpper(strings.TrimSpace(setting))
	if t == "" {
		switch strings.ToLower(filepath.Ext(location)) {
		case ".pem":
			t = "PEM"
		case ".p12", ".pkcs12", ".pfx":
			t = "PKCS12"
		case ".jks":
			t = "JKS"
		default:
			return "", fmt.Errorf("%s: cannot tell the store's type from its name; set its type (PEM, PKCS12 or JKS)", location)
		}
	}
	switch t {
	case "PEM", "PKCS12", "JKS":
		return t, nil
	}
	return "", fmt.Errorf("store type %q: zkd reads PEM, PKCS12 and JKS", setting)
}

// KeyPair loads a key store: the server's (or client's) private key and
// its certificate chain.
func KeyPair(location, password, typ string) (tls.Certificate, error) {
	t, err := Type(location, typ)
	if err != nil {
		return tls.Certificate{}, err
	}
	b, err := os.ReadFile(location)
	if err != nil {
		return tls.Certificate{}, err
	}
	var key crypto.PrivateKey
	var chain []*x509.Certificate
	switch t {
	case "PEM":
		key, chain, err = pemKeyPair(b)
	case "PKCS12":
		var leaf *x509.Certificate
		var cas []*x509.Certificate
		key, leaf, cas, err = pkcs12.DecodeChain(b, password)
		chain = append([]*x509.Certificate{leaf}, cas...)
	case "JKS":
		key, chain, err = jksKeyPair(b, password)
	}
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s: %w", location, err)
	}
	out := tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, c := range chain {
		out.Certificate = append(out.Certificate, c.Raw)
	}
	return out, nil
}

// Trust loads a trust store: the certificates whose signatures are
// trusted.
func Trust(location, password, typ string) (*x509.CertPool, error) {
	t, err := Type(location, typ)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(location)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	switch t {
	case "PEM":
		_, certs, err = pemBlocks(b)
	case "PKCS12":
		certs, err = pkcs12.DecodeTrustStore(b, password)
	case "JKS":
		certs, err = jksTrusted(b, password)
	}
	if err == nil && len(certs) == 0 {
		err = errors.New("holds no certificate")
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", location, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// pemBlocks reads the private keys' blocks and the certificates of a PEM
// file.
func pemBlocks(b []byte) (keys []*pem.Block, certs []*x509.Certificate, err error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return keys, certs, nil
		}
		switch {
		case blk.Type == "CERTIFICATE":
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, nil, err
			}
			certs = append(certs, c)
		case strings.HasSuffix(blk.Type, "PRIVATE KEY"):
			keys = append(keys, blk)
		}
	}
}

func pemKeyPair(b []byte) (crypto.PrivateKey, []*x509.Certificate, error) {
	keys, certs, err := pemBlocks(b)
	if err != nil {
		return nil, nil, err
	}
	if len(keys) != 1 || len(certs) == 0 {
		return nil, nil, fmt.Errorf("a PEM key store holds one private key and its certificates; this one holds %d keys and %d certificates", len(keys), len(certs))
	}
	if keys[0].Type == "ENCRYPTED PRIVATE KEY" {
		return nil, nil, errors.New("the private key is encrypted; zkd reads unencrypted PEM keys (or a PKCS12 or JKS store with a password)")
	}
	key, err := parseKey(keys[0].Bytes)
	return key, certs, err
}

func parseKey(der []byte) (crypto.PrivateKey, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("the private key is in no form zkd reads (PKCS#8, PKCS#1, SEC 1)")
}

func loadJKS(b []byte, password string) (jks.KeyStore, error) {
	ks := jks.New()
	err := ks.Load(strings.NewReader(string(b)), []byte(password))
	return ks, err
}

func jksKeyPair(b []byte, password string) (crypto.PrivateKey, []*x509.Certificate, error) {
	ks, err := loadJKS(b, password)
	if err != nil {
		return nil, nil, err
	}
	for _, alias := range ks.Aliases() {
		if !ks.IsPrivateKeyEntry(alias) {
			continue
		}
		e, err := ks.GetPrivateKeyEntry(alias, []byte(password))
		if err != nil {
			return nil, nil, err
		}
		key, err := parseKey(e.PrivateKey)
		if err != nil {
			return nil, nil, err
		}
		var chain []*x509.Certificate
		for _, c := range e.CertificateChain {
			cert, err := x509.ParseCertificate(c.Content)
			if err != nil {
				return nil, nil, err
			}
			chain = append(chain, cert)
		}
		if len(chain) == 0 {
			return nil, nil, fmt.Errorf("entry %s has no certificate", alias)
		}
		return key, chain, nil
	}
	return nil, nil, errors.New("holds no private key entry")
}

func jksTrusted(b []byte, password string) ([]*x509.Certificate, error) {
	ks, err := loadJKS(b, password)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for _, alias := range ks.Aliases() {
		if !ks.IsTrustedCertificateEntry(alias) {
			continue
		}
		e, err := ks.GetTrustedCertificateEntry(alias)
		if err != nil {
			return nil, err
		}
		c, err := x509.ParseCertificate(e.Certificate.Content)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
