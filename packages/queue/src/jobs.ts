import { z } from 'zod';

// Jobs carry ids, never records: the worker reloads everything from PostgreSQL.
export const deliverJobData = z.object({
  deliveryId: z.string().regex(/^dlv_[0-9A-Za-z]+$/),
  /** A single attempt with no retries (test sends and manual retries). */
  once: z.boolean().optional(),
});
export type DeliverJobData = z.infer<typeof deliverJobData>;
