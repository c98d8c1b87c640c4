// The suites that start Cassandra (one ring at a time on this machine) run here, one after
// another in one test process: `make test` runs two test files at once, and a second Cassandra
// suite waiting for its turn would hold a slot the other suites could use. Each is a file of its
// own (*.suite.ts, run alone with `node --import tsx --test <file>`).
import "./cassandra-cluster.suite.ts";
import "./disaster-recovery-stack.suite.ts";
import "./strategy-conformance.suite.ts";
