import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.cache.ChildData;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.leader.LeaderSelector;
import org.apache.curator.framework.recipes.leader.LeaderSelectorListenerAdapter;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.RetryForever;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;

/**
 * Keeps the Java client and Curator busy while an ensemble changes: a
 * writer creating sequential znodes, three InterProcessMutex contenders
 * and three LeaderSelector candidates. Whoever holds the lock or leads
 * creates an ephemeral witness znode for as long as it does, so a second
 * holder at the same time finds it there. A CuratorCache (a persistent
 * recursive watch and the reads it triggers) follows a small tree that
 * another client keeps creating, changing and deleting; once the clients
 * stop, the cache must come to hold what the servers hold. Runs until its
 * standard input closes, then prints
 *
 *   curator rolling: writes=N acquisitions=N leaderships=N cached=N violations=V lost=L
 *
 * and "curator rolling ok" when there was no violation, no session was
 * lost and the cache matched. Usage: java CuratorRolling host:port,...
 */
public class CuratorRolling {
    static final String ROOT = "/curator-rolling";
    static final AtomicBoolean stop = new AtomicBoolean();
    static final AtomicInteger writes = new AtomicInteger();
    static final AtomicInteger acquisitions = new AtomicInteger();
    static final AtomicInteger leaderships = new AtomicInteger();
    static final AtomicInteger violations = new AtomicInteger();
    static final AtomicInteger lost = new AtomicInteger();
    static final AtomicInteger cached = new AtomicInteger();
    static final String CACHED = ROOT + "/cached";
    static String connect;

    static CuratorFramework client() {
        // Curator reports LOST once it has been unable to connect for the
        // session timeout, expired or not: on a busy machine a ZooKeeper
        // server can take ten seconds to start, so give it room.
        CuratorFramework c = CuratorFrameworkFactory.builder().connectString(connect)
            .sessionTimeoutMs(30000).connectionTimeoutMs(15000)
            .retryPolicy(new RetryForever(50)).build();
        c.getConnectionStateListenable().addListener((client, state) -> {
            if (state == ConnectionState.LOST && !stop.get()) {
                lost.incrementAndGet();
            }
        });
        c.start();
        return c;
    }

