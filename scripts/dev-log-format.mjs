// Readable logs for `npm run dev` in a terminal: each JSON line a service writes is shown by
// pino-pretty as one event, prefixed and coloured by service. Pods, pipes and CI keep the JSON
// (DEV_LOG_FORMAT=json|pretty overrides the terminal check).
import { prettyFactory } from 'pino-pretty';

const COLOURS = [36, 35, 33, 32, 34, 91, 96, 95];

/** Whether dev output should be prettified: on a terminal unless DEV_LOG_FORMAT says otherwise. */
export function wantsPretty(env = process.env, stream = process.stdout) {
  const format = (env.DEV_LOG_FORMAT ?? '').toLowerCase();
  if (format === 'json') return false;
  if (format === 'pretty') return true;
  return Boolean(stream.isTTY);
}

/**
 * A function from one output line of a child to what the terminal shows: the prefix names the
 * child, the event is pino-pretty's one-line form (extra fields on the lines below it), and a line
 * that is not JSON (nats-server, a crash trace) is shown as it is, still prefixed.
 */
export function createLineFormatter({ colour = true } = {}) {
  const pretty = prettyFactory({
    colorize: colour,
    singleLine: true,
    translateTime: 'HH:MM:ss.l',
    ignore: 'pid,hostname,service',
  });
  const widths = { max: 0 };
  const colourOf = new Map();
  return (name, line) => {
    widths.max = Math.max(widths.max, name.length);
    if (!colourOf.has(name)) colourOf.set(name, COLOURS[colourOf.size % COLOURS.length]);
    const tag = name.padEnd(widths.max);
    const prefix = colour ? `\u001b[${colourOf.get(name)}m${tag}\u001b[0m │ ` : `${tag} │ `;
    let body = line;
    if (line.startsWith('{')) {
      try {
        body = String(pretty(JSON.parse(line))).trimEnd();
      } catch {
        body = line;
      }
    }
    return `${prefix}${body}\n`;
  };
}
