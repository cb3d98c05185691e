#!/usr/bin/env bash
# `sam build` end to end, as a deploy runs it: SAM's rust-cargolambda workflow calls
# `cargo lambda build --release --bin <function>` for every function of template.yaml.
# Release builds of every function take minutes, so the test command does not run this.
#
#   bash scripts/sam-build.sh [arm64|x86_64]
#
# The architecture defaults to this machine's, so that no cross-compiling toolchain is
# needed; arm64 on an x86_64 machine also needs `rustup target add aarch64-unknown-linux-gnu`
# (cargo-lambda links with zig). Installs the pinned SAM CLI and cargo-lambda into
# .venv-sam; builds into .aws-sam/; prints the time taken and each function's size.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-$(uname -m)}" in
  arm64 | aarch64) arch=arm64 ;;
  x86_64 | amd64) arch=x86_64 ;;
  *) echo "usage: bash scripts/sam-build.sh [arm64|x86_64]" >&2; exit 2 ;;
esac

if [ ! -x .venv-sam/bin/python ]; then
  python3 -m venv .venv-sam
fi
.venv-sam/bin/pip install --quiet --disable-pip-version-check -r scripts/sam-requirements.txt
export PATH="$PWD/.venv-sam/bin:$PATH"
export SAM_CLI_TELEMETRY=0

echo "== sam build (Architecture=$arch)"
rm -rf .aws-sam
start=$(date +%s)
sam build --parameter-overrides "Architecture=$arch" --no-cached
end=$(date +%s)

echo "== artifacts"
count=0
for dir in .aws-sam/build/*Function; do
  bootstrap="$dir/bootstrap"
  if [ ! -x "$bootstrap" ]; then
    echo "missing: $bootstrap" >&2
    exit 1
  fi
  [ "$(head -c 4 "$bootstrap" | tail -c 3)" = ELF ] || { echo "not an ELF binary: $bootstrap" >&2; exit 1; }
  printf '%-40s %10d bytes\n' "$(basename "$dir")" "$(stat -c %s "$bootstrap")"
  count=$((count + 1))
done
expected=$(grep -c 'BuildMethod: rust-cargolambda' template.yaml)
if [ "$count" -ne "$expected" ]; then
  echo "built $count functions, template.yaml has $expected" >&2
  exit 1
fi
echo "sam build: $count functions ($arch) in $((end - start)) s"
