package engine

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
	"zkd/ztree"

	"zkd/wal"
	"zkd/wire"
)

// Config is a server's settings, read from a zoo.cfg with ZooKeeper 3.8's
// keys and defaults.
type Config struct {
	File string // where it was read from; "" for the embedded default
	// DynamicConfigFile (dynamicConfigFile) is where the server.N,
	// group.N and weight.N lines are instead of zoo.cfg, as ZooKeeper
	// keeps them once dynamic reconfiguration has been on. ConfigVersion
	// is the hex number its name ends in (0 for none), the version of
	// the ensemble's configuration.
	DynamicConfigFile string
	ConfigVersion     int64
	// dynamicKeys are the keys read from DynamicConfigFile, so that an
	// error in one names that file.
	dynamicKeys map[string]bool
	// flagKeys are the ensemble keys taken from JVM flags (ApplyJVMFlags),
	// each with where the flags came from, so that an error in one names
	// that; serverLines are the server.N lines, to read the ensemble again
	// with them.
	flagKeys    map[string]string
	serverLines map[int]int
	// Initial is the file's text as read, for the AdminServer's
	// initial_configuration command.
	Initial string

	TickTime          int // ms
	DataDir           string
	DataLogDir        string // "" means DataDir
	ClientPort        int
	ClientPortAddress string // "" means every address
	MaxClientCnxns    int    // per client IP; 0 means no limit
	MaxCnxns          int    // in all; 0 means no limit
	MinSessionTimeout int    // ms; -1 means 2 × tickTime
	MaxSessionTimeout int    // ms; -1 means 20 × tickTime

	SnapCount              int
	SnapSizeLimitKB        int64
	TxnLogSizeLimitKB      int64 // -1: no limit
	PreAllocSizeKB         int64
	SnapshotCompression    string // "", gz, snappy, zstd
	GlobalOutstandingLimit int
	// SessionlessCnxnTimeout is how long a connection may stay without
	// completing its handshake (nio.sessionlessCnxnTimeout, ms, as
	// ZooKeeper's zookeeper.nio.sessionlessCnxnTimeout).
	SessionlessCnxnTimeout int
	// MaxConnOutput bounds the replies and events waiting to be sent on
	// one connection (zkd.connection.maxOutputBytes); 0 means four times
	// jute.maxbuffer. See conn.
	MaxConnOutput int
	// Process settings zkd's command applies (the engine does not: a
	// library leaves the process to its host). See docs/configuration.md.
	EventLoops  int   // zkd.eventLoops: gnet event loops; 0: the CPUs zkd may use
	GoMaxProcs  int   // zkd.gomaxprocs: 0: the CPUs zkd may use (GOMAXPROCS in the environment wins)
	GCRoomMB    int   // zkd.gc.roomMB: the heap may grow by this much between collections
	MemoryLimit int64 // zkd.memoryLimitMB, in bytes: the Go runtime's soft limit; 0: none

	SnapRetainCount    int
	PurgeIntervalHours int
	ForceSync          bool
	// FsyncWarningThreshold (fsync.warningthresholdms): an fsync of the
	// txn log that takes longer is logged and counted.
	FsyncWarningThreshold int // ms
	MaxBuffer             int // jute.maxbuffer

	FourLetterWords string // 4lw.commands.whitelist as written; "srvr" by default

	ExtendedTypes bool
	EnforceQuota  bool
	// AuditEnable (audit.enable) writes ZooKeeper's audit events into
	// the log.
	AuditEnable bool
	// DataDirAutocreate (zookeeper.datadir.autocreate) lets the server
	// create a missing version-2 directory; DBAutocreate
	// (zookeeper.db.autocreate) lets an ensemble member trust a data
	// directory with neither snapshot nor log. Both true by default.
	DataDirAutocreate, DBAutocreate bool
	// SkipACL (zookeeper.skipACL) as written: as in ZooKeeper, only
	// "yes" turns ACL checks off; any other value leaves them on.
	SkipACL                string
	ContainerCheckInterval int // ms
	ContainerMaxPerMinute  int
	ContainerMaxNeverUsed  int // ms; 0: never-used containers stay
	SuperDigest            string

	// SASL on the client port: the JAAS file whose login context
	// SASLLoginContext ("Server") holds the DIGEST-MD5 users
	// (java.security.auth.login.config, in zoo.cfg or as -D in
	// SERVER_JVMFLAGS; zookeeper.sasl.serverconfig), and the SASL user
	// who is a super user (zookeeper.superUser).
	JAASFile         string
	SASLLoginContext string
	SASLSuperUser    string
	// EnforceAuth (enforce.auth.enabled, or sessionRequireClientSASLAuth
	// for the sasl scheme) closes the connection of a session that sends
	// any request but auth and sasl before it has authenticated with one
	// of EnforceAuthSchemes (enforce.auth.schemes, comma-separated).
	EnforceAuth        bool
	EnforceAuthSchemes string
	RequireSASLAuth    bool
	ReconfigEnabled    bool
	StandaloneEnabled  bool
	// CloseSessionTxn (closeSessionTxn.enabled) has closeSession txns
	// list the session's ephemerals, as ZooKeeper 3.8 does by default.
	CloseSessionTxn bool

	// The AdminServer (admin.*): the HTTP server of ZooKeeper's commands,
	// which zkd's command runs; see Server.AdminHandler.
	AdminEnable      bool
	AdminAddress     string
	AdminPort        int
	AdminCommandURL  string
	AdminIdleTimeout int // ms

	// The metrics endpoint (metricsProvider.*): with ZooKeeper's
	// Prometheus provider named, zkd's command serves /metrics; see
	// Server.PrometheusCollector.
	MetricsProvider    string
	MetricsHost        string
	MetricsPort        int
	MetricsExportExtra bool // metricsProvider.exportJvmInfo: the Go runtime's and the process's figures too

	// LogLevel and LogFormat (zkd.log.level, zkd.log.format) are how
	// zkd's command logs: debug, info, warn or error; text or json.
	LogLevel  slog.Level
	LogFormat string

	// ReadOnlyMode is readonlymode.enabled: an ensemble member without a
	// quorum serves reads to the clients that accept a read-only server.
	// ZooKeeper reads it only as the JVM flag -Dreadonlymode.enabled;
	// zkd reads that (SERVER_JVMFLAGS) and the zoo.cfg key.
	ReadOnlyMode bool

	// LeaderServes is leaderServes: false ("no") keeps clients off an
	// ensemble's leader, which then only coordinates.
	LeaderServes bool

	// ConnThrottle is ZooKeeper's connection throttle, the
	// connection_throttle_* keys; off by default.
	ConnThrottle ConnThrottle

	// Lines says on which line of File each key was set, for errors
	// found after parsing (a port in use, a dataDir that is a file).
	Lines map[string]int

	// Servers are the server.N lines, kept for the ensemble.
	Servers map[int]string
	// Ensemble is the ensemble this server is a member of; nil for a
	// standalone server.
	Ensemble *Ensemble
	// Extra holds every key this server does not act on, as ZooKeeper
	// keeps them as system properties.
	Extra map[string]string
}

