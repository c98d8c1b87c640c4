// make install: bundles each command (scripts/<name>.ts) with the npm packages it uses into
// dist/<name>.mjs. A command then starts without compiling TypeScript or resolving a module tree:
// 0.27 s of start-up CPU instead of 0.60 s with the packages outside (1.2 s or more through tsx).
// It also compiles the Cassandra strategy's JMX client into dist/cassandra-jmx/ when javac is here.
//   tsx scripts/bundle.ts backup restore ...
import path from "node:path";
import { build, type Plugin } from "esbuild";
import { $ } from "zx";

/**
 * Two parts of dockerode that composure never uses on a local engine are loaded only when used:
 * its BuildKit session (gRPC and protobuf: composure builds no image with BuildKit) and
 * docker-modem's SSH transport (ssh2, for DOCKER_HOST=ssh://). Together about 0.14 s of every start.
 */
const whenUsed = { "./session": "dockerode/lib/session.js", "./ssh": "docker-modem/lib/ssh.js" };
const loadWhenUsed: Plugin = {
  name: "load-when-used",
  setup(bundle) {
    bundle.onResolve({ filter: /^\.\/(session|ssh)$/ }, (args) => {
      const target = whenUsed[args.path as keyof typeof whenUsed];
      return args.importer.includes(`/node_modules/${path.dirname(target)}/`) ? { path: target, namespace: "when-used" } : undefined;
    });
    bundle.onLoad({ filter: /.*/, namespace: "when-used" }, (args) => ({
      contents: `module.exports = function (...parameters) { return require(${JSON.stringify(args.path)}).apply(this, parameters); };`,
      loader: "js",
    }));
  },
};

/** CommonJS packages inside an ES module bundle need require, __filename and __dirname. */
const banner = [
  'import { createRequire as bundleRequire } from "node:module";',
  'import { fileURLToPath as bundlePath } from "node:url";',
  "const require = bundleRequire(import.meta.url);",
  "const __filename = bundlePath(import.meta.url);",
  'const __dirname = bundlePath(new URL(".", import.meta.url));',
].join(" ");

const names = process.argv.slice(2);
if (names.length === 0) throw new Error("usage: tsx scripts/bundle.ts <command>...");
await build({
  entryPoints: names.map((name) => `scripts/${name}.ts`),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
  // ssh2 carries a native add-on: it stays in node_modules (and loads only for ssh:// engines).
  external: ["ssh2", ...Object.values(whenUsed)],
  banner: { js: banner },
  plugins: [loadWhenUsed],
  logLevel: "warning",
});

/**
 * The Cassandra strategy's JMX client, for Java 8 and later (the nodes run it with their own JVM).
 * Without a JDK the strategy uses nodetool instead: slower, and said so in the backup's log.
 */
const jmxClient = "scripts/lib/strategies/cassandra/jmx/ComposureJmx.java";
const compiled = await $({ nothrow: true, quiet: true })`javac --release 8 -Xlint:-options -d dist/cassandra-jmx ${jmxClient}`;
if (compiled.exitCode !== 0) console.warn(`composure: the Cassandra JMX client was not compiled (${compiled.stderr.trim().split("\n")[0] || `javac exit code ${compiled.exitCode}`}): Cassandra backups use nodetool, about 1 s slower per node and step. Install a JDK (apt-get install default-jdk-headless) and run make install.`);
