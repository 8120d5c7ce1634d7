# payrecon's image, in stages (docker-compose.yml picks the target of each service):
#   build    every dependency (npm ci, the lock is complete for every platform: scripts/complete-lock.sh),
#            the source, and `npm run build`: dist/ (tsc of workflows/ activities/ workers/ src/, the
#            prebuilt workflow bundle, the migrations)
#   rig      the build stage as it is, for the test rig's payment simulator and its migration (tools/,
#            TypeScript through tsx): what the local stack needs in place of a real payment provider,
#            never part of a deploy
#   runtime  (the default, last) dist/, bin/ and the production dependencies only (npm ci --omit=dev):
#            `node dist/workers/worker.js`, `node dist/workers/consumer.js`, `node dist/src/db/migrate.js`,
#            and the operator CLI as `payrecon` (bin/payrecon.js runs dist/)
ARG NODE_IMAGE=node:20-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false
# Dependencies first, so a source change does not reinstall them.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund && npm cache clean --force
COPY . .
RUN npm run build

FROM build AS rig
# The simulator listens on all interfaces inside the container (its default is 127.0.0.1).
ENV SIMULATOR_HOST=0.0.0.0
USER node
EXPOSE 8090
CMD ["node", "--import", "tsx", "tools/simulator/server.ts"]

FROM ${NODE_IMAGE} AS production-dependencies
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false
COPY --from=production-dependencies /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
# The operator CLI on PATH: `docker compose run --rm worker payrecon order list`.
RUN ln -s /app/bin/payrecon.js /usr/local/bin/payrecon
COPY --from=build /app/dist ./dist
USER node
# Metrics listen on 127.0.0.1:9464 (worker) and :9465 (consumer) by default: to scrape them from another
# container, set WORKER_METRICS_ADDRESS / CONSUMER_METRICS_ADDRESS to 0.0.0.0:<port>.
CMD ["node", "dist/workers/worker.js"]