// DefaultConfig is what `zkd` with no argument runs on: ZooKeeper's
// defaults, port 2181, data in ./zkd-data.
func DefaultConfig() *Config {
	return &Config{
		TickTime:               3000,
		DataDir:                "zkd-data",
		ClientPort:             2181,
		MaxClientCnxns:         60,
		MinSessionTimeout:      -1,
		MaxSessionTimeout:      -1,
		SnapCount:              100000,
		SnapSizeLimitKB:        4194304,
		TxnLogSizeLimitKB:      -1,
		PreAllocSizeKB:         65536,
		GlobalOutstandingLimit: 1000,
		SessionlessCnxnTimeout: 10000,
		GCRoomMB:               64,
		SnapRetainCount:        3,
		ForceSync:              true,
		FsyncWarningThreshold:  1000,
		MaxBuffer:              wire.DefaultMaxBuffer,
		FourLetterWords:        "srvr",
		SASLLoginContext:       "Server",
		ConnThrottle:           DefaultConnThrottle,
		LeaderServes:           true,
		ContainerCheckInterval: 60000,
		ContainerMaxPerMinute:  10000,
		StandaloneEnabled:      true,
		DataDirAutocreate:      true,
		DBAutocreate:           true,
		CloseSessionTxn:        true,
		AdminEnable:            true,
		AdminAddress:           "0.0.0.0",
		AdminPort:              8080,
		AdminCommandURL:        "/commands",
		AdminIdleTimeout:       30000,
		MetricsHost:            "0.0.0.0",
		MetricsPort:            7000,
		MetricsExportExtra:     true,
		LogFormat:              "text",
		Servers:                map[int]string{},
		Extra:                  map[string]string{},
		Lines:                  map[string]int{},
	}
}

// PrometheusProvider is the class name of ZooKeeper's Prometheus metrics
// provider, which metricsProvider.className names to turn it on.
const PrometheusProvider = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"

// defaultProvider is ZooKeeper's default metrics provider, which serves
// no endpoint of its own.
const defaultProvider = "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider"

// ErrorAt is a ConfigError for key, at the line that set it.
func (c *Config) ErrorAt(key, format string, args ...any) *ConfigError {
	return &ConfigError{File: c.fileOf(key), Line: c.Lines[key], Key: key, Msg: fmt.Sprintf(format, args...)}
}

// fileOf is the file key was read from: zoo.cfg, or the dynamic config
// file for the ensemble's lines when there is one.
func (c *Config) fileOf(key string) string {
	if from, ok := c.flagKeys[key]; ok {
		return from
	}
	if c.dynamicKeys[key] || (strings.HasPrefix(key, "server.") && c.DynamicConfigFile != "") {
		return c.DynamicConfigFile
	}
	return c.File
}

// ConfigError is a zoo.cfg line that cannot be used.
type ConfigError struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *ConfigError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s: %s", e.File, e.Key, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Key, e.Msg)
}

// setting is how one key is parsed into a Config.
type setting func(c *Config, v string) error

func intKey(f func(*Config) *int) setting {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		*f(c) = n
		return nil
	}
}

func int64Key(f func(*Config) *int64) setting {
	return func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		*f(c) = n
		return nil
	}
}

func stringKey(f func(*Config) *string) setting {
	return func(c *Config, v string) error { *f(c) = v; return nil }
}

// boolKey parses the way ZooKeeper does for each key it names: Java's
// Boolean.parseBoolean (only "true" is true) or, for forceSync, yes/no.
func boolKey(f func(*Config) *bool) setting {
	return func(c *Config, v string) error {
		switch strings.ToLower(v) {
		case "true", "yes":
			*f(c) = true
		case "false", "no":
			*f(c) = false
		default:
			return fmt.Errorf("%q is not true or false", v)
		}
		return nil
	}
}

// intAtLeast is intKey for a value that may not be below least.
func intAtLeast(least int, want string, f func(*Config) *int) setting {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < least {
			return fmt.Errorf("%q is not %s", v, want)
		}
		*f(c) = n
		return nil
	}
}

