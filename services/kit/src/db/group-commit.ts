import { Linger } from '../batching/linger.js';
import { isRetryLater, unavailableDependency } from '../faults/classify.js';

/** What one item of a group came to: its value, or the error that fails only its own caller. */
export type Settled<O> = { ok: true; value: O } | { ok: false; error: unknown };

export interface GroupCommitOptions<I, O> {
  /**
   * Writes a whole group in one statement or transaction and returns one outcome per item, in
   * order. Throwing fails the group: it is split (see `writeOne`) or every caller gets the error.
   */
  writeGroup(items: readonly I[]): Promise<Array<Settled<O>>>;
  /**
   * Writes one item on its own: after a group write threw an error that may belong to one item
   * (a constraint violation...), each item is written alone so one bad item fails only its caller.
   */
  writeOne(item: I): Promise<O>;
  /**
   * Whether a failed group is worth splitting. By default everything but a database that is away
   * or busy (connection lost, timeout, lock race): those would fail every item again, so every
   * caller gets the error at once (a 503 for all).
   */
  splittable?(err: unknown): boolean;
  /** Items written together at most; the rest wait for the next group. */
  maxGroup?: number;
  /**
   * Groups being written at once (default 1). With 2, a second group is written while the first
   * waits for its commit, on its own connection: more commits in flight, smaller groups.
   */
  maxInFlight?: number;
  /**
   * How long an idle writer waits for a second item before writing the first alone (default 0:
   * at once). Only a writer starting from idle waits, and only until company arrives and the
   * event loop's turn that brought it is over (the next check phase), so every item of that turn
   * joins: under load the next group forms while the previous one commits and no wait is added.
   */
  lingerMs?: number;
  /**
   * Items the recent arrival rate must predict within `lingerMs` for an idle writer to wait
   * (default 0.5): at rest a lone item is written at once, since nobody is coming to share its
   * commit. 0 waits whatever the rate.
   */
  lingerMinExpected?: number;
  /** Called once per group written (size, whether it had to be split): metrics and tests. */
  onGroup?(size: number, split: boolean): void;
  /**
   * Runs once a committed group's callers have their outcomes: work that follows the commit but
   * need not hold the answers back (order-service hands the group's events to the outbox relay
   * here). Must not throw; an error is swallowed, the callers are answered already.
   */
  committed?(items: readonly I[], outcomes: ReadonlyArray<Settled<O>>): void;
}

interface Pending<I, O> {
  item: I;
  resolve(value: O): void;
  reject(err: unknown): void;
}

const defaultSplittable = (err: unknown) => !unavailableDependency(err) && !isRetryLater(err);

/**
 * Group commit: callers submit items one at a time; while `maxInFlight` groups are being written,
 * whatever arrives queues up and is written as the next group, as soon as a writer is free. An
 * idle writer starts at once (no timer, no added latency) unless `lingerMs` asks it to wait for
 * company and the recent rate says company is likely; under load one commit (one round trip, one
 * WAL flush) serves many callers. Each caller's promise settles only after the group holding its
 * item has committed, so durability is that of a write of its own. A group is written in the
 * async context of the caller that started its writer (its trace holds the group's statement).
 *
 * A committed group's callers are answered in the event loop's next check phase, after the next
 * group's statement has gone out, and `committed` runs a turn after that, behind the answers:
 * the database works on the next group while this process answers. Answered at once, the callers'
 * continuations (under POST /orders, 16 responses written) ran as microtasks in front of the pg
 * pool's `process.nextTick` that sends the next statement, and Postgres sat idle for 190–270 µs of
 * every 1.4 ms cycle (session 23's trace of one order-service, bench/README.md).
 */
export class GroupCommit<I, O> {
  private queue: Array<Pending<I, O>> = [];
  private readonly writers = new Set<Promise<void>>();
  /**
   * Writers running, counted down inside drain() in the same turn as it finds the queue empty:
   * the set above loses a writer only a microtask later, and an item submitted in between (by a
   * caller resuming from its own write) would find no writer to take it.
   */
  private active = 0;
  private stopped = false;
  private readonly maxGroup: number;
  private readonly maxInFlight: number;
  private readonly linger: Linger;
  /** Answers (and `committed`) scheduled for committed groups: stop() waits for them too. */
  private answering: Promise<void> = Promise.resolve();
  /** Ends the wait of a writer lingering for company (set while one does). */
  private company: (() => void) | undefined;
  private readonly splittable: (err: unknown) => boolean;

