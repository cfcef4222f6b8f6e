import { z } from 'zod';

// Jobs carry ids, never records: the worker reloads everything from PostgreSQL.
export const deliverJobData = z.object({
  deliveryId: z.string().regex(/^dlv_[0-9A-Za-z]+$/),
  /** A single attempt with no retries (test sends and manual retries). */
  once: z.boolean().optional(),
  /**
   * The W3C traceparent of the span that queued the job (tracing on only), so
   * the worker's attempt joins the publish's trace. Optional: jobs queued
   * before it existed, or with tracing off, have none. Never parsed strictly:
   * a malformed one only loses the trace, never the delivery.
   */
  traceparent: z.string().max(128).optional().catch(undefined),
});
export type DeliverJobData = z.infer<typeof deliverJobData>;
