import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
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
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

function problemBody(status: ContentfulStatusCode, detail: string, extra: Partial<Problem>): string {
  const body: Problem = {
    type: extra.type ?? `https://orderflow.dev/problems/${status}`,
    title: extra.title ?? TITLES[status] ?? 'Error',
    status,
    detail,
    ...extra,
  };
  return JSON.stringify(body);
}

/** An RFC 9457 problem+json response. */
export function problem(c: Context, status: ContentfulStatusCode, detail: string, extra: Partial<Problem> = {}): Response {
  return c.body(problemBody(status, detail, extra), status, { 'content-type': 'application/problem+json' });
}

/**
 * Thrown from handlers to answer with a problem (Hono's HTTPException model: even without the
 * kit's errorHandler, Hono answers with getResponse()). `headers` go on the response, e.g. the
 * Retry-After of a 503 for an upstream that is away.
 */
export class HttpProblem extends HTTPException {
  constructor(
    override readonly status: ContentfulStatusCode,
    detail: string,
    readonly extra: Partial<Problem> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(status, { message: detail });
  }

  override getResponse(): Response {
    const headers = { ...this.headers, 'content-type': 'application/problem+json' };
    return new Response(problemBody(this.status, this.message, this.extra), { status: this.status, headers });
  }
}