  constructor(private readonly o: GroupCommitOptions<I, O>) {
    this.maxGroup = Math.max(1, o.maxGroup ?? 500);
    this.maxInFlight = Math.max(1, o.maxInFlight ?? 1);
    this.linger = new Linger(o.lingerMs, o.lingerMinExpected);
    this.splittable = o.splittable ?? defaultSplittable;
  }

  /** Resolves with the item's outcome once its group has committed; rejects with its error. */
  submit(item: I): Promise<O> {
    if (this.stopped) return Promise.reject(new Error('group commit stopped: no more writes are accepted'));
    return new Promise<O>((resolve, reject) => {
      const lingerFirst = this.linger.arrive(performance.now());
      this.queue.push({ item, resolve, reject });
      if (this.queue.length > 1) this.company?.();
      if (this.active < this.maxInFlight) {
        this.active++;
        const writer: Promise<void> = this.drain(lingerFirst).finally(() => this.writers.delete(writer));
        this.writers.add(writer);
      }
    });
  }

  /** Items waiting for a group being written to finish (not counting those groups). */
  get queued(): number {
    return this.queue.length;
  }

  start(): void {
    // Nothing runs while idle: the writer starts with the first submitted item.
  }

  /** Refuses new items and waits until every item already submitted is written and answered. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.company?.();
    await Promise.all([...this.writers]);
    await this.answering;
  }

  private noteGroup(size: number, split: boolean): void {
    try {
      this.o.onGroup?.(size, split);
    } catch {
      // A metrics hook must not stop the writer (the callers' promises would never settle).
    }
  }

  /**
   * Company ends the wait in the next check phase, not at once: the requests a load generator
   * sends on one group's answers arrive in the same poll phase, and written on the second
   * arrival a closed loop settled into groups of 2 and of the rest by turns (32 connections:
   * 22 % of groups had one or two orders; 4 % with the turn's arrivals joining; `--ab`, 7
   * trials: ×1.068 requests/s).
   */
  private waitForCompany(): Promise<void> {
    return new Promise<void>((resolve) => {
      let joining: ReturnType<typeof setImmediate> | undefined;
      const done = () => {
        clearTimeout(timer);
        clearImmediate(joining);
        this.company = undefined;
        resolve();
      };
      const timer = setTimeout(done, this.linger.ms);
      this.company = () => {
        joining ??= setImmediate(done);
      };
    });
  }

  /** One writer: takes whatever is queued as its group, writes it, and again until none is left. */
  private async drain(lingerFirst: boolean): Promise<void> {
    try {
      if (lingerFirst && this.queue.length === 1 && !this.stopped) await this.waitForCompany();
      while (this.queue.length > 0) {
        await this.write(this.queue.splice(0, this.maxGroup));
      }
    } finally {
      this.active--;
    }
  }

  private async write(group: Array<Pending<I, O>>): Promise<void> {
    let outcomes: Array<Settled<O>>;
    try {
      outcomes = await this.o.writeGroup(group.map((p) => p.item));
    } catch (err) {
      if (group.length === 1 || !this.splittable(err)) {
        this.noteGroup(group.length, false);
        for (const p of group) p.reject(err);
        return;
      }
      // Nothing of the group was written (one statement or transaction): each item alone, so the
      // bad one fails its own caller only.
      this.noteGroup(group.length, true);
      for (const p of group) {
        try {
          p.resolve(await this.o.writeOne(p.item));
        } catch (e) {
          p.reject(e);
        }
      }
      return;
    }
    this.noteGroup(group.length, false);
    // Immediates run in the order scheduled, so awaiting the last one awaits them all.
    this.answering = new Promise<void>((done) =>
      setImmediate(() => {
        this.answer(group, outcomes);
        setImmediate(() => {
          this.notifyCommitted(group, outcomes);
          done();
        });
      }),
    );
  }

  private answer(group: ReadonlyArray<Pending<I, O>>, outcomes: ReadonlyArray<Settled<O>>): void {
    group.forEach((p, i) => {
      const r = outcomes[i];
      // Our bug, after the commit: not retried (that would write the group twice).
      if (!r) p.reject(new Error(`group write returned ${outcomes.length} outcomes for ${group.length} items`));
      else if (r.ok) p.resolve(r.value);
      else p.reject(r.error);
    });
  }

  private notifyCommitted(group: ReadonlyArray<Pending<I, O>>, outcomes: ReadonlyArray<Settled<O>>): void {
    try {
      this.o.committed?.(
        group.map((p) => p.item),
        outcomes,
      );
    } catch {
      // The callers have their answers; a hook's failure must not become an unhandled rejection.
    }
  }
}
