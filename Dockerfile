# payrecon's processes (worker, consumer, migrations) and the test rig's payment simulator (tools/simulator,
# with its own migration), run from TypeScript source with tsx. Built by docker-compose.yml; every service
# picks its command there; the default runs tools/service.ts (simulator, worker and consumer).
FROM node:20-slim

WORKDIR /app

# Dependencies first, so a source change does not reinstall them. devDependencies are needed: tsx runs the code.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund && npm cache clean --force

COPY . .

# The simulator listens on all interfaces inside the container (its default is 127.0.0.1).
ENV SIMULATOR_HOST=0.0.0.0 \
    NPM_CONFIG_UPDATE_NOTIFIER=false

USER node
EXPOSE 8090
CMD ["npx", "tsx", "tools/service.ts"]
