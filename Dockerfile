# syntax=docker/dockerfile:1
# Switchboard image: TypeScript compiled in a build stage; the runtime stage holds production dependencies
# and dist/ only, and runs as the unprivileged `node` user. See docker-compose.yml for MongoDB and Redis.

# ---- production dependencies (installed apart, so no dev tooling reaches the runtime stage) ----
FROM node:20-bookworm-slim AS deps
WORKDIR /app
# mongodb-memory-server would download a mongod (~100 MB) at install: the image uses MONGO_URL instead.
ENV MONGOMS_DISABLE_POSTINSTALL=1
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- build: every dependency, then tsc to dist/ ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
ENV MONGOMS_DISABLE_POSTINSTALL=1
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The log transport is plain JavaScript loaded by a worker thread: the build must copy it next to the
# compiled logging module, or the server cannot start; the dashboard page and script likewise.
RUN npm run build && test -f dist/logging/file-transport.mjs && test -f dist/dashboard/index.html

# ---- runtime ----
FROM node:20-bookworm-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    DEBUG=false \
    HOST=0.0.0.0 \
    PORT=8000 \
    LOG_CONSOLE=json
COPY --chown=node:node package.json package-lock.json ./
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
# Relative paths in the configuration (LOG_DIR=logs, UPLOAD_PATH=uploads, DATA_DIR=data, CONFIG_DIR=config)
# resolve from /app. Mount a folder with config.yaml on /app/config to configure by file.
RUN mkdir -p logs uploads data config && chown node:node logs uploads data config
USER node
VOLUME ["/app/logs", "/app/uploads", "/app/data"]
EXPOSE 8000
# No curl in the slim image: Node's own fetch. 503 (database down) counts as unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8000) + '/api/v2/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/server.js"]
