/**
 * The machine's price of a wake-up: a bare Node TCP echo in its own process is sent one byte at
 * a time at a fixed rate, and the CPU both processes use per round trip is measured. On a VM the
 * same work costs several times more CPU when processes sleep between messages than when they
 * are kept busy, which is most of why the platform's CPU per order falls as the rate rises; this
 * baseline, measured in the same run, says how much of a figure is the machine's.
 */
import net from 'node:net';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpuMs } from './procs.js';
import { openLoop } from './open-loop.js';
import { round, sleep } from './stats.js';
import { onCleanup } from './cleanup.js';

export interface WakeupCost {
  /** Messages per second sent. */
  rate: number;
  /** CPU µs per round trip: sender (this process) and echo. */
  senderUs: number;
  echoUs: number;
}

export async function wakeupCost(rates: readonly number[], seconds: number): Promise<WakeupCost[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/servers/tcp-echo.ts'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const undo = onCleanup('tcp echo', () => void child.kill());
  try {
    const [line] = (await once(child.stdout, 'data')) as [Buffer];
    const sock = net.connect(Number(line.toString().trim()), '127.0.0.1');
    await once(sock, 'connect');
    sock.setNoDelay(true);
    let received = 0;
    sock.on('data', (d: Buffer) => (received += d.length));
    const out: WakeupCost[] = [];
    for (const rate of rates) {
      const n = Math.round(rate * seconds);
      const before = received;
      const [s0, e0] = [await cpuMs(process.pid), await cpuMs(child.pid!)];
      await openLoop(rate, n, () => void sock.write('x'));
      for (let i = 0; i < 100 && received - before < n; i++) await sleep(10);
      const [s1, e1] = [await cpuMs(process.pid), await cpuMs(child.pid!)];
      out.push({ rate, senderUs: round(((s1 - s0) * 1000) / n), echoUs: round(((e1 - e0) * 1000) / n) });
    }
    sock.destroy();
    return out;
  } finally {
    await undo();
  }
}
