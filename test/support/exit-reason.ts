/** How a service process ended, read from what it wrote (the harness's crash accounting). */

/**
 * A run's output shows an exit on purpose: the process logged a `fatal` line (the kit's pino
 * label; 60 raw) saying why, and Node printed no crash of its own (an uncaught exception or an
 * unhandled 'error' event writes a plain-text stack, not JSON).
 */
export function saidWhyItExits(output: string): boolean {
  const lines = output.split('\n');
  const fatal = lines.some((l) => {
    if (!l.startsWith('{')) return false;
    try {
      const { level } = JSON.parse(l) as { level?: unknown };
      return level === 'fatal' || level === 60;
    } catch {
      return false; // a line cut by the buffer
    }
  });
  const nodeCrash = lines.some(
    (l) => /^\s+at .+:\d+:\d+\)?$/.test(l) || /Unhandled 'error' event|UnhandledPromiseRejection|uncaughtException/.test(l),
  );
  return fatal && !nodeCrash;
}