// chanceKey reads a chance, or a share: a number from 0 to 1.
func chanceKey(f func(*Config) *float64) setting {
	return func(c *Config, v string) error {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || x < 0 || x > 1 || x != x {
			return fmt.Errorf("%q is not a number from 0 to 1", v)
		}
		*f(c) = x
		return nil
	}
}

// settings are the keys a standalone ZooKeeper 3.8 server reads, from
// zoo.cfg or, for the system-property ones, with or without their
// "zookeeper." prefix.
var settings = map[string]setting{
	"tickTime":               intKey(func(c *Config) *int { return &c.TickTime }),
	"dataDir":                stringKey(func(c *Config) *string { return &c.DataDir }),
	"dataLogDir":             stringKey(func(c *Config) *string { return &c.DataLogDir }),
	"clientPort":             intKey(func(c *Config) *int { return &c.ClientPort }),
	"clientPortAddress":      stringKey(func(c *Config) *string { return &c.ClientPortAddress }),
	"maxClientCnxns":         intKey(func(c *Config) *int { return &c.MaxClientCnxns }),
	"maxCnxns":               intKey(func(c *Config) *int { return &c.MaxCnxns }),
	"minSessionTimeout":      intKey(func(c *Config) *int { return &c.MinSessionTimeout }),
	"maxSessionTimeout":      intKey(func(c *Config) *int { return &c.MaxSessionTimeout }),
	"snapCount":              intKey(func(c *Config) *int { return &c.SnapCount }),
	"snapSizeLimitInKb":      int64Key(func(c *Config) *int64 { return &c.SnapSizeLimitKB }),
	"txnLogSizeLimitInKb":    int64Key(func(c *Config) *int64 { return &c.TxnLogSizeLimitKB }),
	"preAllocSize":           int64Key(func(c *Config) *int64 { return &c.PreAllocSizeKB }),
	"globalOutstandingLimit": intKey(func(c *Config) *int { return &c.GlobalOutstandingLimit }),
	"nio.sessionlessCnxnTimeout": intKey(func(c *Config) *int {
		return &c.SessionlessCnxnTimeout
	}),
	"readonlymode.enabled": func(c *Config, v string) error {
		// Java's Boolean.getBoolean, as ZooKeeper reads it: only true
		// (in any case) is true; zkd refuses what is neither.
		switch strings.ToLower(v) {
		case "true":
			c.ReadOnlyMode = true
		case "false":
			c.ReadOnlyMode = false
		default:
			return fmt.Errorf("%q is not true or false", v)
		}
		return nil
	},
	"leaderServes": func(c *Config, v string) error {
		// ZooKeeper compares with "no" exactly and takes anything else
		// as yes, true and false among them.
		switch v {
		case "yes":
			c.LeaderServes = true
		case "no":
			c.LeaderServes = false
		default:
			return fmt.Errorf("%q is neither yes nor no (ZooKeeper keeps clients off the leader only for \"no\", and takes anything else as yes)", v)
		}
		return nil
	},
	"connection_throttle_tokens": intAtLeast(0, "a number of tokens (0 or more)", func(c *Config) *int { return &c.ConnThrottle.Tokens }),
	"connection_throttle_fill_time": intAtLeast(1, "a positive number of milliseconds", func(c *Config) *int {
		return &c.ConnThrottle.FillTime
	}),
	"connection_throttle_fill_count": intAtLeast(0, "a number of tokens (0 or more)", func(c *Config) *int {
		return &c.ConnThrottle.FillCount
	}),
	"connection_throttle_freeze_time": intAtLeast(-1, "a number of milliseconds, or -1 for no random drops", func(c *Config) *int {
		return &c.ConnThrottle.FreezeTime
	}),
	"connection_throttle_drop_increase":         chanceKey(func(c *Config) *float64 { return &c.ConnThrottle.DropIncrease }),
	"connection_throttle_drop_decrease":         chanceKey(func(c *Config) *float64 { return &c.ConnThrottle.DropDecrease }),
	"connection_throttle_decrease_ratio":        chanceKey(func(c *Config) *float64 { return &c.ConnThrottle.DecreaseRatio }),
	"connection_throttle_weight_enabled":        boolKey(func(c *Config) *bool { return &c.ConnThrottle.WeightEnabled }),
	"connection_throttle_global_session_weight": intKey(func(c *Config) *int { return &c.ConnThrottle.GlobalWeight }),
	"connection_throttle_local_session_weight":  intKey(func(c *Config) *int { return &c.ConnThrottle.LocalWeight }),
	"connection_throttle_renew_session_weight":  intKey(func(c *Config) *int { return &c.ConnThrottle.RenewWeight }),
	"zkd.connection.maxOutputBytes":             intKey(func(c *Config) *int { return &c.MaxConnOutput }),
	"zkd.eventLoops":                            intKey(func(c *Config) *int { return &c.EventLoops }),
	"zkd.gomaxprocs":                            intKey(func(c *Config) *int { return &c.GoMaxProcs }),
	"zkd.gc.roomMB":                             intKey(func(c *Config) *int { return &c.GCRoomMB }),
	"zkd.memoryLimitMB": func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		c.MemoryLimit = n << 20
		return nil
	},
	"autopurge.snapRetainCount": intKey(func(c *Config) *int {
		return &c.SnapRetainCount
	}),
	"autopurge.purgeInterval":  intKey(func(c *Config) *int { return &c.PurgeIntervalHours }),
	"forceSync":                boolKey(func(c *Config) *bool { return &c.ForceSync }),
	"fsync.warningthresholdms": intKey(func(c *Config) *int { return &c.FsyncWarningThreshold }),
	"jute.maxbuffer": func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 0, 32)
		if err != nil || n <= 0 {
			return fmt.Errorf("%q is not a positive integer", v)
		}
		c.MaxBuffer = int(n)
		return nil
	},
	"4lw.commands.whitelist": stringKey(func(c *Config) *string { return &c.FourLetterWords }),
	"extendedTypesEnabled":   boolKey(func(c *Config) *bool { return &c.ExtendedTypes }),
	"enforceQuota":           boolKey(func(c *Config) *bool { return &c.EnforceQuota }),
	"skipACL":                stringKey(func(c *Config) *string { return &c.SkipACL }),
	"dynamicConfigFile":      stringKey(func(c *Config) *string { return &c.DynamicConfigFile }),
	"audit.enable":           boolKey(func(c *Config) *bool { return &c.AuditEnable }),
	"datadir.autocreate":     boolKey(func(c *Config) *bool { return &c.DataDirAutocreate }),
	"db.autocreate":          boolKey(func(c *Config) *bool { return &c.DBAutocreate }),
	"znode.container.checkIntervalMs": intKey(func(c *Config) *int {
		return &c.ContainerCheckInterval
	}),
	"znode.container.maxPerMinute": intKey(func(c *Config) *int { return &c.ContainerMaxPerMinute }),
	"znode.container.maxNeverUsedIntervalMs": intKey(func(c *Config) *int {
		return &c.ContainerMaxNeverUsed
	}),
	"DigestAuthenticationProvider.superDigest": stringKey(func(c *Config) *string {
		return &c.SuperDigest
	}),
	"java.security.auth.login.config": stringKey(func(c *Config) *string { return &c.JAASFile }),
	"sasl.serverconfig":               stringKey(func(c *Config) *string { return &c.SASLLoginContext }),
	"superUser":                       stringKey(func(c *Config) *string { return &c.SASLSuperUser }),
	"enforce.auth.enabled":            boolKey(func(c *Config) *bool { return &c.EnforceAuth }),
	"enforce.auth.schemes":            stringKey(func(c *Config) *string { return &c.EnforceAuthSchemes }),
	"sessionRequireClientSASLAuth":    boolKey(func(c *Config) *bool { return &c.RequireSASLAuth }),
	"reconfigEnabled":                 boolKey(func(c *Config) *bool { return &c.ReconfigEnabled }),
	"standaloneEnabled":               boolKey(func(c *Config) *bool { return &c.StandaloneEnabled }),
	"closeSessionTxn.enabled":         boolKey(func(c *Config) *bool { return &c.CloseSessionTxn }),
	"admin.enableServer":              boolKey(func(c *Config) *bool { return &c.AdminEnable }),
	"admin.serverAddress":             stringKey(func(c *Config) *string { return &c.AdminAddress }),
	"admin.serverPort": func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 65535 {
			return fmt.Errorf("%q is not a port number (0 to 65535)", v)
		}
		c.AdminPort = n
		return nil
	},
	"admin.commandURL":  stringKey(func(c *Config) *string { return &c.AdminCommandURL }),
	"admin.idleTimeout": intKey(func(c *Config) *int { return &c.AdminIdleTimeout }),
	"metricsProvider.className": func(c *Config, v string) error {
		switch v {
		case PrometheusProvider:
			c.MetricsProvider = v
		case defaultProvider:
			c.MetricsProvider = "" // mntr and the AdminServer only, as by default
		default:
			return fmt.Errorf("%q is not a metrics provider zkd has: it has %s and %s", v, PrometheusProvider, defaultProvider)
		}
		return nil
	},
	"metricsProvider.httpHost": stringKey(func(c *Config) *string { return &c.MetricsHost }),
	"metricsProvider.httpPort": func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 65535 {
			return fmt.Errorf("%q is not a port number (0 to 65535)", v)
		}
		c.MetricsPort = n
		return nil
	},
	"metricsProvider.exportJvmInfo": boolKey(func(c *Config) *bool { return &c.MetricsExportExtra }),
	"zkd.log.level": func(c *Config, v string) error {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			return fmt.Errorf("%q is not a log level (debug, info, warn or error)", v)
		}
		return nil
	},
	"zkd.log.format": func(c *Config, v string) error {
		if v != "text" && v != "json" {
			return fmt.Errorf("%q is not a log format (text or json)", v)
		}
		c.LogFormat = v
		return nil
	},
	"snapshot.compression.method": func(c *Config, v string) error {
		if !wal.ValidCompression(v) {
			return fmt.Errorf("%q is not a snapshot compression method (gz, snappy, zstd, or empty)", v)
		}
		c.SnapshotCompression = v
		return nil
	},
}

