/**
 * The test bed of the event-contract tests (contracts-*.test.ts): each test consumer records what
 * it handled in one `handled` table, the same for every file but for the one column that holds
 * what that file checks of the event's data.
 */
import { startTestBed, type TestBed } from '@orderflow/kit/testing';

/** A test bed whose schema has `handled`, with `dataColumn` (e.g. `customer text`) for the file's own checks. */
export function startContractsBed(label: string, dataColumn: string): Promise<TestBed> {
  return startTestBed({
    label,
    migrations: [
      {
        id: 'test-handled',
        sql: `CREATE TABLE handled (consumer text, event_id text, order_id text, version text, upcast_from text,
          ${dataColumn}, at timestamptz DEFAULT clock_timestamp())`,
      },
    ],
  });
}
