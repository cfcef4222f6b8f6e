# syntax=docker/dockerfile:1
# One image for every Hookline process; the argument picks which:
#   docker run hookline api | worker | migrate
# The apps run their TypeScript through tsx (a production dependency): there is no compile step.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- manifests: the lockfile and every workspace's package.json, for cached installs ----
FROM ${NODE_IMAGE} AS manifests
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/config/package.json packages/config/
COPY packages/db/package.json packages/db/
COPY packages/domain/package.json packages/domain/
COPY packages/metrics/package.json packages/metrics/
COPY packages/queue/package.json packages/queue/
COPY packages/verify/package.json packages/verify/
COPY apps/api/package.json apps/api/
COPY apps/standalone/package.json apps/standalone/
COPY apps/worker/package.json apps/worker/

# ---- build: full install, then generate the Prisma client ----
FROM manifests AS build
RUN npm ci --no-audit --no-fund
COPY . .
# Generation needs no schema-engine binary (the script points Prisma at a stub), so this works offline too.
RUN node scripts/prisma-generate.mjs

# ---- production dependencies only ----
FROM manifests AS prod-deps
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

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
COPY --from=build /app/package.json /app/package-lock.json /app/tsconfig.json /app/tsconfig.base.json /app/prisma.config.ts ./
COPY --from=build /app/prisma ./prisma
COPY --from=build /app/packages ./packages
COPY --from=build /app/apps ./apps
COPY --from=build /app/docker ./docker
RUN chmod 0755 docker/entrypoint.sh && mkdir -p /secrets && chown node:node /secrets

# Never root. The app writes nothing to its own tree in production (no ./.data: secrets come from the environment).
USER node

EXPOSE 3000 9090
# api: /readyz on PORT; worker: /readyz on WORKER_HEALTH_PORT; migrate: nothing to probe.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["node", "docker/healthcheck.mjs"]
ENTRYPOINT ["docker/entrypoint.sh"]
CMD ["api"]
