// Package check is zkbench check: it runs workloads against a ZooKeeper
// ensemble (zkd or Apache ZooKeeper, started here as real processes, each
// member on its own loopback address), injects faults (kills, pauses,
// network partitions), records every operation with when it was called,
// when it returned and how it ended (ok, failed, or unknown: no answer),
// and checks the history: linearizability of a compare-and-set register
// with porcupine, and the invariants of a set (nothing acknowledged lost,
// nothing that was never written).
package check

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"zkd/bench/zkref"
)

// Cluster is an ensemble of N members, member i (1-based) on 127.0.0.i
// with the same ports, each in a directory of its own. The last
// Observers of them are observers; the others vote.
type Cluster struct {
	// Impl is every member's server, "zkd" or "zookeeper", or a list of
	// one per member (Impls).
	Impl         string
	Binary       string // the zkd binary (for the zkd members)
	Dir          string
	N            int
	Observers    int
	ClientPort   int
	QuorumPort   int
	ElectionPort int
	// ObserverMasterPort, when set, is every member's observerMasterPort:
	// observers sync from the followers.
	ObserverMasterPort int
	TickMs             int
	SyncLimit          int // ticks; 5 when 0
	// Groups and Weights are the group.N and weight.N lines: group i+1
	// holds the members Groups[i] lists; none, a majority quorum.
	Groups  []string
	Weights map[int]int
	// Env is added to each zkd process's environment (ZKD_FAULTS, for a
	// planted bug).
	Env []string

	// external are the client addresses of an ensemble zkbench did not
	// start: Start, Stop and Restart leave it alone.
	external   []string
	gids       bool // each member runs with a group id of its own (partitions)
	diskFaults bool // each zkd runs with ZKD_FAULTS=disk (the disk faults)
	procs      map[int]*exec.Cmd
	done       map[int]chan struct{}
}

// Addr is member i's client address.
func (c *Cluster) Addr(i int) string {
	if len(c.external) > 0 {
		return c.external[i-1]
	}
	return net.JoinHostPort(fmt.Sprintf("127.0.0.%d", i), fmt.Sprint(c.ClientPort))
}

// Host is member i's loopback address.
func (c *Cluster) Host(i int) string { return fmt.Sprintf("127.0.0.%d", i) }

func (c *Cluster) memberDir(i int) string {
	return filepath.Join(c.Dir, fmt.Sprintf("%s-%d", c.implOf(i), i))
}

// implOf is member i's server.
func (c *Cluster) implOf(i int) string {
	impls, err := Impls(c.Impl, c.N)
	if err != nil || i < 1 || i > len(impls) {
		return c.Impl
	}
	return impls[i-1]
}

// observer reports whether member i is an observer.
func (c *Cluster) observer(i int) bool { return i > c.N-c.Observers }

// crashable is the members a kill or a disk fault may hit: every member,
// unless the ensemble has both servers; then only its zkd members. Apache
// ZooKeeper 3.8.0 can lose committed txns when it is killed at the wrong
// moment (ZOOKEEPER-4643), which the check would lay at the ensemble's
// door, and it has no disk fault hook.
func (c *Cluster) crashable() []int {
	var zkd, all []int
	for i := 1; i <= c.N; i++ {
		all = append(all, i)
		if c.implOf(i) == "zkd" {
			zkd = append(zkd, i)
		}
	}
	if len(zkd) == 0 {
		return all
	}
	return zkd
}

// Impls is each of n members' server for impl: "zkd" or "zookeeper" for
// all of them; "mixed" for zkd on the odd members and Apache ZooKeeper
// on the even ones (zkd, zookeeper, zkd for three); or a list of n,
// comma-separated ("zookeeper,zkd,zkd").
func Impls(impl string, n int) ([]string, error) {
	one := func(s string) []string {
		out := make([]string, n)
		for k := range out {
			out[k] = s
		}
		return out
	}
	switch impl {
	case "zkd", "zookeeper":
		return one(impl), nil
	case "mixed":
		out := one("zkd")
		for k := 1; k < n; k += 2 {
			out[k] = "zookeeper"
		}
		return out, nil
	}
	out := strings.Split(impl, ",")
	if len(out) != n {
		return nil, fmt.Errorf("check: %q names %d servers for %d members (zkd, zookeeper, mixed, or one per member)", impl, len(out), n)
	}
	for _, s := range out {
		if s != "zkd" && s != "zookeeper" {
			return nil, fmt.Errorf("check: no implementation %q (zkd or zookeeper)", s)
		}
	}
	return out, nil
}

