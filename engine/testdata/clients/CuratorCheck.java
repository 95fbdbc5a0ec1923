import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.OpResult;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.ClientInfo;
import org.apache.zookeeper.data.Stat;

/**
 * Drives a ZooKeeper-compatible server with the Java client and Apache
 * Curator: InterProcessMutex, LeaderLatch, CuratorCache (persistent
 * recursive watches), containers, and the 3.6+ client calls (addWatch,
 * removeWatches, multiRead, getEphemerals, getAllChildrenNumber, whoAmI).
 *
 * Usage: java CuratorCheck host:port. Prints "ok <name>" per check and
 * exits non-zero on the first failure.
 */
public class CuratorCheck {
    static String connect;

    static CuratorFramework client() throws Exception {
        CuratorFramework c = CuratorFrameworkFactory.newClient(connect, 15000, 10000,
                new ExponentialBackoffRetry(100, 5));
        c.start();
        if (!c.blockUntilConnected(15, TimeUnit.SECONDS)) {
            throw new AssertionError("no connection to " + connect);
        }
        return c;
    }

    static void check(boolean cond, String what) {
        if (!cond) {
            throw new AssertionError(what);
        }
    }

    static void ok(String name) {
        System.out.println("ok " + name);
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        connect = args[0];
        CuratorFramework c = client();
        if (c.checkExists().forPath("/curator") != null) {
            c.delete().deletingChildrenIfNeeded().forPath("/curator");
        }
        crud(c);
        javaClient(c.getZookeeperClient().getZooKeeper());
        mutex();
        leaderLatch();
        cache(c);
        containers(c);
        c.delete().deletingChildrenIfNeeded().forPath("/curator");
        c.close();
        System.out.println("all curator checks passed");
        System.exit(0);
    }

    static void crud(CuratorFramework c) throws Exception {
        c.create().creatingParentsIfNeeded().forPath("/curator/crud/a", "1".getBytes());
        check(new String(c.getData().forPath("/curator/crud/a")).equals("1"), "getData");
        Stat st = c.setData().withVersion(0).forPath("/curator/crud/a", "2".getBytes());
        check(st.getVersion() == 1, "setData version");
        try {
            c.setData().withVersion(0).forPath("/curator/crud/a", "3".getBytes());
            throw new AssertionError("stale version accepted");
        } catch (KeeperException.BadVersionException expected) {
        }
        String seq = c.create().withMode(CreateMode.EPHEMERAL_SEQUENTIAL).forPath("/curator/crud/e-");
        check(seq.equals("/curator/crud/e-0000000001"), "sequential name " + seq);
        c.transaction().forOperations(
                c.transactionOp().create().forPath("/curator/crud/t"),
                c.transactionOp().setData().forPath("/curator/crud/a", "4".getBytes()),
                c.transactionOp().delete().forPath(seq));
        check(c.getChildren().forPath("/curator/crud").size() == 2, "children after transaction");
        ok("crud");
    }

