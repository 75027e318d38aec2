import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

export interface Problem {
  type?: string;
  title: string;
  status: number;
  detail?: string;
  errors?: Array<{ path: string; message: string }>;
  [k: string]: unknown;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** An RFC 9457 problem+json response. */
export function problem(c: Context, status: ContentfulStatusCode, detail: string, extra: Partial<Problem> = {}): Response {
  const body: Problem = {
    type: extra.type ?? `https://orderflow.dev/problems/${status}`,
    title: extra.title ?? TITLES[status] ?? 'Error',
    status,
    detail,
    ...extra,
  };
  return c.body(JSON.stringify(body), status, { 'content-type': 'application/problem+json' });
}

/** Thrown from handlers to answer with a problem. */
export class HttpProblem extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    detail: string,
    readonly extra: Partial<Problem> = {},
  ) {
    super(detail);
  }
}