// config is member i's zoo.cfg: a short tick, so that faults are noticed
// within a few seconds, and every member listed.
func (c *Cluster) config(i int) string {
	lines := []string{
		fmt.Sprintf("tickTime=%d", c.TickMs),
		"initLimit=10",
		fmt.Sprintf("syncLimit=%d", cmp.Or(c.SyncLimit, 5)),
		"dataDir=" + filepath.Join(c.memberDir(i), "data"),
		fmt.Sprintf("clientPort=%d", c.ClientPort),
		"clientPortAddress=" + c.Host(i),
		"admin.enableServer=false",
		"4lw.commands.whitelist=*",
		"maxClientCnxns=0",
	}
	if c.observer(i) {
		lines = append(lines, "peerType=observer")
	}
	if c.ObserverMasterPort > 0 {
		lines = append(lines, fmt.Sprintf("observerMasterPort=%d", c.ObserverMasterPort))
	}
	for j := 1; j <= c.N; j++ {
		line := fmt.Sprintf("server.%d=%s:%d:%d", j, c.Host(j), c.QuorumPort, c.ElectionPort)
		if c.observer(j) {
			line += ":observer"
		}
		lines = append(lines, line)
	}
	for g, members := range c.Groups {
		lines = append(lines, fmt.Sprintf("group.%d=%s", g+1, members))
	}
	for _, m := range slices.Sorted(maps.Keys(c.Weights)) {
		lines = append(lines, fmt.Sprintf("weight.%d=%d", m, c.Weights[m]))
	}
	return strings.Join(lines, "\n") + "\n"
}

// Start writes every member's configuration and starts them all, and
// waits until each serves.
func (c *Cluster) Start(timeout time.Duration) error {
	c.procs, c.done = map[int]*exec.Cmd{}, map[int]chan struct{}{}
	if len(c.external) > 0 {
		return c.WaitHealthy(timeout)
	}
	for i := 1; i <= c.N; i++ {
		d := c.memberDir(i)
		if err := os.MkdirAll(filepath.Join(d, "data"), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d, "zoo.cfg"), []byte(c.config(i)), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d, "data", "myid"), []byte(fmt.Sprintln(i)), 0o644); err != nil {
			return err
		}
	}
	for i := 1; i <= c.N; i++ {
		if err := c.launch(i); err != nil {
			return err
		}
	}
	return c.WaitHealthy(timeout)
}

// launch starts member i's process.
func (c *Cluster) launch(i int) error {
	d := c.memberDir(i)
	var cmd *exec.Cmd
	switch impl := c.implOf(i); impl {
	case "zkd":
		cmd = exec.Command(c.Binary, "zoo.cfg")
		cmd.Env = append(os.Environ(), c.Env...)
		if c.diskFaults {
			cmd.Env = withFault(cmd.Env, "disk")
		}
	case "zookeeper":
		if err := zkref.Available(); err != nil {
			return err
		}
		// Its log, for reading after a run: the Debian package's
		// classpath sends it nowhere (slf4j-nop); a simple logger that
		// writes to standard error is there too, if maven is installed.
		jars := append([]string(nil), zkref.Jars...)
		logger := []string{"/usr/share/java/maven3-slf4j-provider.jar", "/usr/share/java/maven-shared-utils.jar", "/usr/share/java/jansi.jar"}
		present := true
		for _, j := range logger {
			_, err := os.Stat(j)
			present = present && err == nil
		}
		if present {
			for k, j := range jars {
				if strings.HasSuffix(j, "/slf4j-nop.jar") {
					jars = append(append(jars[:k:k], logger...), jars[k+1:]...)
					break
				}
			}
		}
		cmd = exec.Command("java", "-cp", strings.Join(jars, ":"),
			"org.apache.zookeeper.server.quorum.QuorumPeerMain", "zoo.cfg")
	default:
		return fmt.Errorf("check: no implementation %q (zkd or zookeeper)", impl)
	}
	cmd.Dir = d
	if c.gids {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
			Uid: uint32(os.Getuid()), Gid: uint32(gidBase + i), NoSetGroups: true}}
	}
	log, err := os.OpenFile(filepath.Join(d, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); log.Close(); close(done) }()
	c.procs[i], c.done[i] = cmd, done
	return nil
}