    /** Holds the witness znode name while the caller holds. */
    static void witness(CuratorFramework c, String name, String who) throws Exception {
        String path = ROOT + "/" + name;
        byte[] me = who.getBytes(StandardCharsets.UTF_8);
        boolean interrupted = false;
        try {
            c.create().withMode(CreateMode.EPHEMERAL).forPath(path, me);
            Thread.sleep(20);
        } catch (KeeperException.NodeExistsException e) {
            // Ours when a retried create had gone through before the
            // connection was lost; someone else's is a second holder.
            String holder = holder(c, path);
            if (holder != null && !holder.equals(who)) {
                violations.incrementAndGet();
                System.out.println("violation: " + who + " found " + holder + "'s witness");
                return;
            }
        } catch (InterruptedException e) {
            // A leader told to stop (LeaderSelector interrupts it when the
            // connection is suspended) stops here.
            interrupted = true;
        } catch (Exception e) {
            // The create may have gone through all the same: the cleanup
            // below finds out.
        } finally {
            // Our witness goes before we return, and so before the lock
            // znode that made us the holder does, however the create ended.
            for (;;) {
                interrupted |= Thread.interrupted();
                try {
                    String holder = holder(c, path);
                    if (who.equals(holder)) {
                        c.delete().forPath(path);
                    }
                    break;
                } catch (KeeperException.NoNodeException e) {
                    break;
                } catch (Exception e) {
                    sleep(20);
                }
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** The holder named in the witness znode, null when there is none. */
    static String holder(CuratorFramework c, String path) throws Exception {
        try {
            return new String(c.getData().forPath(path), StandardCharsets.UTF_8);
        } catch (KeeperException.NoNodeException e) {
            return null;
        }
    }

    public static void main(String[] args) throws Exception {
        connect = args[0];
        List<CuratorFramework> clients = new ArrayList<>();
        List<Thread> threads = new ArrayList<>();
        List<LeaderSelector> selectors = new ArrayList<>();
        CuratorFramework writer = client();
        clients.add(writer);
        writer.create().orSetData().creatingParentsIfNeeded().forPath(ROOT + "/writes");
        threads.add(new Thread(() -> {
            while (!stop.get()) {
                try {
                    writer.create().withMode(CreateMode.PERSISTENT_SEQUENTIAL).forPath(ROOT + "/writes/w-");
                    writes.incrementAndGet();
                } catch (Exception e) {
                    sleep(50);
                }
            }
        }));
        CuratorFramework cacheWriter = client();
        clients.add(cacheWriter);
        cacheWriter.create().orSetData().creatingParentsIfNeeded().forPath(CACHED);
        CuratorFramework cacheClient = client();
        clients.add(cacheClient);
        CuratorCache cache = CuratorCache.build(cacheClient, CACHED);
        cache.start();
        threads.add(new Thread(() -> {
            // Eight keys, each with at most one child: creates, changes
            // and deletes at random, each change's data unique.
            Random r = new Random(1);
            for (int n = 0; !stop.get(); n++) {
                String path = CACHED + "/k" + r.nextInt(8) + (r.nextBoolean() ? "" : "/c");
                byte[] data = Integer.toString(n).getBytes(StandardCharsets.UTF_8);
                try {
                    switch (r.nextInt(3)) {
                    case 0:
                        cacheWriter.create().creatingParentsIfNeeded().forPath(path, data);
                        break;
                    case 1:
                        cacheWriter.setData().forPath(path, data);
                        break;
                    default:
                        cacheWriter.delete().deletingChildrenIfNeeded().forPath(path);
                    }
                    cached.incrementAndGet();
                } catch (KeeperException.NodeExistsException | KeeperException.NoNodeException e) {
                    // The key was not in the state the draw assumed.
                } catch (Exception e) {
                    sleep(50);
                }
            }
        }));
        for (int i = 0; i < 3; i++) {
            String me = "locker-" + i;
            CuratorFramework c = client();
            clients.add(c);
            InterProcessMutex lock = new InterProcessMutex(c, ROOT + "/lock");
            threads.add(new Thread(() -> {
                while (!stop.get()) {
                    try {
                        if (lock.acquire(5, TimeUnit.SECONDS)) {
                            try {
                                witness(c, "lock-holder", me);
                                acquisitions.incrementAndGet();
                            } finally {
                                lock.release();
                            }
                        }
                    } catch (Exception e) {
                        sleep(50);
                    }
                }
            }));
        }
        for (int i = 0; i < 3; i++) {
            String me = "candidate-" + i;
            CuratorFramework c = client();
            clients.add(c);
            LeaderSelector s = new LeaderSelector(c, ROOT + "/election", new LeaderSelectorListenerAdapter() {
                @Override
                public void takeLeadership(CuratorFramework client) throws Exception {
                    witness(client, "leader", me);
                    leaderships.incrementAndGet();
                }
            });
            s.autoRequeue();
            selectors.add(s);
        }
        for (Thread t : threads) {
            t.start();
        }
        for (LeaderSelector s : selectors) {
            s.start();
        }
        System.out.println("curator rolling started");
        System.out.flush();
        while (System.in.read() >= 0) {
        }
        stop.set(true);
        for (Thread t : threads) {
            t.join(60000);
        }
        for (LeaderSelector s : selectors) {
            s.close();
        }
        // The servers' tree, read after a sync; the cache must come to
        // hold it.
        Map<String, String> want = null;
        Map<String, String> got = null;
        for (long deadline = System.currentTimeMillis() + 30000; System.currentTimeMillis() < deadline; ) {
            try {
                cacheWriter.sync().forPath(CACHED);
                want = tree(cacheWriter, CACHED);
                got = snapshot(cache);
                if (got.equals(want)) {
                    break;
                }
            } catch (Exception e) {
                // A server still coming back: read again.
            }
            sleep(50);
        }
        cache.close();
        if (want == null || !want.equals(got)) {
            violations.incrementAndGet();
            System.out.println("violation: the cache holds " + got + " but the servers " + want);
        }
        for (CuratorFramework c : clients) {
            c.close();
        }
        System.out.println("curator rolling: writes=" + writes.get() + " acquisitions=" + acquisitions.get()
            + " leaderships=" + leaderships.get() + " cached=" + cached.get() + " violations=" + violations.get()
            + " lost=" + lost.get());
        if (violations.get() == 0 && lost.get() == 0 && writes.get() > 0 && acquisitions.get() > 0 && leaderships.get() > 0
            && cached.get() > 0) {
            System.out.println("curator rolling ok");
        }
        System.out.flush();
        System.exit(0);
    }

    /** Every znode under root, root included, with its data. */
    static Map<String, String> tree(CuratorFramework c, String root) throws Exception {
        Map<String, String> m = new TreeMap<>();
        List<String> todo = new ArrayList<>();
        todo.add(root);
        while (!todo.isEmpty()) {
            String p = todo.remove(todo.size() - 1);
            try {
                m.put(p, new String(c.getData().forPath(p), StandardCharsets.UTF_8));
                for (String k : c.getChildren().forPath(p)) {
                    todo.add(p + "/" + k);
                }
            } catch (KeeperException.NoNodeException e) {
                // Deleted between the listing and the read.
            }
        }
        return m;
    }

    static Map<String, String> snapshot(CuratorCache cache) {
        Map<String, String> m = new TreeMap<>();
        cache.stream().forEach((ChildData d) -> m.put(d.getPath(), d.getData() == null ? null : new String(d.getData(), StandardCharsets.UTF_8)));
        return m;
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
