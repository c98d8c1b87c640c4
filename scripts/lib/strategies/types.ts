// The one interface every strategy folder implements (volume/, postgres/, cassandra/ ...).
//
// A backup of one service is a session: the pipeline opens it (`openSession`: stop the service,
// or take a snapshot), pushes its `release` onto the run's cleanup stack at once, calls `capture`,
// releases, and then reads from the session what goes into the service's record (what stopped,
// for how long, the record's facts). Everything a strategy knows between opening and releasing
// lives in the session object, never in module-level maps, and the pipeline never writes into a
// strategy's input to get a result back. State that spans the services of one run (a cluster
// captured by its first member) or of one restore lives in `ctx.scope`, which the pipeline creates
// per run (per `make restore`, per drill) and drops with it.
import type { z } from "zod";
import type { ProjectInfo, ServiceInfo } from "../compose/discover.ts";
import type { Config, ServiceSettings } from "../config/schema.ts";
import type { Artifact, ServiceRecord } from "../catalog/manifest.ts";
import type { SelectedMount } from "../compose/mounts.ts";
import type { Leftover, StopJournal } from "../lifecycle/journal.ts";
import type { ArtifactStore } from "../store/types.ts";
import type { ArtifactReader } from "../store/read.ts";

/** An undo step: start what was stopped, delete what was made. */
export type Release = () => Promise<void>;

export interface BaseContext<Options> {
  config: Config;
  project: ProjectInfo;
  settings: ServiceSettings;
  options: Options;
  helperImage: string;
  journal: StopJournal;
  /** State shared by the services of this run (or restore, or drill): made by the pipeline, dropped with the run. */
  scope: RunScope;
}

/**
 * One kind of per-run state a strategy keeps in a RunScope: a constant naming it, with the
 * factory of its empty value. Declared at module level (it holds no state itself).
 */
export interface ScopeSlot<T> {
  readonly name: string;
  create(): T;
}

/** Per-run state that spans services, keyed by slot; lives as long as the run that made it. */
export interface RunScope {
  /** The slot's value in this run, made by `slot.create()` on first use. */
  get<T>(slot: ScopeSlot<T>): T;
}

/** A fresh, empty scope: one per backup run, per restore command (preview and restore share it), per drill. */
export function createRunScope(): RunScope {
  const values = new Map<ScopeSlot<unknown>, unknown>();
  return {
    get<T>(slot: ScopeSlot<T>): T {
      if (!values.has(slot)) values.set(slot, slot.create());
      return values.get(slot) as T;
    },
  };
}

/** What a probe needs: the service as it runs (in a drill: the scratch copy). */
export interface ProbeContext<Options> extends BaseContext<Options> {
  service: ServiceInfo;
  /** The project the recorded artifacts were taken of, when it is not this one (drills). */
  sourceProject?: string;
}

export interface BackupContext<Options> extends BaseContext<Options> {
  service: ServiceInfo;
  runDir: string;
  /** Directory of this service's artifacts inside the run (created by the pipeline). */
  serviceDir: string;
  /** Where the service's sources go (the engine this service's settings choose). */
  store: ArtifactStore;
  /** The mounts this service backs up (shared volumes only with their first service). */
  mounts: SelectedMount[];
}

export interface RestoreContext<Options> extends BaseContext<Options> {
  /** The project the run was taken of; differs from project.name when restoring into another project (INTO=, drills). */
  sourceProject: string;
  /** The service in the target project as it runs now; absent on a fresh host. */
  service?: ServiceInfo;
  serviceName: string;
  record: ServiceRecord;
  runDir: string;
  /** Only restore the artifact of this volume (compose or docker name). */
  volume?: string;
  /** Where to keep a copy of the data about to be replaced; absent with NO_RESCUE=1. */
  rescue?: RescueSink;
  dryRun: boolean;
  /** CLEAN=1: what the backup left out (exclude_paths) goes too; otherwise the live volume keeps it. */
  clean?: boolean;
  /** RESTORE_SECRETS=1: secret_paths come from the backup too; otherwise the live volume keeps them. */
  restoreSecrets?: boolean;
  /** What to do with data that exists already, per restore (CONFLICT=); strategies that offer choices validate it. */
  conflict?: string;
  /** The run's artifacts read back, whichever engine stored them. */
  reader: ArtifactReader;
}

