# syntax=docker/dockerfile:1.7
#
# One parameterised image for every workload of the platform.
#
#   docker build --build-arg SERVICE=order-service     -t orderflow/order-service .
#   docker build --build-arg SERVICE=inventory-service -t orderflow/inventory-service .
#   docker build --build-arg SERVICE=payment-service   -t orderflow/payment-service .
#   docker build --build-arg SERVICE=sandbox-gateway   -t orderflow/sandbox-gateway .
#   docker build --build-arg SERVICE=operator --build-arg SERVICE_DIR=operator -t orderflow/operator .
#
# Stages: prune (turbo prune to the one workspace and its deps) -> deps (production node_modules)
# -> build (full install + tsc) -> runtime (node:24-alpine, non-root, compiled JS only).
# Node 24 is the current LTS line (Node 20 reached end of life in April 2026); package.json
# `engines` lists the supported lines, and scripts/node-lts-leg.sh runs the unit suites on 24 in CI.
# No HEALTHCHECK: Kubernetes probes /health, /ready. Node is PID 1 and handles SIGTERM itself
# (the services install a SIGTERM handler that drains; exec-form CMD, no shell in between).

ARG NODE_IMAGE=node:24-alpine

FROM ${NODE_IMAGE} AS base
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false

# ---- prune: keep only the target workspace, the workspaces it depends on and a pruned lockfile
FROM base AS prune
ARG SERVICE
RUN test -n "${SERVICE}" || (echo "--build-arg SERVICE=<order-service|inventory-service|payment-service|sandbox-gateway|console|operator> is required" && exit 1)
COPY . .
RUN --mount=type=cache,target=/root/.npm \
    npx --yes turbo@2 prune "@orderflow/${SERVICE}" --docker

# ---- deps: production dependencies only (what the runtime image ships)
FROM base AS deps
COPY --from=prune /app/out/json/ ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts

# ---- build: full install (typescript, turbo) and compile
FROM base AS build
ARG SERVICE
COPY --from=prune /app/out/json/ ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --ignore-scripts
COPY --from=prune /app/out/full/ ./
COPY tsconfig.base.json ./
RUN npx turbo run build --filter="@orderflow/${SERVICE}"
# Stage compiled output only: each workspace's package.json, dist/ (without maps, .d.ts and
# build info) and, for the kit, its generated JSON schemas.
RUN set -eu; mkdir -p /deploy; \
    for pkg in $(find services operator -maxdepth 2 -name package.json 2>/dev/null); do \
      dir=$(dirname "$pkg"); mkdir -p "/deploy/$dir"; cp "$pkg" "/deploy/$dir/"; \
      if [ -d "$dir/dist" ]; then cp -R "$dir/dist" "/deploy/$dir/dist"; fi; \
      if [ -d "$dir/schemas" ]; then cp -R "$dir/schemas" "/deploy/$dir/schemas"; fi; \
    done; \
    find /deploy -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.tsbuildinfo' \) -delete; \
    cp package.json /deploy/package.json

# ---- runtime
FROM ${NODE_IMAGE} AS runtime
ARG SERVICE
ARG SERVICE_DIR=services/${SERVICE}
ENV NODE_ENV=production
WORKDIR /app
# package.json files and node_modules (root and any nested per-workspace ones), no sources
COPY --from=deps /app/ ./
COPY --from=build /deploy/ ./
WORKDIR /app/${SERVICE_DIR}
USER node
EXPOSE 3001 3002 3003 3004 3005 3010
CMD ["node", "dist/main.js"]
