import type { Express } from 'express';

// The routes an Express 5 app really serves, read from its router stack, so a
// test can hold the OpenAPI document to them (and them to it).

export type ServedRoute = { method: string; path: string };
export type RouteList = { routes: ServedRoute[]; /** paths where middleware (static files, Bull Board's app) answers whatever lies below */ mounts: string[] };

type Layer = {
  rawPath?: unknown;
  route?: { path: unknown; methods: Record<string, boolean> };
  handle: { stack?: Layer[]; name?: string };
};

function paths(raw: unknown): string[] {
  if (typeof raw === 'string') return [raw];
  if (Array.isArray(raw)) return raw.flatMap(paths);
  // A RegExp route cannot be listed; none is used, and one would surface as a spec mismatch.
  return [];
}

const join = (prefix: string, path: string) => {
  const joined = `${prefix}/${path}`.replace(/\/+/g, '/');
  return joined.length > 1 ? joined.replace(/\/$/, '') : joined;
};

export function listRoutes(app: Express): RouteList {
  const routes: ServedRoute[] = [];
  const mounts: string[] = [];
  const walk = (stack: Layer[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        const methods = Object.keys(layer.route.methods).filter((m) => layer.route!.methods[m]);
        for (const path of paths(layer.route.path)) {
          for (const method of methods) routes.push({ method: method === '_all' ? 'all' : method, path: join(prefix, path) });
        }
      } else if (Array.isArray(layer.handle.stack)) {
        const mountPaths = paths(layer.rawPath);
        for (const path of mountPaths.length ? mountPaths : ['/']) walk(layer.handle.stack, join(prefix, path));
      } else {
        // Middleware scoped to a path (static files, Bull Board's own app): it answers there too.
        for (const path of paths(layer.rawPath)) {
          const mount = join(prefix, path);
          if (mount !== '/' && mount !== prefix && !mounts.includes(mount)) mounts.push(mount);
        }
      }
    }
  };
  const router = (app as unknown as { router: { stack: Layer[] } }).router;
  walk(router.stack, '');
  return { routes, mounts };
}