export interface ProbeResult {
  ok: boolean;
  /**
   * What keeps the service from answering as recorded, one line each: every fact that differs
   * from the recorded artifacts, or why the probe could not tell (no running container, not
   * ready). Empty when it answers as recorded, or answers and no artifacts were given to compare.
   */
  differences: string[];
  /** Live facts (and the recorded ones compared), in the strategy's own shape: for people and tests. */
  facts: Record<string, unknown>;
}

export interface Strategy<Options = Record<string, unknown>> {
  readonly kind: string;
  /** Restores and probes with the service stopped (its data is files): a drill leaves its copy stopped. */
  readonly offline?: boolean;
  readonly options: z.ZodType<Options, z.ZodTypeDef, unknown>;
  /** Its services form one cluster captured by the first of them: the plan keeps them in one unit. */
  readonly clustered?: boolean;
  detect?(service: ServiceInfo): boolean;
  /** Whether capturing a service with these settings stops it and every service depending on it. */
  stopsForCapture?(settings: ServiceSettings): boolean;
  /**
   * Stop, or flush and snapshot, and hand back the session that captures and undoes it. When it
   * fails, it leaves nothing behind (what it stopped is started again). A failure that should
   * still name facts in the service's record (the cluster it is part of) is a SessionOpenError.
   */
  openSession(ctx: BackupContext<Options>): Promise<CaptureSession>;
  /** Restores the artifacts of one service; returns what it did, one line each. */
  restore(ctx: RestoreContext<Options>, artifacts: Artifact[]): Promise<string[]>;
  /**
   * "Does it answer, with data?": live facts of the service; given the artifacts of a run, also
   * compares them with the facts recorded at backup time (ok is false when they differ, and
   * `differences` names each fact that differs). probe(ctx, []) is the readiness check of
   * restore drills: ok once the service answers.
   */
  probe?(ctx: ProbeContext<Options>, recorded?: Artifact[]): Promise<ProbeResult>;
  /**
   * Undoes what a killed run of this strategy left outside composure's folders, as the strategy
   * wrote it into the journal (`ctx.journal.note`): a snapshot in a data volume, a snapshot tag.
   */
  undoLeftover?(leftover: Leftover, env: { helperImage: string; project: string }): Promise<void>;
}

/**
 * One service's backup in one run, from openSession to release. The pipeline pushes `release`
 * onto its cleanup stack as soon as the session exists, calls `capture` once, then `release` at
 * once (downtime is the capture, nothing more), and `release` also on a signal or a failure.
 */
export interface CaptureSession {
  /** Streams artifacts into ctx.serviceDir and describes them. */
  capture(): Promise<Artifact[]>;
  /** Its own undo: start what it stopped, delete its snapshot, remove its helper. Called once. */
  release(): Promise<void>;
  /** Names of the containers it stopped (for the record). */
  readonly stopped: readonly string[];
  /** How long they were down; final once release is done. */
  downtimeSeconds(): number;
  /** Facts about the service's backup as a whole, for its record (e.g. the cluster it was captured with). */
  readonly facts?: Record<string, unknown>;
}

/** openSession failed; the failed service's record still carries `facts` (the cluster it is part of). */
export class SessionOpenError extends Error {
  constructor(
    readonly error: unknown,
    readonly facts: Record<string, unknown>,
  ) {
    super(error instanceof Error ? error.message : String(error));
    this.name = "SessionOpenError";
  }
}

export interface RescueSink {
  /** Where the copies of the service go in the rescue run (created on first use; always the archive engine). */
  store(service: string): Promise<ArtifactStore>;
  /** `strategy` restores the artifact (default volume). */
  add(service: string, artifact: Artifact, strategy?: string): void;
}
