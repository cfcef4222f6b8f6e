import { Router } from 'express';
import type { ApiDeps } from '../deps';

// Placeholder: being built.
export function createIngestRouter(_deps: ApiDeps): Router {
  return Router();
}