    static void javaClient(ZooKeeper zk) throws Exception {
        String base = "/curator/java";
        zk.create(base, new byte[0], ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        zk.create(base + "/x", "x".getBytes(), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
        zk.create(base + "/y", "y".getBytes(), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        List<String> eph = zk.getEphemerals(base);
        check(eph.equals(Arrays.asList(base + "/x")), "getEphemerals " + eph);
        check(zk.getAllChildrenNumber(base) == 2, "getAllChildrenNumber");
        List<ClientInfo> who = zk.whoAmI();
        check(!who.isEmpty() && who.get(0).getAuthScheme().equals("ip"), "whoAmI " + who);

        List<OpResult> rs = zk.multi(Arrays.asList(Op.getData(base + "/y"), Op.getChildren(base),
                Op.getData(base + "/missing")));
        check(new String(((OpResult.GetDataResult) rs.get(0)).getData()).equals("y"), "multiRead getData");
        check(((OpResult.GetChildrenResult) rs.get(1)).getChildren().size() == 2, "multiRead getChildren");
        check(((OpResult.ErrorResult) rs.get(2)).getErr() == KeeperException.Code.NONODE.intValue(),
                "multiRead error result");

        CopyOnWriteArrayList<WatchedEvent> events = new CopyOnWriteArrayList<>();
        Watcher w = events::add;
        zk.addWatch(base, w, AddWatchMode.PERSISTENT);
        zk.setData(base, "1".getBytes(), -1);
        zk.setData(base, "2".getBytes(), -1);
        long deadline = System.currentTimeMillis() + 10000;
        while (events.size() < 2 && System.currentTimeMillis() < deadline) {
            Thread.sleep(10);
        }
        check(events.size() == 2 && events.get(1).getType() == Watcher.Event.EventType.NodeDataChanged,
                "persistent watch events " + events);
        zk.removeWatches(base, w, Watcher.WatcherType.Any, false);
        try {
            zk.removeWatches(base, w, Watcher.WatcherType.Any, false);
            throw new AssertionError("second removeWatches succeeded");
        } catch (KeeperException.NoWatcherException expected) {
        }
        ok("java client");
    }

    static void mutex() throws Exception {
        List<CuratorFramework> clients = new ArrayList<>();
        AtomicInteger inside = new AtomicInteger(), total = new AtomicInteger();
        List<Thread> threads = new ArrayList<>();
        List<Throwable> errors = new CopyOnWriteArrayList<>();
        for (int i = 0; i < 3; i++) {
            CuratorFramework c = client();
            clients.add(c);
            Thread t = new Thread(() -> {
                try {
                    InterProcessMutex m = new InterProcessMutex(c, "/curator/mutex");
                    for (int j = 0; j < 5; j++) {
                        check(m.acquire(20, TimeUnit.SECONDS), "mutex acquire timed out");
                        check(inside.incrementAndGet() == 1, "two holders of one mutex");
                        Thread.sleep(2);
                        inside.decrementAndGet();
                        total.incrementAndGet();
                        m.release();
                    }
                } catch (Throwable e) {
                    errors.add(e);
                }
            });
            threads.add(t);
            t.start();
        }
        for (Thread t : threads) {
            t.join(60000);
        }
        for (CuratorFramework c : clients) {
            c.close();
        }
        check(errors.isEmpty(), "mutex errors " + errors);
        check(total.get() == 15, "mutex acquisitions " + total.get());
        ok("InterProcessMutex");
    }

    static void leaderLatch() throws Exception {
        List<CuratorFramework> clients = new ArrayList<>();
        List<LeaderLatch> latches = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            CuratorFramework c = client();
            clients.add(c);
            LeaderLatch l = new LeaderLatch(c, "/curator/latch", "p" + i);
            l.start();
            latches.add(l);
        }
        LeaderLatch leader = null;
        long deadline = System.currentTimeMillis() + 15000;
        while (leader == null && System.currentTimeMillis() < deadline) {
            int n = 0;
            for (LeaderLatch l : latches) {
                if (l.hasLeadership()) {
                    leader = l;
                    n++;
                }
            }
            check(n <= 1, "two leaders at once");
            Thread.sleep(10);
        }
        check(leader != null, "no leader elected");
        leader.close();
        latches.remove(leader);
        LeaderLatch next = null;
        deadline = System.currentTimeMillis() + 15000;
        while (next == null && System.currentTimeMillis() < deadline) {
            for (LeaderLatch l : latches) {
                if (l.hasLeadership()) {
                    next = l;
                }
            }
            Thread.sleep(10);
        }
        check(next != null, "no new leader after the first one left");
        for (LeaderLatch l : latches) {
            l.close();
        }
        for (CuratorFramework c : clients) {
            c.close();
        }
        ok("LeaderLatch");
    }

    static void cache(CuratorFramework c) throws Exception {
        c.create().creatingParentsIfNeeded().forPath("/curator/cache");
        CountDownLatch initialized = new CountDownLatch(1);
        List<String> seen = new CopyOnWriteArrayList<>();
        CuratorCache cache = CuratorCache.build(c, "/curator/cache");
        cache.listenable().addListener(CuratorCacheListener.builder()
                .forCreates(n -> seen.add("create " + n.getPath()))
                .forChanges((o, n) -> seen.add("change " + n.getPath()))
                .forDeletes(o -> seen.add("delete " + o.getPath()))
                .forInitialized(initialized::countDown)
                .build());
        cache.start();
        check(initialized.await(10, TimeUnit.SECONDS), "cache not initialized");
        // Each step waits for the cache to catch up, so no change can be
        // folded into the data the cache fetches for an earlier event.
        c.create().forPath("/curator/cache/a", "1".getBytes());
        c.create().forPath("/curator/cache/a/deep", "2".getBytes());
        awaitSeen(seen, "create /curator/cache/a", "create /curator/cache/a/deep");
        c.setData().forPath("/curator/cache/a/deep", "3".getBytes());
        awaitSeen(seen, "change /curator/cache/a/deep");
        check(new String(cache.get("/curator/cache/a/deep").get().getData()).equals("3"), "cached data");
        c.delete().forPath("/curator/cache/a/deep");
        awaitSeen(seen, "delete /curator/cache/a/deep");
        check(cache.get("/curator/cache/a").isPresent(), "cache content");
        cache.close();
        ok("CuratorCache");
    }

    static void awaitSeen(List<String> seen, String... want) throws InterruptedException {
        long deadline = System.currentTimeMillis() + 10000;
        while (!seen.containsAll(Arrays.asList(want)) && System.currentTimeMillis() < deadline) {
            Thread.sleep(10);
        }
        check(seen.containsAll(Arrays.asList(want)), "cache events " + seen + ", want " + Arrays.asList(want));
    }

    static void containers(CuratorFramework c) throws Exception {
        c.create().creatingParentContainersIfNeeded().forPath("/curator/containers/box/item");
        Stat st = c.checkExists().forPath("/curator/containers/box");
        check(st != null, "container parent missing");
        c.delete().forPath("/curator/containers/box/item");
        long deadline = System.currentTimeMillis() + 20000;
        while (c.checkExists().forPath("/curator/containers/box") != null
                && System.currentTimeMillis() < deadline) {
            Thread.sleep(50);
        }
        check(c.checkExists().forPath("/curator/containers/box") == null,
                "an empty container was not removed");
        ok("containers");
    }
}
