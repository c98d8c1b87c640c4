// The one interface every strategy folder implements (volume/, postgres/, cassandra/ ...).
import type { z } from "zod";
import type { ProjectInfo, ServiceInfo } from "../compose/discover.ts";
import type { Config, ServiceSettings } from "../config/schema.ts";
import type { Artifact, ServiceRecord } from "../catalog/manifest.ts";
import type { SelectedMount } from "../compose/mounts.ts";
import type { StopJournal } from "../lifecycle/journal.ts";

export type Release = () => Promise<void>;

export interface BaseContext<Options> {
  config: Config;
  project: ProjectInfo;
  settings: ServiceSettings;
  options: Options;
  helperImage: string;
  journal: StopJournal;
}

export interface BackupContext<Options> extends BaseContext<Options> {
  service: ServiceInfo;
  runDir: string;
  /** Directory of this service's artifacts inside the run (created by the pipeline). */
  serviceDir: string;
  /** The mounts this service backs up (shared volumes only with their first service). */
  mounts: SelectedMount[];
  /** Stopped container names, filled in by prepare for the manifest. */
  stopped: string[];
  /** Downtime so far, read by the pipeline after release. */
  downtimeSeconds: () => number;
  /** Facts about the service's backup as a whole, for the manifest record (e.g. a cluster captured with another service). */
  facts?: Record<string, unknown>;
  /** probe only: the project the recorded artifacts were taken of, when it is not this one (drills). */
  sourceProject?: string;
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
  /** What to do with data that exists already, per restore (CONFLICT=); strategies that offer choices validate it. */
  conflict?: string;
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
  detect?(service: ServiceInfo): boolean;
  /** Stop, or flush and snapshot; returns its own undo. */
  prepare(ctx: BackupContext<Options>): Promise<Release>;
  /** Streams artifacts into ctx.serviceDir and describes them. */
  capture(ctx: BackupContext<Options>): Promise<Artifact[]>;
  /** Restores the artifacts of one service; returns what it did, one line each. */
  restore(ctx: RestoreContext<Options>, artifacts: Artifact[]): Promise<string[]>;
  /**
   * "Does it answer, with data?": live facts of the service; given the artifacts of a run, also
   * compares them with the facts recorded at backup time (ok is false when they differ, and
   * `differences` names each fact that differs). probe(ctx, []) is the readiness check of
   * restore drills: ok once the service answers.
   */
  probe?(ctx: BackupContext<Options>, recorded?: Artifact[]): Promise<ProbeResult>;
}

export interface RescueSink {
  /** The rescue run's service directory, created on first use. */
  dir(service: string): Promise<string>;
  /** `strategy` restores the artifact (default volume). */
  add(service: string, artifact: Artifact, strategy?: string): void;
}
