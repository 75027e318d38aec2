import { describe, expect, test } from 'vitest';
import { defineService, Names, topologyOf, type Handlers } from '@orderflow/kit';
import { orderService } from '../../order-service/src/definition.js';
import { inventoryService } from '../../inventory-service/src/definition.js';
import { paymentService } from '../../payment-service/src/definition.js';
import { platformDefinitions, platformTopology, SERVICES } from '../../../test/support/topology.js';

const definitions = [orderService(), inventoryService(), paymentService()];

describe('service definitions declare their consumers', () => {
  test('the platform topology is derived from the three definitions: their consumers, on their streams and subjects', () => {
    // Each definition is listed under its own name (SERVICES keys the test harness and NATS users).
    for (const [name, make] of Object.entries(SERVICES)) expect(make().name).toBe(name);
    expect(
      platformDefinitions()
        .map((d) => d.name)
        .sort(),
    ).toEqual(definitions.map((d) => d.name).sort());
    for (const namespace of ['', 't_defs']) {
      const names = new Names(namespace);
      const declared = definitions.flatMap((d) =>
        Object.entries(d.consumers ?? {}).map(([durable, c]) => ({
          streamName: names.stream(c.stream),
          durableName: durable,
          filterSubject: names.subject(c.subject),
        })),
      );
      const topology = platformTopology({ namespace });
      expect(topology.consumers.map(({ streamName, durableName, filterSubject }) => ({ streamName, durableName, filterSubject }))).toEqual(
        expect.arrayContaining(declared),
      );
      expect(topology.consumers).toHaveLength(declared.length);
      expect(topology.streams.map((s) => s.name)).toEqual(['ORDERS', 'INVENTORY', 'PAYMENTS', 'DLQ'].map((b) => names.stream(b)));
    }
  });

  test('every event a service consumes is emitted by a service', () => {
    const emitted = new Set(definitions.flatMap((d) => d.emits ?? []));
    for (const d of definitions) {
      for (const c of Object.values(d.consumers ?? {})) {
        const prefix = c.subject.replace(/>$/, '');
        expect(
          [...emitted].some((e) => (c.subject.endsWith('>') ? e.startsWith(prefix) : e === c.subject)),
          `${d.name} consumes ${c.subject}`,
        ).toBe(true);
      }
    }
  });

  test('consumer specs derive from its declaration: stream, subject, DLQ subject under the namespace', () => {
    const names = new Names('t_defs');
    const {
      consumers: [spec],
    } = topologyOf([{ consumers: { 'order-extra': { stream: 'PAYMENTS', subject: 'payments.completed' } } }], { namespace: 't_defs' });
    expect(spec).toMatchObject({
      durableName: 'order-extra',
      streamName: names.stream('PAYMENTS'),
      filterSubject: names.subject('payments.completed'),
      deadLetter: { subject: names.dlqSubject(names.stream('PAYMENTS'), 'order-extra') },
    });
  });

  test('handler maps are checked against the declared consumers at compile time', () => {
    const none: Handlers = {};
    const base = {
      name: 'order-service',
      defaultPort: 0,
      migrations: [],
      consumers: { 'order-inventory': { stream: 'INVENTORY', subject: 'inventory.>' } },
      routes: () => undefined as never,
    } as const;
    const ok = defineService({ ...base, handlers: () => ({ 'order-inventory': none }) });
    // @ts-expect-error an undeclared durable name (a typo) does not compile
    defineService({ ...base, handlers: () => ({ 'order-inventory': none, 'order-inventroy': none }) });
    // @ts-expect-error a declared consumer without handlers does not compile
    defineService({ ...base, handlers: () => ({}) });
    // setup's result reaches the other hooks, typed.
    defineService({ ...base, setup: () => ({ n: 1 }), handlers: (_ctx, s) => ({ 'order-inventory': s.n === 1 ? none : none }) });
    expect(Object.keys(ok.consumers ?? {})).toEqual(['order-inventory']);
  });
});
