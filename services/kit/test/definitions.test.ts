import { describe, expect, test } from 'vitest';
import { CONSUMERS, defineService, Names, platformTopology, type Handlers } from '@orderflow/kit';
import { declaredConsumers } from '../src/definition.js';
import { orderService } from '../../order-service/src/definition.js';
import { inventoryService } from '../../inventory-service/src/definition.js';
import { paymentService } from '../../payment-service/src/definition.js';

const definitions = [orderService(), inventoryService(), paymentService()];

describe('service definitions declare their consumers', () => {
  test('the topology has exactly the consumers the definitions declare, on their streams and subjects', () => {
    const declared = definitions.flatMap((d) =>
      Object.entries(d.consumers ?? {}).map(([durable, c]) => ({ service: d.name, stream: c.stream, durable, filter: c.subject })),
    );
    expect(declared.sort((a, b) => a.durable.localeCompare(b.durable))).toEqual(
      [...CONSUMERS].sort((a, b) => a.durable.localeCompare(b.durable)),
    );
    // So the platform topology (console, operator manifests, chart) and the services' own specs agree.
    for (const namespace of ['', 't_defs']) {
      const platform = platformTopology({ namespace }).consumers;
      const derived = definitions.flatMap((d) => declaredConsumers(d, { namespace }));
      expect(derived.sort((a, b) => a.durableName.localeCompare(b.durableName))).toEqual(
        [...platform].sort((a, b) => a.durableName.localeCompare(b.durableName)),
      );
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
    const [spec] = declaredConsumers(
      { name: 'order-service', consumers: { 'order-extra': { stream: 'PAYMENTS', subject: 'payments.completed' } } },
      { namespace: 't_defs' },
    );
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
