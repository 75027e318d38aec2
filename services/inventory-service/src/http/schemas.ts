import * as v from 'valibot';

/** Product ids as they appear in URLs and events: visible, URL-safe, at most 128 characters. */
export const PRODUCT_ID = /^[\w.:@~-]{1,128}$/;
export const ProductId = v.pipe(v.string(), v.regex(PRODUCT_ID, 'a product id is 1-128 characters of letters, digits and . _ : @ ~ -'));

/** PUT /products/:productId. Unknown fields are rejected, not ignored. */
export const SetStockRequest = v.strictObject({
  onHand: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(2_147_483_647)),
  price: v.optional(v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(1_000_000_000))),
});