// inertKeys are names ZooKeeper 3.8's administrator's guide gives to
// settings its server reads only under another name: in zoo.cfg they
// become system properties nothing reads. Each maps to the name that
// works.
var inertKeys = map[string]string{
	"maxConcurrentSnapSyncs":      "leader.maxConcurrentSnapSyncs",
	"maxConcurrentDiffSyncs":      "leader.maxConcurrentDiffSyncs",
	"maxTimeToWaitForEpoch":       "leader.maxTimeToWaitForEpoch",
	"connectionMaxTokens":         "connection_throttle_tokens",
	"connectionTokenFillTime":     "connection_throttle_fill_time",
	"connectionTokenFillCount":    "connection_throttle_fill_count",
	"connectionFreezeTime":        "connection_throttle_freeze_time",
	"connectionDropIncrease":      "connection_throttle_drop_increase",
	"connectionDropDecrease":      "connection_throttle_drop_decrease",
	"connectionDecreaseRatio":     "connection_throttle_decrease_ratio",
	"requestThrottleLimit":        "request_throttle_max_requests",
	"requestThrottleStallTime":    "request_throttle_stall_time",
	"requestThrottleDropStale":    "request_throttle_drop_stale",
	"requestStaleLatencyCheck":    "request_stale_latency_check",
	"requestStaleConnectionCheck": "request_stale_connection_check",
	"advancedFlowControlEnabled":  "netty.advancedFlowControl.enabled",
}

