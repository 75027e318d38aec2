import { existsSync, readFileSync } from 'node:fs';
import * as v from 'valibot';
import { formatIssues, readSetting, type Lifecycle, type ServiceContext } from '@orderflow/kit';
import { ProductId } from './http/schemas.js';
import { seedProducts } from './stock/repository.js';

const SeedFile = v.pipe(
  v.array(
    v.strictObject({
      productId: ProductId,
      onHand: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(2_147_483_647)),
      price: v.optional(v.pipe(v.number(), v.finite(), v.minValue(0))),
    }),
  ),
  v.maxLength(100_000),
);

export type SeedProducts = v.InferOutput<typeof SeedFile>;

/** SEED_PRODUCTS is inline JSON (starts with `[`) or the path of a JSON file. */
export function parseSeed(raw: string): SeedProducts {
  const text = raw.trimStart().startsWith('[') ? raw : readSeedFile(raw);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`SEED_PRODUCTS is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const parsed = v.safeParse(SeedFile, json);
  if (!parsed.success) throw new Error(`SEED_PRODUCTS is invalid: ${formatIssues(parsed.issues)}`);
  return parsed.output;
}

function readSeedFile(path: string): string {
  if (!existsSync(path)) throw new Error(`SEED_PRODUCTS file ${path} does not exist`);
  return readFileSync(path, 'utf8');
}

/** Applied once at start; only creates missing products, so a restart never resets stock. */
export function seeder(ctx: ServiceContext): Lifecycle {
  return {
    async start() {
      const raw = readSetting('SEED_PRODUCTS', ctx.env);
      if (!raw) return;
      const products = parseSeed(raw);
      const created = await ctx.db.tx((sql) => seedProducts(sql, products));
      ctx.log.info({ seeded: created.length, given: products.length }, 'inventory.seeded');
    },
    async stop() {},
  };
}
