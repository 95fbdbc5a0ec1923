// Drives the Apache ZooKeeper Java client through the requests zkCli.sh
// cannot send (multi, multiRead, checkWatches, setWatches2 after a reconnect),
// against the recording proxy. Run with: java -cp <zookeeper jars> JavaClient.java host:port
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

public class JavaClient {
    public static void main(String[] args) throws Exception {
        CountDownLatch connected = new CountDownLatch(1);
        CountDownLatch disconnected = new CountDownLatch(1);
        CountDownLatch reconnected = new CountDownLatch(2);
        ZooKeeper zk = new ZooKeeper(args[0], 10000, ev -> {
            if (ev.getState() == Watcher.Event.KeeperState.SyncConnected) {
                connected.countDown();
                reconnected.countDown();
            } else if (ev.getState() == Watcher.Event.KeeperState.Disconnected) {
                disconnected.countDown();
            }
        });
        if (!connected.await(20, TimeUnit.SECONDS)) throw new IllegalStateException("no session");
        List<org.apache.zookeeper.data.ACL> open = ZooDefs.Ids.OPEN_ACL_UNSAFE;

        zk.create("/java", "root".getBytes(), open, CreateMode.PERSISTENT);
        zk.create("/java/e", null, open, CreateMode.EPHEMERAL, new Stat()); // create2
        zk.multi(Arrays.asList(
            Op.create("/java/m1", "m".getBytes(), open, CreateMode.PERSISTENT),
            Op.create("/java/m2", "m".getBytes(), open, CreateMode.CONTAINER),
            Op.create("/java/m3", "m".getBytes(), open, CreateMode.PERSISTENT_WITH_TTL, 60000),
            Op.setData("/java/m1", "m2".getBytes(), -1),
            Op.check("/java/m1", 1),
            Op.delete("/java/m1", 1)));
        try {
            zk.multi(Arrays.asList(
                Op.create("/java/m4", null, open, CreateMode.PERSISTENT),
                Op.delete("/java/missing", -1),
                Op.setData("/java", null, -1)));
            throw new IllegalStateException("failing multi succeeded");
        } catch (KeeperException.NoNodeException expected) {
        }
        // multiRead: independent results, one of them an error.
        zk.multi(Arrays.asList(
            Op.getData("/java"),
            Op.getChildren("/java"),
            Op.getData("/java/missing")));

        // A one-shot watch removed with checkWatches (a specific watcher),
        // persistent watches that must survive the reconnect (setWatches2).
        Watcher w = ev -> { };
        zk.getData("/java", w, null);
        zk.removeWatches("/java", w, Watcher.WatcherType.Data, false);
        try {
            zk.removeWatches("/java", w, Watcher.WatcherType.Data, false);
        } catch (KeeperException.NoWatcherException expected) {
        }
        zk.addWatch("/java", AddWatchMode.PERSISTENT);
        zk.addWatch("/java", AddWatchMode.PERSISTENT_RECURSIVE);
        zk.getChildren("/java", true);
        zk.exists("/zkd-golden-drop", false);
        if (!disconnected.await(20, TimeUnit.SECONDS)) throw new IllegalStateException("no drop");
        if (!reconnected.await(30, TimeUnit.SECONDS)) throw new IllegalStateException("no reconnect");
        zk.setData("/java", "after".getBytes(), -1);
        zk.removeAllWatches("/java", Watcher.WatcherType.Any, false);
        zk.close();
    }
}