// knownKeys are the keys ZooKeeper 3.8 reads that this server accepts and
// keeps (in Extra) without acting on them yet: the AdminServer, metrics,
// TLS and ensemble settings.
var knownKeys = []string{
	"secureClientPort", "secureClientPortAddress", "clientPortListenBacklog",
	"initLimit", "syncLimit", "connectToLearnerMasterLimit", "electionAlg",
	"electionPortBindRetry", "peerType", "quorumListenOnAllIPs", "syncEnabled",
	"localSessionsEnabled", "localSessionsUpgradingEnabled",
	"maxResponseCacheSize", "maxGetChildrenResponseCacheSize", "serverCnxnFactory",
	"admin.portUnification", "admin.forceHttps",
	"metricsProvider.numWorkerThreads",
	"metricsProvider.maxQueueSize", "metricsProvider.workerShutdownTimeoutMs",
	"sslQuorum", "portUnification", "sslQuorumReloadCertFiles", "client.portUnification",
	"multiAddress.enabled", "multiAddress.reachabilityCheckTimeoutMs",
	"multiAddress.reachabilityCheckEnabled", "oraclePath",
	"quorum.auth.enableSasl", "quorum.auth.learnerRequireSasl", "quorum.auth.serverRequireSasl",
	"quorum.auth.learner.saslLoginContext", "quorum.auth.server.saslLoginContext",
	"quorum.auth.kerberos.servicePrincipal", "quorum.cnxn.threads.size",
	"digest.enabled", "snapshot.trust.empty",
	"commitLogCount", "maxBatchSize", "leader.maxConcurrentSnapSyncs", "leader.maxConcurrentDiffSyncs",
	"observer.election.DelayMs", "fastleader.minNotificationInterval", "fastleader.maxNotificationInterval",
	"cnxTimeout", "snapshotSizeFactor",
	"flushDelay", "maxWriteQueuePollTime", "request_throttle_max_requests", "request_throttle_stall_time",
	"request_throttle_drop_stale", "request_stale_latency_check", "request_stale_connection_check",
	"netty.advancedFlowControl.enabled", "leader.maxTimeToWaitForEpoch", "learner.asyncSending", "leader.closeSocketAsync",
	"learner.closeSocketAsync", "netty.server.outboundBufferCapacity",
	"watchManagerName",
	"ssl.keyStore.location", "ssl.keyStore.password", "ssl.trustStore.location",
	"ssl.trustStore.password", "ssl.quorum.keyStore.location", "ssl.quorum.keyStore.password",
	"ssl.quorum.trustStore.location", "ssl.quorum.trustStore.password",
	"ssl.clientAuth", "ssl.protocol", "ssl.enabledProtocols", "ssl.ciphersuites",
	"ssl.hostnameVerification", "ssl.quorum.hostnameVerification",
	"ssl.keyStore.type", "ssl.trustStore.type", "ssl.quorum.keyStore.type", "ssl.quorum.trustStore.type",
	"ssl.quorum.clientAuth", "ssl.quorum.protocol", "ssl.quorum.enabledProtocols", "ssl.quorum.ciphersuites",
	"client.certReload",
	"authProvider.1", "authProvider.2", "authProvider.3", "kerberos.removeHostFromPrincipal",
	"kerberos.removeRealmFromPrincipal", "clientCnxnSocket",
	"zkd.election.finalizeWaitMs", "observerMasterPort",
}

var known = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range knownKeys {
		m[k] = true
	}
	return m
}()

// SASLProvider is the class of ZooKeeper's SASL authentication provider,
// which an authProvider.N key names to admit sasl ACLs.
const SASLProvider = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"

// TreeOptions are the tree's options this configuration sets.
func (c *Config) TreeOptions() ztree.Options {
	o := ztree.Options{ExtendedTypes: c.ExtendedTypes, EnforceQuota: c.EnforceQuota, SkipACL: c.SkipACL == "yes"}
	for k, v := range c.Extra {
		name := strings.TrimPrefix(k, "zookeeper.")
		if strings.HasPrefix(name, "authProvider.") {
			o.SASLACLs = o.SASLACLs || strings.TrimSpace(v) == SASLProvider
			o.X509ACLs = o.X509ACLs || strings.TrimSpace(v) == X509Provider
		}
	}
	return o
}

// EnforcedAuthSchemes are the schemes a session must have authenticated
// with before any request but auth and sasl, nil when none is enforced:
// sasl with sessionRequireClientSASLAuth, else enforce.auth.schemes when
// enforce.auth.enabled. A scheme the server has no provider for is an
// error naming the key, as ZooKeeper refuses to start.
func (c *Config) EnforcedAuthSchemes() ([]string, error) {
	providers := c.TreeOptions()
	if c.RequireSASLAuth {
		if !providers.SASLACLs {
			return nil, c.ErrorAt("sessionRequireClientSASLAuth", "the sasl scheme is not available: no authProvider.N names %s", SASLProvider)
		}
		return []string{"sasl"}, nil
	}
	if !c.EnforceAuth {
		return nil, nil
	}
	var schemes []string
	for _, s := range strings.Split(c.EnforceAuthSchemes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			schemes = append(schemes, s)
		}
	}
	if len(schemes) == 0 {
		return nil, c.ErrorAt("enforce.auth.enabled", "true, but enforce.auth.schemes names no scheme")
	}
	for _, s := range schemes {
		if s != "digest" && s != "ip" && (s != "sasl" || !providers.SASLACLs) && (s != "x509" || !providers.X509ACLs) {
			return nil, c.ErrorAt("enforce.auth.schemes", "authentication scheme %s is not available", s)
		}
	}
	return schemes, nil
}

