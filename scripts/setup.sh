# Shared set-up for scripts/run and scripts/test. Sourced, not run. Every step is
# idempotent and skipped when already done, so a fresh Debian 12 machine with rustup and
# Node 20 needs nothing else.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/node_modules/.bin:$HOME/.cargo/bin:$PATH"
# One build directory outside the clone, shared by every checkout on this machine, so a
# fresh clone (as in CI) reuses earlier builds. Override with CARGO_TARGET_DIR.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/muster-target}"
export MUSTER_SITE_ROOT="${MUSTER_SITE_ROOT:-$CARGO_TARGET_DIR/site}"
# Incremental artifacts only pay off while editing; in the shared build folder they pile up.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

apt_install() {
  # apt_install PACKAGE... : installs the Debian packages that are missing.
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

setup_rust() {
  # The toolchain and wasm target come from rust-toolchain.toml; make sure both are there.
  rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install
  rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
}

setup_wasm_bindgen() {
  # The wasm-bindgen CLI must match the wasm-bindgen crate in Cargo.lock exactly.
  local want have
  want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
  have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
  if [ "$have" != "$want" ]; then
    log "installing wasm-bindgen-cli $want (a few minutes, once)"
    cargo install wasm-bindgen-cli --version "$want"
  fi
}

setup_npm() {
  # binaryen (wasm-opt) and playwright-core, pinned in package-lock.json.
  if [ ! -x node_modules/.bin/wasm-opt ] || [ ! -d node_modules/playwright-core ] \
     || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    log "installing npm packages"
    npm ci --no-audit --no-fund --loglevel=error
  fi
}

setup_build() {
  setup_rust
  setup_wasm_nightly
  setup_wasm_bindgen
  setup_npm
}

# One pinned nightly toolchain, for two jobs stable cannot do: the fuzz targets (cargo-fuzz,
# libFuzzer's sanitizer flags) and the release WASM bundles (the standard library rebuilt
# with every panic an immediate abort, see scripts/build-site). Pinned so every machine
# builds and fuzzes the same way.
NIGHTLY="nightly-2026-05-20"
CARGO_FUZZ_VERSION="0.13.2"

setup_nightly() {
  rustup toolchain list | grep -q "^$NIGHTLY" || {
    log "installing the $NIGHTLY toolchain (once)"
    rustup toolchain install "$NIGHTLY" --profile minimal
  }
}

setup_wasm_nightly() {
  # -Zbuild-std needs the standard library's source.
  setup_nightly
  rustup component list --toolchain "$NIGHTLY" --installed | grep -q "^rust-src" \
    || rustup component add rust-src --toolchain "$NIGHTLY"
}

setup_fuzz() {
  setup_nightly
  if [ "$(cargo fuzz --version 2>/dev/null | awk '{print $2}')" != "$CARGO_FUZZ_VERSION" ]; then
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION (a few minutes, once)"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
  fi
}

setup_browser() {
  apt_install chromium
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_test_postgres() {
  # Starts a throwaway PostgreSQL cluster on 127.0.0.1 (installing Debian's postgresql if
  # missing) and exports MUSTER_TEST_PG (an admin URL), MUSTER_TEST_PG_RESTART (a command
  # that restarts it abruptly) and PG_STOP (a command that stops it and deletes it).
  local bin
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    apt_install postgresql
    bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  fi
  local as=()
  if [ "$(id -u)" -eq 0 ]; then
    # PostgreSQL refuses to run as root; Debian's package made the postgres user.
    as=(runuser -u postgres --)
  fi
  local dir port
  dir="$(mktemp -d /var/tmp/muster-pg.XXXXXX)"
  port="$(free_port)"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  "${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-instructions >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log"; return 1; }
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -s \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=256MB" start
  export MUSTER_TEST_PG="postgres://postgres@127.0.0.1:$port/postgres"
  export MUSTER_TEST_PG_RESTART="${as[*]} $bin/pg_ctl -D $dir/data -l $dir/server.log -m immediate -w -s restart"
  export PG_STOP="${as[*]} $bin/pg_ctl -D $dir/data -m fast -w -s stop; rm -rf $dir"
  log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
}
