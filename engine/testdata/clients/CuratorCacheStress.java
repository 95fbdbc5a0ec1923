import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.cache.ChildData;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.retry.RetryNTimes;

/**
 * CuratorCache under races: for each round a cache starts on a fresh path
 * (a persistent recursive watch plus its background reads) while another
 * client, without waiting, creates the path, a child and a grandchild,
 * changes the child and deletes the grandchild. A server that misses an
 * event leaves the cache short of the tree for good; the cache must come
 * to hold exactly what the server holds. Prints "ok N rounds" or the first
 * round that did not converge. Usage: java CuratorCacheStress hosts rounds
 * [writer-hosts]; with writer-hosts the writer connects there (in an
 * ensemble: the cache on a follower, the writes through the leader).
 */
public class CuratorCacheStress {
    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        int rounds = Integer.parseInt(args[1]);
        CuratorFramework cacheClient = CuratorFrameworkFactory.newClient(hosts, 30000, 10000, new RetryNTimes(3, 100));
        String writerHosts = args.length > 2 ? args[2] : hosts;
        CuratorFramework writer = CuratorFrameworkFactory.newClient(writerHosts, 30000, 10000, new RetryNTimes(3, 100));
        cacheClient.start();
        writer.start();
        cacheClient.blockUntilConnected(10, TimeUnit.SECONDS);
        writer.blockUntilConnected(10, TimeUnit.SECONDS);
        for (int i = 0; i < rounds; i++) {
            String root = "/stress" + i;
            CuratorCache cache = CuratorCache.build(cacheClient, root);
            cache.start();
            writer.create().forPath(root, "r".getBytes());
            writer.create().forPath(root + "/a", "1".getBytes());
            writer.create().forPath(root + "/a/b", "b".getBytes());
            writer.setData().forPath(root + "/a", "2".getBytes());
            writer.delete().forPath(root + "/a/b");
            Map<String, String> want = new TreeMap<>();
            want.put(root, "r");
            want.put(root + "/a", "2");
            long deadline = System.currentTimeMillis() + 10000;
            Map<String, String> got = snapshot(cache);
            while (!got.equals(want) && System.currentTimeMillis() < deadline) {
                Thread.sleep(5);
                got = snapshot(cache);
            }
            cache.close();
            if (!got.equals(want)) {
                System.out.println("round " + i + ": the cache holds " + got + " but the server " + want);
                System.exit(1);
            }
        }
        System.out.println("ok " + rounds + " rounds");
        cacheClient.close();
        writer.close();
    }

    static Map<String, String> snapshot(CuratorCache cache) {
        Map<String, String> m = new TreeMap<>();
        cache.stream().forEach((ChildData d) -> m.put(d.getPath(), d.getData() == null ? null : new String(d.getData())));
        return m;
    }
}
