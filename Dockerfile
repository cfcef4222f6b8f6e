# syntax=docker/dockerfile:1
# One image for every Hookline process; the argument picks which:
#   docker run hookline api | worker | migrate
# The processes run JavaScript compiled by `npm run build` (each workspace's dist/) with plain
# node: no tsx, no TypeScript and no dev dependency in the runtime stage.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- manifests: the lockfile and every workspace's package.json, for cached installs ----
FROM ${NODE_IMAGE} AS manifests
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/cli/package.json packages/cli/
COPY packages/client/package.json packages/client/
COPY packages/config/package.json packages/config/
COPY packages/db/package.json packages/db/
COPY packages/domain/package.json packages/domain/
COPY packages/metrics/package.json packages/metrics/
COPY packages/queue/package.json packages/queue/
COPY packages/telemetry/package.json packages/telemetry/
COPY packages/verify/package.json packages/verify/
COPY apps/api/package.json apps/api/
COPY apps/standalone/package.json apps/standalone/
COPY apps/worker/package.json apps/worker/

# ---- build: full install, generate the Prisma client, compile every workspace ----
FROM manifests AS build
RUN npm ci --no-audit --no-fund
COPY . .
# Generation needs no schema-engine binary (the script points Prisma at a stub), so this works offline too.
RUN npm run -s build
# What the runtime stage takes of each workspace: its package.json (the workspace link's
# target, `main` = dist/index.js) and its compiled dist/, without declarations or build info.
RUN for ws in apps/* packages/*; do \
      [ -d "$ws/dist" ] || continue; \
      mkdir -p "/out/$ws" && cp -R "$ws/package.json" "$ws/dist" "/out/$ws/"; \
    done \
 && find /out -name '*.d.ts' -delete -o -name '.tsbuildinfo' -delete \
 && mkdir -p /out/apps/api/src/dashboard && cp -R apps/api/src/dashboard/static /out/apps/api/src/dashboard/

# ---- production dependencies only ----
# --omit=optional too: dev tools that are also optional peers of a production package (prisma and
# typescript, of @prisma/client) are marked devOptional in the lockfile, which --omit=dev alone keeps.
# What it also drops is optional at run time: msgpackr's native string decoder (it falls back to JS)
# and pg-cloudflare (Cloudflare Workers only). scripts/start-figures.ts runs this recipe.
FROM manifests AS prod-deps
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund && npm cache clean --force

# ---- runtime ----
FROM ${NODE_IMAGE} AS runtime
# The worker's health port listens on every interface in a container: probes and scrapes come over the pod's IP.
ENV NODE_ENV=production \
    PORT=3000 \
    WORKER_HEALTH_PORT=9090 \
    WORKER_HEALTH_HOST=0.0.0.0
WORKDIR /app
# Workspace links in node_modules are relative (../packages/…), so they resolve here as in /app of prod-deps.
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/package.json /app/package-lock.json ./
# The migrations, applied by `migrate` (and at start), and the contract steps (`migrate --contract`,
# once a rollout has finished); compiled code, the dashboard's two assets.
COPY --from=build /app/prisma/migrations ./prisma/migrations
COPY --from=build /app/prisma/contract ./prisma/contract
COPY --from=build /out ./
COPY --from=build /app/docker ./docker
RUN chmod 0755 docker/entrypoint.sh && mkdir -p /secrets && chown node:node /secrets

# Never root (uid 1000, numeric for Kubernetes' runAsNonRoot). The processes write nothing to disk in
# production (no ./.data: secrets come from the environment), so the root filesystem may be read-only.
USER 1000:1000

EXPOSE 3000 9090
# api: /readyz on PORT; worker: /readyz on WORKER_HEALTH_PORT; migrate: nothing to probe.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["node", "docker/healthcheck.mjs"]
ENTRYPOINT ["docker/entrypoint.sh"]
CMD ["api"]
