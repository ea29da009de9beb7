# kube-secret-proxy: the sidecar image.
#
#   docker build -t kube-secret-proxy:0.1.0 \
#     --build-arg REVISION="$(git rev-parse HEAD)" --build-arg CREATED="$(date -u +%FT%TZ)" .
#
# test/image/image.test.ts runs this file's build-stage COPY and RUN lines, as
# written, in a scratch copy of the repository and starts the result: change
# the steps here and the test runs the new ones.

ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: install everything, compile, then drop the dev dependencies
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY proxy ./proxy
RUN npm run build
RUN npm prune --omit=dev --no-audit --no-fund

# ---- runtime: the compiled sidecar and its production dependencies only
FROM ${NODE_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="kube-secret-proxy" \
      org.opencontainers.image.description="Kubernetes sidecar that watches the pod's permitted Secrets and serves them to the app over localhost HTTP, WebSocket and SSE" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${NODE_IMAGE}"
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and not writable by the user the sidecar runs as: nothing is
# written at run time, so readOnlyRootFilesystem: true works as it is (a unix
# socket for --listen needs a writable volume, e.g. an emptyDir).
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Numeric, so that the kubelet can enforce runAsNonRoot (uid 1000 is the base image's "node").
USER 1000:1000
# The secrets API stays on loopback (8642); metrics and probes on 9642.
EXPOSE 9642
ENTRYPOINT ["node", "dist/proxy/main.js"]
