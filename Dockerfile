# ff-detector daemon image. Not built in this repository's CI (no Docker engine there); it runs the
# same install steps CI proves: npm ci (which builds through `prepare`), then production
# dependencies only.

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json tsconfig.console.json ./
COPY src ./src
COPY strategies ./strategies
COPY bench ./bench
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY config ./config
USER node
# The admin API (GET /healthz, /readyz, /metrics, /status; POST /runs) and the console at /.
EXPOSE 8080
ENV ADMIN_HOST=0.0.0.0
ENTRYPOINT ["/app/bin/ff-detector"]
CMD ["run"]
