import { expect, test } from 'vitest';
import { saidWhyItExits } from '../support/exit-reason.js';

const fatal = JSON.stringify({
  level: 'fatal',
  service: 'payment-service',
  msg: 'service.unrecoverable_exiting',
  err: { stack: 'Error: creds\n    at x (y.js:1:2)' },
});
const warn = JSON.stringify({ level: 'warn', msg: 'nats.disconnected' });

test('a fatal log line and no Node crash is an exit on purpose', () => {
  expect(saidWhyItExits(`${warn}\n${fatal}\n${warn}\n`)).toBe(true);
  expect(saidWhyItExits(`{"level":60,"msg":"service.start_failed"}\n`)).toBe(true);
});

test('an unhandled error event or an uncaught exception is a crash, whatever was logged before', () => {
  const unhandled = [
    fatal,
    'node:events:497',
    "      throw er; // Unhandled 'error' event",
    '      ^',
    'error: terminating connection due to administrator command',
    '    at Parser.parseErrorMessage (/work/main/node_modules/pg-protocol/dist/parser.js:285:98)',
  ].join('\n');
  expect(saidWhyItExits(unhandled)).toBe(false);
  expect(saidWhyItExits(`${warn}\nfile:///x/main.js:3\nTypeError: boom\n    at file:///x/main.js:3:9\n`)).toBe(false);
  expect(saidWhyItExits(`${warn}\n`)).toBe(false);
});
