import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
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
 * holder at the same time finds it there. Runs until its standard input
 * closes, then prints
 *
 *   curator rolling: writes=N acquisitions=N leaderships=N violations=V lost=L
 *
 * and "curator rolling ok" when there was no violation and no session was
 * lost. Usage: java CuratorRolling host:port,...
 */
public class CuratorRolling {
    static final String ROOT = "/curator-rolling";
    static final AtomicBoolean stop = new AtomicBoolean();
    static final AtomicInteger writes = new AtomicInteger();
    static final AtomicInteger acquisitions = new AtomicInteger();
    static final AtomicInteger leaderships = new AtomicInteger();
    static final AtomicInteger violations = new AtomicInteger();
    static final AtomicInteger lost = new AtomicInteger();
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
        for (CuratorFramework c : clients) {
            c.close();
        }
        System.out.println("curator rolling: writes=" + writes.get() + " acquisitions=" + acquisitions.get()
            + " leaderships=" + leaderships.get() + " violations=" + violations.get() + " lost=" + lost.get());
        if (violations.get() == 0 && lost.get() == 0 && writes.get() > 0 && acquisitions.get() > 0 && leaderships.get() > 0) {
            System.out.println("curator rolling ok");
        }
        System.out.flush();
        System.exit(0);
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
