#!/usr/bin/env bash
# Build the rewardstack images (gateway, sandbox, models, lb) with docker or podman.
#
#   docker/build.sh                 PyPI + PyTorch's CPU index (what users run)
#   docker/build.sh --local-wheels  this machine's pip mirror: /opt/wheels, /opt/pypi, /opt/pypi-more
#                                   (mounted read-only into the build) and the engine flags that
#                                   ../shared/tools/container-engine-setup --build-flags prints
#   TAG=dev ROLES="gateway lb" docker/build.sh   a subset, another tag
#
# Images are named rewardstack-ROLE:TAG, as compose.yaml expects. Layers are shared: every role
# builds on the same `deps` stage, and the source is the last layer.
set -euo pipefail
cd "$(dirname "$0")/.."
ENGINE=${ENGINE:-$(command -v podman || command -v docker)}
TAG=${TAG:-latest}
ROLES=${ROLES:-"gateway sandbox models lb"}
flags=()
if [ "${1:-}" = "--local-wheels" ]; then
  setup=${CONTAINER_ENGINE_SETUP:-../shared/tools/container-engine-setup}
  # shellcheck disable=SC2207
  flags+=($("$setup" --build-flags))
  for dir in /opt/wheels /opt/pypi /opt/pypi-more; do
    [ -d "$dir" ] && flags+=(-v "$dir:$dir:ro")
  done
  torch_wheel=$(ls /opt/wheels/torch-*+cpu-cp311-*.whl 2>/dev/null | head -1 || true)
  flags+=(--build-arg "PIP_FIND_LINKS=/opt/wheels"
          --build-arg "PIP_EXTRA_INDEX_URL=file:///opt/pypi/simple file:///opt/pypi-more/simple")
  if [ -n "$torch_wheel" ]; then
    flags+=(--build-arg "TORCH_PIP_ARGS=" --build-arg "TORCH_REQUIREMENT=$torch_wheel")
  fi
fi
for role in $ROLES; do
  echo "== building rewardstack-$role:$TAG" >&2
  "$ENGINE" build "${flags[@]}" -f docker/Dockerfile --target "$role" -t "rewardstack-$role:$TAG" .
done