// withFault adds name to the ZKD_FAULTS of env, the last one set.
func withFault(env []string, name string) []string {
	for k := len(env) - 1; k >= 0; k-- {
		if v, ok := strings.CutPrefix(env[k], "ZKD_FAULTS="); ok {
			if v != "" {
				name = v + "," + name
			}
			break
		}
	}
	return append(env, "ZKD_FAULTS="+name)
}

// Running reports whether member i's process is alive.
func (c *Cluster) Running(i int) bool {
	d, ok := c.done[i]
	if !ok {
		return false
	}
	select {
	case <-d:
		return false
	default:
		return true
	}
}

// Kill kills member i with SIGKILL and waits for it to go.
func (c *Cluster) Kill(i int) {
	if !c.Running(i) {
		return
	}
	c.procs[i].Process.Signal(syscall.SIGCONT) // a paused process dies too
	c.procs[i].Process.Kill()
	<-c.done[i]
}

// Restart starts a member that is down again.
func (c *Cluster) Restart(i int) error {
	if c.Running(i) || len(c.external) > 0 {
		return nil
	}
	return c.launch(i)
}

// Pause stops member i with SIGSTOP; Resume lets it run on.
func (c *Cluster) Pause(i int) {
	if c.Running(i) {
		c.procs[i].Process.Signal(syscall.SIGSTOP)
	}
}

// Signal sends sig to member i's process.
func (c *Cluster) Signal(i int, sig syscall.Signal) {
	if c.Running(i) {
		c.procs[i].Process.Signal(sig)
	}
}

// Resume sends SIGCONT to member i.
func (c *Cluster) Resume(i int) {
	if c.Running(i) {
		c.procs[i].Process.Signal(syscall.SIGCONT)
	}
}

// Stop kills every member.
func (c *Cluster) Stop() {
	for i := 1; i <= c.N; i++ {
		c.Kill(i)
	}
}

// Mode is member i's mode as srvr gives it ("leader", "follower"), or ""
// when it does not answer or does not serve.
func (c *Cluster) Mode(i int) string {
	out, err := fourLetterWord(c.Addr(i), "srvr", time.Second)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(out, "\n") {
		if m, ok := strings.CutPrefix(line, "Mode: "); ok {
			return strings.TrimSpace(m)
		}
	}
	return ""
}

// Leader is the member that says it leads, or 0.
func (c *Cluster) Leader() int {
	for i := 1; i <= c.N; i++ {
		if c.Running(i) && c.Mode(i) == "leader" {
			return i
		}
	}
	return 0
}

// WaitHealthy waits until every member runs and serves, one of them as
// the leader.
func (c *Cluster) WaitHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		modes := map[int]string{}
		leaders := 0
		for i := 1; i <= c.N; i++ {
			modes[i] = c.Mode(i)
			if modes[i] == "leader" {
				leaders++
			}
		}
		healthy := leaders == 1 || c.N == 1 && modes[1] == "standalone"
		for i, m := range modes {
			if c.observer(i) {
				healthy = healthy && m == "observer"
				continue
			}
			healthy = healthy && (m == "leader" || m == "follower" || m == "observer" || m == "standalone")
		}
		if healthy {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("check: the ensemble is not whole after %v: modes %v (logs in %s)", timeout, modes, c.Dir)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Addrs are every member's client address.
func (c *Cluster) Addrs() []string {
	var out []string
	for i := 1; i <= c.N; i++ {
		out = append(out, c.Addr(i))
	}
	return out
}

func fourLetterWord(addr, word string, timeout time.Duration) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte(word)); err != nil {
		return "", err
	}
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String(), nil
}

// sortedInts is a sorted copy.
func sortedInts(s []int) []int {
	out := append([]int(nil), s...)
	sort.Ints(out)
	return out
}

// FreeBasePort finds a port p such that p, p+1 and p+2 are free on each
// of 127.0.0.1..n: the client, quorum and election ports of an ensemble,
// and that no other process asking zkref is given while this one runs.
func FreeBasePort(n int) (int, error) {
	base, err := zkref.ReservePorts(3, n)
	if err != nil {
		return 0, fmt.Errorf("check: %w", err)
	}
	return base, nil
}
