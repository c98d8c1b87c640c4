// A tree handed to its store before it may be read: the store does what it can while the service
// still runs (restic opens the repository: its key derivation alone takes half a second), says so
// with ready(), and reads nothing before `opened` resolves, once the service has stopped.
export interface SourceGate {
  /** Resolves when the tree may be read; rejects when it never may (the stop failed). */
  readonly opened: Promise<void>;
  /** The store has done all it can before reading the tree. */
  ready(): void;
}

/** The strategy's side of a gate. */
export interface GateControl {
  gate: SourceGate;
  /** Resolves once the store called ready(). */
  armed: Promise<void>;
  open(): void;
  fail(error: unknown): void;
}

export function createGate(): GateControl {
  let ready!: () => void;
  let open!: () => void;
  let fail!: (error: unknown) => void;
  const armed = new Promise<void>((resolve) => (ready = resolve));
  const opened = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  opened.catch(() => undefined); // a store that never waited on it must not make it unhandled
  return { gate: { opened, ready }, armed, open, fail };
}

/** What a store without anything to prepare does with a gate. */
export async function passGate(gate: SourceGate | undefined): Promise<void> {
  gate?.ready();
  await gate?.opened;
}
