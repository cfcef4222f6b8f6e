import { Router } from 'express';
import type { ApiDeps } from '../deps';

// Placeholder: being built.
export function createDashboardRouter(_deps: ApiDeps): Router {
  return Router();
}
