#!/usr/bin/env node
/**
 * `orderflow` — the platform's JetStream CLI. NATS_URL (default nats://127.0.0.1:4222), NATS_USER /
 * NATS_PASSWORD(_FILE), NATS_CREDS, NATS_TLS_CA / _CERT / _KEY, read as the services read them.
 *
 *   orderflow streams apply -f <dir|file>     reconcile Stream/Consumer/KeyValue/ObjectStore YAML straight into NATS
 *   orderflow diff -f <dir|file>              the plan for that YAML, nothing applied (exit 0 in sync, 1 differs, 2 trouble)
 *   orderflow streams status                  streams and consumers, then KeyValue/ObjectStore buckets, with live numbers
 *   orderflow dlq list [stream]               dead letters (optionally of one source stream)
 *   orderflow dlq show <seq>
 *   orderflow dlq replay <seq|--all> [--to subject] [--stream S]
 *   orderflow dlq discard <seq>
 * `--dlq-stream NAME` (default DLQ) picks the DLQ stream for the dlq commands.
 */
import { parseArgs } from 'node:util';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import {
  discardDeadLetter,
  listDeadLetters,
  natsAccessFromEnv,
  natsConnectionOptions,
  problems,
  replayAllDeadLetters,
  replayDeadLetter,
  showDeadLetter,
  type DeadLetterEntry,
  type ReplayResult,
} from '@orderflow/kit';
import { loadResources, type Resources } from './load-resources.js';
import { statusLines } from './status.js';
import { applyTopologyKeepingOwners, planTopology, type PlannedResource } from './topology.js';

const USAGE = `usage:
  orderflow streams apply -f <dir|file> [--force]
  orderflow diff -f <dir|file>
  orderflow streams status
  orderflow dlq list [stream] [--dlq-stream DLQ]
  orderflow dlq show <seq>
  orderflow dlq replay <seq|--all> [--to subject] [--stream S]
  orderflow dlq discard <seq>`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    file: { type: 'string', short: 'f' },
    all: { type: 'boolean' },
    force: { type: 'boolean' },
    to: { type: 'string' },
    stream: { type: 'string' },
    'dlq-stream': { type: 'string', default: 'DLQ' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});

function seqArg(s: string | undefined): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`expected a DLQ sequence number, got "${s ?? ''}"`);
  return n;
}

class UsageError extends Error {}

function printEntry(e: DeadLetterEntry, full: boolean): void {
  console.log(
    `#${e.seq}  ${e.time}  ${e.stream}/${e.consumer} seq=${e.streamSeq} deliveries=${e.deliveries}  ` +
      `${e.originalSubject}  reason=${e.reason}`,
  );
  if (!full) return;
  for (const [k, vs] of Object.entries(e.headers)) for (const v of vs) console.log(`  ${k}: ${v}`);
  console.log(`  payload: ${new TextDecoder().decode(e.data)}`);
}

const VERDICT: Record<PlannedResource['inspection']['plan']['action'], string> = {
  noop: 'in sync',
  create: 'would create',
  update: 'would update',
  'recreate-needed': 'differs; cannot change in place',
  refuse: 'refused',
};

/** One line per object, then its reasons; true when everything is in sync. */
function printDiff(planned: PlannedResource[]): boolean {
  for (const { inspection: i, owner } of planned) {
    const p = i.plan;
    console.log(
      `${p.kind.padEnd(8)} ${p.key.padEnd(40)} ${VERDICT[p.action]}${owner ? `  (owned by the Kubernetes resource ${owner})` : ''}`,
    );
    if (p.action !== 'noop' && p.action !== 'create') for (const r of p.reasons) console.log(`    ${r}`);
  }
  return planned.every((x) => x.inspection.plan.action === 'noop');
}

function printReplay(r: ReplayResult): boolean {
  if (r.ok) console.log(`#${r.seq} replayed to ${r.subject} (seq ${r.replayedSeq}, msg id ${r.msgId}) and removed from the DLQ`);
  else console.error(`#${r.seq} NOT replayed: ${r.error}`);
  return r.ok;
}

