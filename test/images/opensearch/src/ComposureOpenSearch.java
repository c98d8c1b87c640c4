import java.net.InetAddress;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;

/**
 * Starts one OpenSearch node in this JVM, configured the way the official Docker image is:
 * config/opensearch.yml under the home directory, then every environment variable whose name
 * contains a dot (discovery.type=single-node, path.repo=/snapshots, ...), then -Ekey=value
 * arguments, each overriding the previous. The modules a distribution ships in modules/ are
 * loaded from the class path instead. No security plugin: plain HTTP without authentication.
 */
public final class ComposureOpenSearch {

  /** The modules of the distribution that the class path provides; absent ones are skipped. */
  private static final String[] MODULES = {
    "org.opensearch.transport.Netty4Plugin",
    "org.opensearch.analysis.common.CommonAnalysisPlugin",
    "org.opensearch.geo.GeoModulePlugin",
    "org.opensearch.ingest.common.IngestCommonPlugin",
    "org.opensearch.ingest.useragent.IngestUserAgentPlugin",
    "org.opensearch.index.mapper.MapperExtrasPlugin",
    "org.opensearch.join.ParentJoinPlugin",
    "org.opensearch.percolator.PercolatorPlugin",
    "org.opensearch.index.rankeval.RankEvalPlugin",
    "org.opensearch.index.reindex.ReindexPlugin",
    "org.opensearch.painless.PainlessPlugin",
    "org.opensearch.script.expression.ExpressionPlugin",
    "org.opensearch.script.mustache.MustachePlugin",
    "org.opensearch.search.aggregations.matrix.MatrixAggregationPlugin",
    "org.opensearch.plugin.repository.url.URLRepositoryPlugin",
  };

  /** Node's constructor that takes plugin classes is protected: this opens it. */
  static final class ClasspathNode extends Node {
    ClasspathNode(Environment environment, Collection<Class<? extends Plugin>> plugins) {
      super(environment, plugins, true);
    }
  }

  public static void main(String[] args) throws Exception {
    Path home = Paths.get(System.getProperty("opensearch.path.home", "/usr/share/opensearch"));
    Map<String, String> overrides = new TreeMap<>();
    System.getenv().forEach((name, value) -> {
      if (name.indexOf('.') > 0) {
        override(overrides, name, value);
      }
    });
    for (String arg : args) {
      if (arg.startsWith("-E") && arg.indexOf('=') > 2) {
        override(overrides, arg.substring(2, arg.indexOf('=')), arg.substring(arg.indexOf('=') + 1));
      } else {
        System.err.println("composure-opensearch: ignoring argument " + arg + " (only -Ekey=value is accepted)");
      }
    }

    Settings input = Settings.builder().put(Environment.PATH_HOME_SETTING.getKey(), home.toString()).build();
    Environment environment = InternalSettingsPreparer.prepareEnvironment(
        input, overrides, home.resolve("config"), ComposureOpenSearch::hostname);

    LogConfigurator.registerErrorListener();
    LogConfigurator.setNodeName(Node.NODE_NAME_SETTING.get(environment.settings()));
    LogConfigurator.configure(environment);

    List<Class<? extends Plugin>> plugins = new ArrayList<>();
    for (String module : MODULES) {
      try {
        plugins.add(Class.forName(module).asSubclass(Plugin.class));
      } catch (ClassNotFoundException e) {
        System.err.println("composure-opensearch: module " + module + " not on the class path, skipped");
      }
    }

    Node node = new ClasspathNode(environment, plugins);
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      try {
        node.close();
        node.awaitClose(30, TimeUnit.SECONDS);
      } catch (Exception e) {
        e.printStackTrace();
      } finally {
        stopped.countDown();
      }
    }, "composure-opensearch-shutdown"));

    try {
      node.start();
    } catch (Throwable e) {
      e.printStackTrace();
      Runtime.getRuntime().halt(1);
    }
    stopped.await();
  }

  /**
   * Compose files written for the official image often set plugins.security.disabled=true; with
   * no security plugin here such a setting would be unknown and stop the node, so it is dropped.
   */
  private static void override(Map<String, String> overrides, String key, String value) {
    if (key.startsWith("plugins.security.")) {
      System.err.println("composure-opensearch: no security plugin in this image, ignoring " + key);
    } else {
      overrides.put(key, value);
    }
  }

  private static String hostname() {
    String name = System.getenv("HOSTNAME");
    if (name != null && !name.isEmpty()) {
      return name;
    }
    try {
      return InetAddress.getLocalHost().getHostName();
    } catch (Exception e) {
      return "opensearch";
    }
  }
}
