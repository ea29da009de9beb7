#!/usr/bin/env bash
# Installs helm (the real one, from its Go module) into .tools/bin for the
# chart tests in test/charts/. Skips the build when that version is there.
set -euo pipefail
cd "$(dirname "$0")/../.."
HELM_VERSION=v4.3.2
bin="$PWD/.tools/bin"
if [ -x "$bin/helm" ] && "$bin/helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"; then
  echo "helm $HELM_VERSION already in $bin"
  exit 0
fi
mkdir -p "$bin"
start=$(date +%s)
# As upstream's Makefile builds it: without the version in ldflags, helm reports only "v4.3".
GOBIN="$bin" go install -trimpath -ldflags "-w -s -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION -X helm.sh/helm/v4/internal/version.gitTreeState=clean" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
echo "helm $("$bin/helm" version --template '{{.Version}}') installed in $bin in $(( $(date +%s) - start )) s"
