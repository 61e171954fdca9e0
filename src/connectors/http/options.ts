import { z } from 'zod';

const pagination = z
  .discriminatedUnion('type', [
    z.object({ type: z.literal('none') }).describe('One request per poll.'),
    z
      .object({
        type: z.literal('page'),
        param: z.string().default('page').describe('Query parameter carrying the page number.'),
        start: z.number().int().min(0).default(1).describe('First page number.'),
        totalPagesPath: z
          .string()
          .optional()
          .describe('Dot path of the total page count in the body (e.g. total_pages).'),
      })
      .describe('Page numbers: stops at an empty page or at totalPagesPath.'),
    z
      .object({
        type: z.literal('cursor'),
        param: z.string().default('cursor').describe('Query parameter carrying the cursor.'),
        nextCursorPath: z.string().describe('Dot path of the next cursor in the body; empty/null ends.'),
      })
      .describe('Opaque cursors returned by the API.'),
    z.object({ type: z.literal('link') }).describe('RFC 8288 Link header with rel="next".'),
  ])
  .default({ type: 'none' });

/** Options of the HTTP API poller (base of API clients such as TMDB's). */
export const httpPollerOptionsSchema = z
  .object({
    url: z.url({ protocol: /^https?$/ }).describe('First URL to request (http or https).'),
    topic: z.string().min(1).describe('Topic the records are appended to.'),
    headers: z.record(z.string(), z.string()).default({}).describe('Request headers (e.g. Authorization).'),
    recordsPath: z
      .string()
      .default('')
      .describe('Dot path of the record array in the body (e.g. results); empty = the body.'),
    keyField: z.string().optional().describe('Record field whose value becomes the record key.'),
    ratePerSecond: z
      .number()
      .positive()
      .max(10_000)
      .default(4)
      .describe('Requests per second, never exceeded (token bucket).'),
    rateMode: z
      .enum(['token-bucket', 'sliding-window'])
      .default('token-bucket')
      .describe(
        'token-bucket spaces requests (burst allowed); sliding-window allows ratePerSecond back to back but never more in any 1 s.',
      ),
    burst: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(1)
      .describe('Token-bucket size; 1 spaces requests evenly.'),
    timeoutMs: z.number().int().min(1).max(600_000).default(10_000).describe('Per-request timeout.'),
    attemptsMax: z
      .number()
      .int()
      .min(1)
      .max(20)
      .default(5)
      .describe('Attempts per request on 429, 5xx, timeouts and network errors.'),
    backoffBaseMs: z
      .number()
      .int()
      .min(1)
      .default(500)
      .describe('First backoff step (doubles per attempt, with jitter).'),
    backoffMaxMs: z
      .number()
      .int()
      .min(1)
      .default(30_000)
      .describe('Largest backoff and largest honoured Retry-After.'),
    pagination,
    pagesMax: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(1000)
      .describe('Pages fetched per poll at most.'),
    incremental: z
      .object({
        field: z.string().describe('Dot path of the record field that only grows (e.g. updated_at, id).'),
        param: z.string().describe('Query parameter sent with the highest value seen so far.'),
        initial: z.string().optional().describe('Value sent on the very first poll.'),
      })
      .optional()
      .describe('Incremental loads: the highest field value is saved in state and sent on the next poll.'),
    allowHosts: z
      .array(z.string())
      .optional()
      .describe(
        'Hosts the poller may reach, incl. redirects and Link URLs; default only the host of url. "*.x.com" allowed.',
      ),
    allowPrivateNetworks: z
      .boolean()
      .default(false)
      .describe('Allow loopback/private/link-local addresses (off: SSRF guard).'),
    allowAddresses: z
      .array(z.string())
      .default([])
      .describe('CIDRs allowed although private (e.g. 10.0.0.5/32).'),
    redirectsMax: z
      .number()
      .int()
      .min(0)
      .max(20)
      .default(5)
      .describe('Redirect hops followed (each one checked).'),
    pollIntervalMs: z.number().int().min(100).default(60_000).describe('Pause between polls in run().'),
    stateKey: z.string().optional().describe('Key of this poller in the state store; default the url.'),
  })
  .strict();

export type HttpPollerOptions = z.infer<typeof httpPollerOptionsSchema>;
export type HttpPollerOptionsInput = z.input<typeof httpPollerOptionsSchema>;
