/** Schemas shared by the control plane's routes. */
import * as z from 'zod';
import { ErrorCode } from '../protocol/errors.js';

export const ErrorBodySchema = z.object({
  code: z.enum(Object.values(ErrorCode) as [string, ...string[]]),
  message: z.string(),
  details: z.unknown().optional(),
});