// ApplyJVMFlags takes the -Dkey=value flags of flags (the SERVER_JVMFLAGS
// that ZooKeeper's start scripts pass to the JVM, named by from) that set
// keys zkd reads, where the configuration file did not set them: a
// deployment that keeps java.security.auth.login.config or
// zookeeper.superUser there keeps working. A bad value is an error naming
// from and the key.
func ApplyJVMFlags(c *Config, from, flags string) error {
	ensembleChanged := false
	for _, f := range strings.Fields(flags) {
		kv, ok := strings.CutPrefix(strings.Trim(f, `"'`), "-D")
		if !ok {
			continue
		}
		key, val, _ := strings.Cut(kv, "=")
		name := strings.TrimPrefix(key, "zookeeper.")
		if strings.HasPrefix(name, "authProvider.") && c.Lines[name] == 0 {
			c.Extra[name] = val
			continue
		}
		if jvmEnsembleKeys[name] && key == "zookeeper."+name {
			if c.Lines[name] == 0 {
				c.Extra[name] = val
				if c.flagKeys == nil {
					c.flagKeys = map[string]string{}
				}
				c.flagKeys[name] = from
				ensembleChanged = true
			}
			continue
		}
		set := settings[name]
		if set == nil || c.Lines[name] != 0 {
			continue
		}
		if err := set(c, val); err != nil {
			return &ConfigError{File: from, Key: key, Msg: err.Error()}
		}
	}
	if ensembleChanged && c.Ensemble != nil {
		return c.ensembleOf(c.serverLines)
	}
	return nil
}

// jvmEnsembleKeys are the ensemble settings ZooKeeper reads as system
// properties (zookeeper.<name>), which a deployment may give as JVM flags
// rather than zoo.cfg keys.
var jvmEnsembleKeys = map[string]bool{
	"cnxTimeout": true, "electionPortBindRetry": true, "commitLogCount": true, "snapshotSizeFactor": true,
	"leader.maxConcurrentSnapSyncs": true, "leader.maxConcurrentDiffSyncs": true,
	"fastleader.minNotificationInterval": true, "fastleader.maxNotificationInterval": true,
	"observer.election.DelayMs": true,
}

// LoadConfig reads a zoo.cfg.
func LoadConfig(file string, log *slog.Logger) (*Config, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	c, err := ParseConfig(file, bytes.NewReader(b), log)
	if c != nil {
		c.Initial = string(b)
	}
	return c, err
}

