/**
 * CPU profiles of every service at saturation: the platform runs with `--cpu-prof`, takes one
 * load step at the given rate, stops (SIGTERM: the profile is written on exit) and each
 * .cpuprofile is reduced to self time by function and by package.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { summarise, type ProfileSummary } from '../lib/cpuprofile.js';
import { onCleanup } from '../lib/cleanup.js';
import { runStep, startPlatform, type Step } from './e2e.js';
import type { Config } from '../lib/config.js';

export interface ProfileResults {
  rate: number;
  step: Step;
  services: Record<string, ProfileSummary>;
}

export async function profileBench(cfg: Config, rate: number, keepDir?: string): Promise<ProfileResults> {
  const dir = keepDir ?? (await mkdtemp(`${tmpdir()}/orderflow-prof-`));
  const undo = onCleanup(`profiles ${dir}`, () => (keepDir ? undefined : rm(dir, { recursive: true, force: true })));
  try {
    const p = await startPlatform(cfg, 'postgres', ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
    const pids = new Map<number, string>();
    for (const [name, c] of p.children) if (c.proc.pid) pids.set(c.proc.pid, name);
    let step: Step;
    let fromUs = 0;
    try {
      await runStep(p, 50, 1, 20);
      fromUs = Number(process.hrtime.bigint() / 1000n);
      step = await runStep(p, rate, cfg.quick ? 4 : 8, cfg.quick ? 15 : 30);
    } finally {
      await p.stop();
    }
    const services: Record<string, ProfileSummary> = {};
    for (const f of await readdir(dir)) {
      const pid = Number(/^CPU\.\d+\.\d+\.(\d+)\./.exec(f)?.[1]);
      const name = pids.get(pid);
      if (name) services[name] = summarise(`${dir}/${f}`, 15, fromUs);
    }
    return { rate, step, services };
  } finally {
    await undo();
  }
}
