// composure's JMX client for a Cassandra node: what a backup asks of every node (table figures, a
// snapshot, clearing it), in one short JVM per node for the whole backup that loads only the
// JDK's own JMX classes. nodetool loads Cassandra's whole classpath for each step: about 1.4 s of
// CPU per call, against about 0.2 s for this JVM's start and a few milliseconds per step after
// it. Runs inside the node's container, next to the node:
//
//   java -cp <dir> ComposureJmx <jmx port>
//
// Once connected it prints "composure-jmx-ready", then reads commands from stdin, one per line,
// words separated by tabs, until the end of its input:
//
//   tablestats [keyspace...]        one line per table: keyspace, table, estimated partitions, live bytes
//   snapshot <tag> <keyspace>...
//   clearsnapshot <tag>
//
// and ends the answer to each with "composure-jmx-end<TAB><code><TAB><message>" (no keyspace name
// has a '-'). Codes: 0 done; 1 the node refused the operation (a snapshot tag that exists, a
// keyspace that does not); 2 usage; 4 the node's Cassandra has no such operation, or answered with
// a type only its own classes know (the caller runs nodetool for that step). Exit code 3: no JMX
// connection (the caller runs nodetool, which may know better); after a lost connection a
// command's code is 3 too, and the JVM ends.
// Compiled for Java 8 (javac --release 8), the oldest JVM a supported Cassandra runs on.

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.rmi.UnmarshalException;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Set;
import java.util.TreeSet;
import javax.management.MBeanException;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.ReflectionException;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

public final class ComposureJmx {
  private static final String STORAGE_SERVICE = "org.apache.cassandra.db:type=StorageService";
  private static final String STRINGS = "[Ljava.lang.String;";
  private static final String END = "composure-jmx-end";

  public static void main(String[] args) throws IOException {
    if (args.length != 1) fail(2, "usage: ComposureJmx <jmx port> (commands on stdin)");
    JMXConnector connector = null;
    MBeanServerConnection mbeans = null;
    try {
      connector = JMXConnectorFactory.connect(new JMXServiceURL("service:jmx:rmi:///jndi/rmi://127.0.0.1:" + args[0] + "/jmxrmi"));
      mbeans = connector.getMBeanServerConnection();
    } catch (Exception e) {
      fail(3, "no JMX connection on 127.0.0.1:" + args[0] + ": " + e);
    }
    System.out.println("composure-jmx-ready");
    System.out.flush();
    BufferedReader commands = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    try {
      for (String line = commands.readLine(); line != null; line = commands.readLine()) {
        if (line.isEmpty()) continue;
        if (!answer(mbeans, line.split("\t"))) break;
      }
    } finally {
      try {
        connector.close();
      } catch (IOException ignored) {
        // the process ends anyway
      }
    }
  }

  /** Runs one command and prints its answer; false when the connection is lost. */
  private static boolean answer(MBeanServerConnection mbeans, String[] words) {
    int code = 0;
    String message = "";
    try {
      System.out.print(run(mbeans, words[0], Arrays.copyOfRange(words, 1, words.length)));
    } catch (IllegalArgumentException e) {
      code = 2;
      message = e.getMessage();
    } catch (ReflectionException | UnmarshalException e) {
      code = 4;
      message = "the node cannot answer " + words[0] + " here: " + e;
    } catch (IOException e) {
      code = 3;
      message = "the JMX connection was lost: " + e;
    } catch (Exception e) {
      code = 1;
      message = rootCause(e).getMessage();
    }
    System.out.println(END + "\t" + code + "\t" + String.valueOf(message).replace('\n', ' '));
    System.out.flush();
    return code != 3;
  }

  private static String run(MBeanServerConnection mbeans, String command, String[] rest) throws Exception {
    switch (command) {
      case "tablestats":
        return tablestats(mbeans, new HashSet<>(Arrays.asList(rest)));
      case "snapshot":
        if (rest.length < 2) throw new IllegalArgumentException("usage: snapshot <tag> <keyspace>...");
        invoke(mbeans, "takeSnapshot", new Object[] {rest[0], new HashMap<String, String>(), Arrays.copyOfRange(rest, 1, rest.length)},
            new String[] {"java.lang.String", "java.util.Map", STRINGS});
        return "";
      case "clearsnapshot":
        if (rest.length != 1) throw new IllegalArgumentException("usage: clearsnapshot <tag>");
        invoke(mbeans, "clearSnapshot", new Object[] {rest[0], new String[0]}, new String[] {"java.lang.String", STRINGS});
        return "";
      default:
        throw new IllegalArgumentException("unknown command " + command);
    }
  }

  /** A StorageService operation; an exception the node threw on purpose (a snapshot that exists) is a refusal with its message. */
  private static void invoke(MBeanServerConnection mbeans, String operation, Object[] parameters, String[] signature) throws Exception {
    try {
      mbeans.invoke(new ObjectName(STORAGE_SERVICE), operation, parameters, signature);
    } catch (MBeanException e) {
      throw new Exception(rootCause(e).getMessage(), e);
    }
  }

  /** Per table of the keyspaces (every keyspace when none is named): its partition estimate and live bytes. */
  private static String tablestats(MBeanServerConnection mbeans, Set<String> keyspaces) throws Exception {
    Set<ObjectName> names = new TreeSet<>(mbeans.queryNames(new ObjectName("org.apache.cassandra.metrics:type=Table,keyspace=*,scope=*,name=EstimatedPartitionCount"), null));
    StringBuilder out = new StringBuilder();
    for (ObjectName name : names) {
      String keyspace = name.getKeyProperty("keyspace");
      String table = name.getKeyProperty("scope");
      if (!keyspaces.isEmpty() && !keyspaces.contains(keyspace)) continue;
      Object partitions = mbeans.getAttribute(name, "Value");
      ObjectName live = new ObjectName("org.apache.cassandra.metrics:type=Table,keyspace=" + keyspace + ",scope=" + table + ",name=LiveDiskSpaceUsed");
      Object liveBytes = mbeans.getAttribute(live, "Count");
      out.append(keyspace).append('\t').append(table).append('\t').append(partitions).append('\t').append(liveBytes).append('\n');
    }
    return out.toString();
  }

  private static Throwable rootCause(Throwable error) {
    Throwable cause = error;
    while (cause.getCause() != null && cause.getCause() != cause) cause = cause.getCause();
    return cause;
  }

  private static void fail(int code, String message) {
    System.err.println(message);
    System.exit(code);
  }
}
