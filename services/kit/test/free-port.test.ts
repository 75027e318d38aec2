/**
 * freePort gives test servers ports below the kernel's ephemeral range: a server stopped and
 * started again must find its port free, and an ephemeral port may meanwhile have become the
 * source port of some outgoing connection.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { expect, test } from 'vitest';
import { freePort } from '../src/testing/index.js';

function ephemeralLow(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    return 32_768;
  }
}

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}

test('ports below the ephemeral range, never the same twice (also when asked concurrently), each bindable', async () => {
  const sequential: number[] = [];
  for (let i = 0; i < 50; i++) sequential.push(await freePort());
  // Concurrent calls each pass the bind check with the port closed again: only the bookkeeping keeps them apart.
  const concurrent = await Promise.all(Array.from({ length: 50 }, () => freePort()));
  const ports = [...sequential, ...concurrent];

  const low = ephemeralLow();
  for (const p of ports) {
    expect(p).toBeGreaterThanOrEqual(1024);
    expect(p).toBeLessThan(low);
  }
  expect(new Set(ports).size).toBe(ports.length);

  // All held at once: each is free on loopback.
  const servers = await Promise.all(ports.map(listen));
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});
