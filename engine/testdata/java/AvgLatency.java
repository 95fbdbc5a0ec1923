import java.math.BigDecimal;
import java.math.RoundingMode;

// Prints, for each total/count pair given, the average latency as
// ZooKeeper 3.8's srvr shows it: the double rounded to four decimals,
// halves up, then Double.toString.
public class AvgLatency {
    public static void main(String[] args) {
        for (int i = 0; i + 1 < args.length; i += 2) {
            long total = Long.parseLong(args[i]);
            long count = Long.parseLong(args[i + 1]);
            double avg = total / (double) count;
            System.out.println(new BigDecimal(avg).setScale(4, RoundingMode.HALF_UP).doubleValue());
        }
    }
}
