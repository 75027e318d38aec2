import { createRequire } from 'node:module';
import pg from 'pg';
import type { Row } from './db.js';

/** One statement of a batch. Its parameters are bound, never written into the text. */
export interface BatchStatement {
  text: string;
  params?: readonly unknown[];
  /** A prepared-statement name: parsed once per connection, then only bound and executed. */
  name?: string;
}

/** What one statement of a batch answered: its rows and its command tag (`INSERT 0 1`, `COMMIT`, `ROLLBACK`...). */
export interface BatchResult {
  rows: Row[];
  command: string;
}

/** The calls pg's Connection offers a Submittable (pg-cursor and pg-query-stream use the same). */
interface Wire {
  parsedStatements: Record<string, string | undefined>;
  parse(q: { text: string; name?: string; types: number[] }): void;
  bind(c: { statement?: string; values: unknown[] }): void;
  describe(m: { type: 'P'; name: string }): void;
  execute(c: { portal: string; rows: number }): void;
  sync(): void;
  sendCopyFail(msg: string): void;
  stream: { cork?(): void; uncork?(): void };
}

interface RowsParser {
  addFields(fields: unknown[]): void;
  parseRow(fields: unknown[]): Row;
}

// pg's own conversion of a JS value to a parameter (arrays, dates, JSON), as its Query uses it.
const { prepareValue } = createRequire(import.meta.url)('pg/lib/utils.js') as { prepareValue: (v: unknown) => unknown };

/**
 * Several statements as one extended-protocol sequence closed by a single Sync, through pg's
 * Submittable interface: one socket write from us and, since the server flushes its answers at
 * the Sync, one from the server. A statement each costs a round trip, a write and a wake-up on
 * each side per statement; pg's pipeline mode saves the wait but still syncs (and so flushes)
 * after every statement.
 *
 * After an error the server skips every message up to the Sync, so nothing runs after a failed
 * statement: `BEGIN` + a first statement, or the last writes + `COMMIT`, stay all or nothing.
 *
 * A named statement this connection has prepared is bound by name; one it has not is prepared by
 * the batch and recorded as prepared once the batch succeeds. If the batch fails, which of its
 * parses went through is unknown: the caller discards the connection rather than guess.
 */
class StatementBatch implements pg.Submittable {
  /** For pg's tracing instrumentation: the statements' texts, never their values. */
  readonly text: string;
  /** Called exactly once (pg's instrumentation may wrap it, as it wraps a Query's). */
  callback: ((err: Error | null, results?: BatchResult[]) => void) | undefined;
  readonly #values: unknown[][];
  readonly #results: BatchResult[] = [];
  readonly #preparing: Array<[string, string]> = [];
  #wire: Wire | undefined;
  #parser: RowsParser | undefined;
  #rows: Row[] = [];

  constructor(private readonly statements: readonly BatchStatement[]) {
    this.text = statements.map((s) => s.text).join(';\n');
    // Converted now: a value pg cannot send throws here, before anything is written.
    this.#values = statements.map((s) => (s.params ?? []).map((v) => prepareValue(v)));
  }

  submit(connection: pg.Connection): void {
    const wire = connection as unknown as Wire;
    this.#wire = wire;
    wire.stream.cork?.();
    try {
      this.statements.forEach((s, i) => {
        // Prepared on this connection already, or earlier in this very batch (the same write queued twice).
        const known = s.name === undefined ? undefined : (wire.parsedStatements[s.name] ?? this.#preparedHere(s.name));
        // A name already used for another text is not ours to replace: that statement runs unnamed.
        const name = s.name !== undefined && (known === undefined || known === s.text) ? s.name : undefined;
        if (name === undefined || known === undefined) {
          wire.parse({ text: s.text, name, types: [] });
          if (name !== undefined) this.#preparing.push([name, s.text]);
        }
        wire.bind({ statement: name, values: this.#values[i]! });
        wire.describe({ type: 'P', name: '' });
        wire.execute({ portal: '', rows: 0 });
      });
      wire.sync();
    } finally {
      wire.stream.uncork?.();
    }
  }

  #preparedHere(name: string): string | undefined {
    return this.#preparing.find(([n]) => n === name)?.[1];
  }

  handleRowDescription(msg: { fields: unknown[] }): void {
    const parser = new pg.Result('', pg.types) as unknown as RowsParser;
    parser.addFields(msg.fields);
    this.#parser = parser;
  }

  handleDataRow(msg: { fields: unknown[] }): void {
    if (this.#parser) this.#rows.push(this.#parser.parseRow(msg.fields));
  }

  handleCommandComplete(msg: { text?: string }): void {
    this.#results.push({ rows: this.#rows, command: (msg.text ?? '').split(' ')[0] ?? '' });
    this.#rows = [];
    this.#parser = undefined;
  }

  handleEmptyQuery(): void {
    this.handleCommandComplete({});
  }

  handlePortalSuspended(): void {}

  handleCopyInResponse(connection: pg.Connection): void {
    (connection as unknown as Wire).sendCopyFail('COPY is not supported in a statement batch');
  }

  handleCopyData(): void {}

  // pg hands an error to its active query and drops it: the ReadyForQuery after it is not ours.
  handleError(err: Error): void {
    this.#finish(err);
  }

  handleReadyForQuery(): void {
    for (const [name, text] of this.#preparing) this.#wire!.parsedStatements[name] = text;
    this.#finish(null, this.#results);
  }

  #finish(err: Error | null, results?: BatchResult[]): void {
    const cb = this.callback;
    this.callback = undefined;
    cb?.(err, results);
  }
}

/** Runs the statements as one batch on this client; resolves with each statement's answer. */
export function runBatch(client: pg.ClientBase, statements: readonly BatchStatement[]): Promise<BatchResult[]> {
  return new Promise((resolve, reject) => {
    const batch = new StatementBatch(statements);
    batch.callback = (err, results) => (err ? reject(err) : resolve(results ?? []));
    client.query(batch);
  });
}
