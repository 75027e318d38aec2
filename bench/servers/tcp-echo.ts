/** A bare Node TCP echo: the wake-up baseline (lib/wakeup-cost.ts). Prints its port when listening. */
import net from 'node:net';

const server = net.createServer((c) => c.on('data', (d) => c.write(d)));
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`${typeof a === 'object' && a ? a.port : 0}\n`);
});