// ParseConfig reads zoo.cfg text (Java properties: key=value, key:value or
// key value; # and ! start comments) over the defaults. A bad value is an
// error naming the file, line and key; an unknown key is kept in Extra with a
// warning, as ZooKeeper passes it on as a system property.
func ParseConfig(file string, r io.Reader, log *slog.Logger) (*Config, error) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := DefaultConfig()
	c.DataDir = ""
	c.ClientPort = 0
	c.File = file
	seenPort := false
	serverLines := map[int]int{} // where each server.N line is
	err := eachProperty(file, r, func(line int, key, val string) error {
		c.Lines[key] = line
		fail := func(msg string) error { return &ConfigError{file, line, key, msg} }
		name := strings.TrimPrefix(key, "zookeeper.")
		c.Lines[name] = line
		switch {
		case settings[name] != nil:
			if err := settings[name](c, val); err != nil {
				return fail(err.Error())
			}
			if name == "clientPort" {
				seenPort = true
			}
		case strings.HasPrefix(key, "server."):
			id, ok := serverID(key)
			if !ok {
				return fail("the server id must be a non-negative integer")
			}
			c.Servers[id] = val
			serverLines[id] = line
		case inertKeys[name] != "":
			real := inertKeys[name]
			acts := "zkd accepts it and does not act on it"
			if settings[real] != nil || jvmEnsembleKeys[real] {
				acts = "zkd acts on it too"
			}
			log.Warn("this key sets nothing, in ZooKeeper 3.8 as in zkd, though ZooKeeper's guide names it: the setting is "+
				real+" (ZooKeeper's system property zookeeper."+real+"; "+acts+")", "file", file, "line", line, "key", key)
			c.Extra[key] = val
		case known[key] || known[name] || strings.HasPrefix(name, "authProvider.") || strings.HasPrefix(key, "group.") ||
			strings.HasPrefix(key, "weight."):
			c.Extra[key] = val
		default:
			log.Warn("unknown key in the configuration file, kept as ZooKeeper would keep it as the system property zookeeper."+name,
				"file", file, "line", line, "key", key)
			c.Extra[key] = val
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if c.DataDir == "" {
		return nil, &ConfigError{File: file, Key: "dataDir", Msg: "not set; the server needs a data directory"}
	}
	if c.DynamicConfigFile != "" {
		if err := c.readDynamicConfig(serverLines, log); err != nil {
			return nil, err
		}
	}
	c.serverLines = serverLines
	if err := c.ensembleOf(serverLines); err != nil {
		return nil, err
	}
	if !seenPort {
		// ZooKeeper takes the client port of this server's server.N
		// line, as in server.1=host:2888:3888;2181.
		for id, spec := range c.Servers {
			if c.Ensemble != nil && int64(id) != c.Ensemble.MyID {
				continue
			}
			addr, port, ok := clientSpec(spec)
			if !ok {
				return nil, &ConfigError{File: c.fileOf("server.N"), Line: serverLines[id], Key: fmt.Sprintf("server.%d", id),
					Msg: fmt.Sprintf("%q gives no client port (host:quorumPort:electionPort;clientPort), and clientPort is not set", spec)}
			}
			c.ClientPort, seenPort = port, true
			if c.ClientPortAddress == "" {
				c.ClientPortAddress = addr
			}
		}
	}
	if !seenPort {
		return nil, &ConfigError{File: file, Key: "clientPort", Msg: "not set; the server needs a client port"}
	}
	if err := c.Check(); err != nil {
		return nil, err
	}
	return c, nil
}

// readDynamicConfig reads the server.N, group.N and weight.N lines from
// the file dynamicConfigFile names, as ZooKeeper does: zoo.cfg must then
// have none of them, the file nothing else, and the configuration's
// version is the hex number the file's name ends in (zoo.cfg.dynamic.100000000).
func (c *Config) readDynamicConfig(serverLines map[int]int, log *slog.Logger) error {
	first := ""
	for k := range c.Lines {
		if c.isEnsembleKey(k) && (first == "" || c.Lines[k] < c.Lines[first]) {
			first = k
		}
	}
	if first != "" {
		return &ConfigError{File: c.File, Line: c.Lines[first], Key: first,
			Msg: "must be in the dynamic config file (" + c.DynamicConfigFile + ") that dynamicConfigFile names, not here"}
	}
	b, err := os.ReadFile(c.DynamicConfigFile)
	if err != nil {
		return c.ErrorAt("dynamicConfigFile", "cannot read the dynamic config file: %v", err)
	}
	if i := strings.LastIndex(c.DynamicConfigFile, "."); i >= 0 {
		if v, err := strconv.ParseUint(c.DynamicConfigFile[i+1:], 16, 64); err == nil {
			c.ConfigVersion = int64(v)
		}
	}
	if _, err := os.Stat(c.File + ".dynamic.next"); err == nil {
		log.Warn("a reconfiguration was under way (its next configuration is kept beside zoo.cfg); zkd has no dynamic "+
			"reconfiguration and uses the configuration dynamicConfigFile names", "next", c.File+".dynamic.next",
			"dynamicConfigFile", c.DynamicConfigFile)
	}
	c.dynamicKeys = map[string]bool{}
	return eachProperty(c.DynamicConfigFile, bytes.NewReader(b), func(line int, key, val string) error {
		c.Lines[key] = line
		c.dynamicKeys[key] = true
		switch {
		case strings.HasPrefix(key, "server."):
			id, ok := serverID(key)
			if !ok {
				return c.ErrorAt(key, "the server id must be a non-negative integer")
			}
			c.Servers[id] = val
			serverLines[id] = line
		case strings.HasPrefix(key, "group.") || strings.HasPrefix(key, "weight."):
			c.Extra[key] = val
		case key == "version":
			return c.ErrorAt(key, "a dynamic config file carries its version in its name, not in a line")
		default:
			return c.ErrorAt(key, "only server.N, group.N and weight.N lines belong in a dynamic config file")
		}
		return nil
	})
}

// eachProperty reads Java properties text (key=value, key:value or key
// value; # and ! start comments; a line ending in \ goes on on the next)
// and hands each property to fn with the line it ends on. It stops at
// fn's first error; a line too long to read is an error naming file and
// line.
func eachProperty(file string, r io.Reader, fn func(line int, key, val string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' || text[0] == '!' {
			continue
		}
		for strings.HasSuffix(text, `\`) && sc.Scan() {
			line++
			text = strings.TrimSuffix(text, `\`) + strings.TrimSpace(sc.Text())
		}
		key, val := splitProperty(text)
		if err := fn(line, key, val); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s:%d: %w", file, line+1, err)
	}
	return nil
}

// serverID is N of a server.N key, ok false when N is not a server id.
func serverID(key string) (int, bool) {
	id, err := strconv.Atoi(strings.TrimPrefix(key, "server."))
	return id, err == nil && id >= 0
}

// isEnsembleKey says whether key is one of the lines that describe the
// ensemble: server.N, group.N, weight.N.
func (c *Config) isEnsembleKey(key string) bool {
	return strings.HasPrefix(key, "server.") || strings.HasPrefix(key, "group.") || strings.HasPrefix(key, "weight.")
}

// ensembleOf reads the ensemble a configuration asks for: more than one
// server.N line, or standaloneEnabled=false. A lone server.N line with
// standaloneEnabled left true is a standalone server, as it is to
// ZooKeeper. The lines and myid are checked here, so that a mistake in
// them is named before anything starts.
func (c *Config) ensembleOf(serverLines map[int]int) error {
	if len(c.Servers) == 0 && !c.StandaloneEnabled {
		return &ConfigError{File: c.File, Line: c.Lines["standaloneEnabled"], Key: "standaloneEnabled",
			Msg: "standaloneEnabled=false asks for an ensemble member, and there is no server.N line; list the ensemble's servers or remove it"}
	}
	if len(c.Servers) > 1 || (!c.StandaloneEnabled && len(c.Servers) > 0) {
		e, err := c.ensemble(serverLines)
		if err != nil {
			return err
		}
		c.Ensemble = e
	}
	return nil
}

// clientSpec is the client address of a server.N value, the part after
// ';' ("port" or "host:port").
func clientSpec(spec string) (addr string, port int, ok bool) {
	_, client, found := strings.Cut(spec, ";")
	if !found {
		return "", 0, false
	}
	client = strings.TrimSpace(client)
	if i := strings.LastIndex(client, ":"); i >= 0 {
		addr, client = client[:i], client[i+1:]
	}
	port, err := strconv.Atoi(client)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, false
	}
	return addr, port, true
}

// splitProperty splits a Java properties line at the first unescaped '=',
// ':' or run of whitespace.
func splitProperty(s string) (key, val string) {
	i := strings.IndexAny(s, "=: \t")
	if i < 0 {
		return s, ""
	}
	key = s[:i]
	rest := strings.TrimLeft(s[i:], " \t")
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = rest[1:]
	}
	return key, strings.TrimSpace(rest)
}

// Check refuses settings that cannot work together, naming the key.
func (c *Config) Check() error {
	bad := func(key, format string, args ...any) error {
		return &ConfigError{File: c.File, Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	switch {
	case c.TickTime <= 0:
		return bad("tickTime", "must be positive, not %d", c.TickTime)
	case c.ClientPort < 0 || c.ClientPort > 65535:
		return bad("clientPort", "%d is not a port", c.ClientPort)
	case c.MinSessionTimeout > c.MaxSessionTimeout && c.MaxSessionTimeout != -1:
		return bad("minSessionTimeout", "%d is above maxSessionTimeout %d", c.MinSessionTimeout, c.MaxSessionTimeout)
	case c.SnapCount < 2:
		return bad("snapCount", "must be at least 2, not %d", c.SnapCount)
	case c.PreAllocSizeKB < 0:
		return bad("preAllocSize", "must not be negative")
	case c.SnapRetainCount < 0:
		return bad("autopurge.snapRetainCount", "must not be negative")
	case c.PurgeIntervalHours < 0:
		return bad("autopurge.purgeInterval", "must not be negative")
	case c.ContainerCheckInterval <= 0:
		return bad("znode.container.checkIntervalMs", "must be positive")
	case c.SessionlessCnxnTimeout <= 0:
		return bad("nio.sessionlessCnxnTimeout", "must be positive, not %d", c.SessionlessCnxnTimeout)
	case c.MaxConnOutput < 0:
		return bad("zkd.connection.maxOutputBytes", "must not be negative")
	case c.EventLoops < 0:
		return bad("zkd.eventLoops", "must not be negative")
	case c.GoMaxProcs < 0:
		return bad("zkd.gomaxprocs", "must not be negative")
	case c.GCRoomMB < 0:
		return bad("zkd.gc.roomMB", "must not be negative")
	case c.MemoryLimit < 0:
		return bad("zkd.memoryLimitMB", "must not be negative")
	}
	return nil
}

// MinTimeout and MaxTimeout are the session timeout bounds in force.
func (c *Config) MinTimeout() int {
	if c.MinSessionTimeout == -1 {
		return 2 * c.TickTime
	}
	return c.MinSessionTimeout
}

// MaxTimeout is maxSessionTimeout, 20 × tickTime by default.
func (c *Config) MaxTimeout() int {
	if c.MaxSessionTimeout == -1 {
		return 20 * c.TickTime
	}
	return c.MaxSessionTimeout
}

// OutputLimit is the most output a connection may have waiting before the
// server stops reading its requests.
func (c *Config) OutputLimit() int {
	if c.MaxConnOutput > 0 {
		return c.MaxConnOutput
	}
	return 4 * c.MaxBuffer
}

// LogDir is where the txn log goes.
func (c *Config) LogDir() string {
	if c.DataLogDir == "" {
		return c.DataDir
	}
	return c.DataLogDir
}

// Addr is the client listen address.
func (c *Config) Addr() string {
	return fmt.Sprintf("%s:%d", c.ClientPortAddress, c.ClientPort)
}

// WalOptions are the wal settings this configuration asks for.
func (c *Config) WalOptions() wal.Options {
	o := wal.Options{
		Dir:          c.DataDir,
		NoSync:       !c.ForceSync,
		PreAllocSize: c.PreAllocSizeKB << 10,
		SnapCount:    c.SnapCount,
		Compression:  c.SnapshotCompression,
		PurgeRetain:  c.SnapRetainCount,
		NoDirCreate:  !c.DataDirAutocreate,
		// A standalone server is the only copy of its data: it starts
		// on an empty tree whatever the key says, as ZooKeeper's does.
		NoEmptyTrust: !c.DBAutocreate && c.Ensemble != nil,
	}
	if c.DataLogDir != "" {
		o.LogDir = c.DataLogDir
	}
	if c.SnapSizeLimitKB > 0 {
		o.SnapSizeLimit = c.SnapSizeLimitKB << 10
	}
	if c.TxnLogSizeLimitKB > 0 {
		o.TxnLogSizeLimit = c.TxnLogSizeLimitKB << 10
	}
	if c.PurgeIntervalHours > 0 {
		o.PurgeInterval = time.Duration(c.PurgeIntervalHours) * time.Hour
	}
	return o
}

// fourLetterWords is the set of enabled four-letter words, and the listed
// words this server does not know (ZooKeeper ignores those; so do we, with
// a warning).
func (c *Config) fourLetterWords() (enabled map[string]bool, unknown []string) {
	enabled = map[string]bool{}
	for _, w := range strings.Split(c.FourLetterWords, ",") {
		w = strings.TrimSpace(w)
		switch {
		case w == "":
		case w == "*":
			for k := range fourLetterCommands {
				enabled[k] = true
			}
		case fourLetterCommands[w] != nil:
			enabled[w] = true
		default:
			unknown = append(unknown, w)
		}
	}
	// As ZooKeeper's: srvr always, since zkServer.sh status asks it, and
	// isro with read-only mode on.
	enabled["srvr"] = true
	if c.ReadOnlyMode {
		enabled["isro"] = true
	}
	return enabled, unknown
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