async function run(nc: NatsConnection): Promise<number> {
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const loc = { jsm, dlqStream: values['dlq-stream']! };
  const [group, cmd, arg] = positionals;
  /** The YAML, with a note for resources that name a NatsConnection: the CLI has only its own NATS. */
  const load = async (file: string): Promise<Resources> => {
    const r = await loadResources(file);
    if (r.namingConnections.length > 0)
      console.error(
        `note: spec.connection is the operator's; the CLI plans and applies these to ${nc.getServer()} (its NATS_* settings): ` +
          r.namingConnections.join(', '),
      );
    return r;
  };
  if (group === 'diff') {
    if (!values.file || cmd !== undefined) throw new UsageError('diff needs -f <dir|file>');
    return printDiff(await planTopology(jsm, await load(values.file))) ? 0 : 1;
  }
  switch (`${group} ${cmd}`) {
    case 'streams apply': {
      if (!values.file) throw new UsageError('streams apply needs -f <dir|file>');
      const results = await applyTopologyKeepingOwners(jsm, await load(values.file), { force: values.force });
      for (const r of results)
        console.log(
          `${r.kind.padEnd(8)} ${r.key.padEnd(40)} ${r.outcome}` +
            (r.reasons.length && r.outcome !== 'created' ? `: ${r.reasons.join('; ')}` : ''),
        );
      return problems(results).length > 0 ? 1 : 0;
    }
    case 'streams status': {
      for (const line of await statusLines(jsm)) console.log(line);
      return 0;
    }
    case 'dlq list': {
      const entries = await listDeadLetters(loc, { stream: arg ?? values.stream });
      if (values.json)
        console.log(
          JSON.stringify(
            entries.map((e) => ({ ...e, data: new TextDecoder().decode(e.data) })),
            null,
            2,
          ),
        );
      else if (entries.length === 0) console.log('no dead letters');
      else for (const e of entries) printEntry(e, false);
      return 0;
    }
    case 'dlq show': {
      const e = await showDeadLetter(loc, seqArg(arg));
      if (!e) {
        console.error(`no dead letter #${arg} in ${loc.dlqStream}`);
        return 1;
      }
      printEntry(e, true);
      return 0;
    }
    case 'dlq replay': {
      if (values.all) {
        const results = await replayAllDeadLetters(js, loc, { stream: values.stream }, { to: values.to });
        if (results.length === 0) console.log('no dead letters');
        return results.map(printReplay).every(Boolean) ? 0 : 1;
      }
      return printReplay(await replayDeadLetter(js, loc, seqArg(arg), { to: values.to })) ? 0 : 1;
    }
    case 'dlq discard': {
      const ok = await discardDeadLetter(loc, seqArg(arg));
      console.log(ok ? `#${arg} discarded` : `no dead letter #${arg}`);
      return ok ? 0 : 1;
    }
    default:
      throw new UsageError(group ? `unknown command "${positionals.join(' ')}"` : 'no command');
  }
}

async function main(): Promise<number> {
  if (values.help || positionals.length === 0) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  const access = natsAccessFromEnv();
  let nc: NatsConnection;
  try {
    nc = await connect(natsConnectionOptions(access, 'orderflow-cli'));
  } catch (err) {
    console.error(`error: cannot connect to NATS at ${access.servers.join(',')}: ${(err as Error).message}`);
    return positionals[0] === 'diff' ? 2 : 1;
  }
  try {
    return await run(nc);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`${err.message}\n${USAGE}`);
      return 2;
    }
    console.error(`error: ${(err as Error).message}`);
    // diff answers like diff(1): 0 the same, 1 different, 2 trouble.
    return positionals[0] === 'diff' ? 2 : 1;
  } finally {
    await nc.close();
  }
}

process.exitCode = await main();
