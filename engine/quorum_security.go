package engine

import (
	"zkd/internal/quorumsec"
	"zkd/internal/sasl"
)

// quorumSecurity reads how this server secures its connections to the
// others, with ZooKeeper 3.8's keys: sslQuorum and the ssl.quorum.* stores
// (sslQuorumReloadCertFiles to pick renewed ones up), portUnification,
// and quorum SASL (quorum.auth.*, with the QuorumServer and QuorumLearner
// contexts of the JAAS file). nil when none is set. What cannot work stops
// the server, naming the key, as ZooKeeper refuses it.
func (s *Server) quorumSecurity() (*quorumsec.Config, error) {
	c := s.cfg
	if err := c.checkFlags("sslQuorum", "portUnification", "sslQuorumReloadCertFiles", "quorum.auth.enableSasl",
		"quorum.auth.learnerRequireSasl", "quorum.auth.serverRequireSasl"); err != nil {
		return nil, err
	}
	sslQuorum, unified := c.flag("sslQuorum"), c.flag("portUnification")
	saslOn := c.flag("quorum.auth.enableSasl")
	learnerReq, serverReq := c.flag("quorum.auth.learnerRequireSasl"), c.flag("quorum.auth.serverRequireSasl")
	switch {
	case serverReq && !saslOn:
		return nil, c.ErrorAt("quorum.auth.serverRequireSasl", "true, but quorum.auth.enableSasl is not")
	case learnerReq && !saslOn:
		return nil, c.ErrorAt("quorum.auth.learnerRequireSasl", "true, but quorum.auth.enableSasl is not")
	case serverReq && !learnerReq:
		// This server could not join others that require it.
		return nil, c.ErrorAt("quorum.auth.serverRequireSasl", "true, but quorum.auth.learnerRequireSasl is not: this server would not authenticate to the others")
	}
	if !sslQuorum && !unified && !saslOn {
		return nil, nil
	}
	sec := &quorumsec.Config{DialTLS: sslQuorum, Unified: unified, SASL: saslOn,
		ServerRequire: serverReq, LearnerRequire: learnerReq, Log: s.log}
	if sslQuorum || unified {
		by := "sslQuorum"
		if !sslQuorum {
			by = "portUnification"
		}
		tp, err := c.tlsParams("ssl.quorum.", by, c.flag("sslQuorumReloadCertFiles"), s.log)
		if err != nil {
			return nil, err
		}
		sec.TLS, sec.ClientAuth, sec.HostnameVerification = tp.live, tp.clientAuth, tp.hostnameVerification
		sec.MinVersion, sec.MaxVersion, sec.CipherSuites = tp.min, tp.max, tp.suites
		s.log.Info("TLS between servers", "sslQuorum", sslQuorum, "portUnification", unified,
			"hostnameVerification", tp.hostnameVerification)
	}
	if saslOn {
		if c.JAASFile == "" {
			return nil, c.ErrorAt("quorum.auth.enableSasl", "true, but no JAAS file is named (java.security.auth.login.config, in zoo.cfg or SERVER_JVMFLAGS): the servers' credentials are read from it")
		}
		j, err := sasl.ReadJAAS(c.JAASFile)
		if err != nil {
			return nil, c.ErrorAt("java.security.auth.login.config", "%v", err)
		}
		serverCtx, key, _ := c.extra("quorum.auth.server.saslLoginContext")
		if serverCtx == "" {
			serverCtx, key = "QuorumServer", "quorum.auth.enableSasl"
		}
		if sec.Users, err = j.Users(serverCtx); err != nil {
			return nil, c.ErrorAt(key, "%s: %v", c.JAASFile, err)
		}
		learnerCtx, key, _ := c.extra("quorum.auth.learner.saslLoginContext")
		if learnerCtx == "" {
			learnerCtx, key = "QuorumLearner", "quorum.auth.enableSasl"
		}
		if sec.User, sec.Password, err = j.Login(learnerCtx); err != nil {
			return nil, c.ErrorAt(key, "%s: %v", c.JAASFile, err)
		}
		s.log.Info("quorum SASL (DIGEST-MD5)", "file", c.JAASFile, "serverRequireSasl", serverReq,
			"learnerRequireSasl", learnerReq, "users", len(sec.Users), "as", sec.User)
	}
	return sec, nil
}
