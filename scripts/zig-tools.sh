# Sourced by the build scripts: makes zig and cargo-zigbuild available,
# installing them from PyPI where they are missing (the `ziglang` package
# ships zig itself, `cargo-zigbuild` the cargo subcommand), and sets ZIG to
# the command that runs zig. The versions are pinned so that every machine
# links against the same glibc stubs and musl.
ZIGLANG_VERSION=${ZIGLANG_VERSION:-0.17.1}
CARGO_ZIGBUILD_VERSION=${CARGO_ZIGBUILD_VERSION:-0.24.1}
# shellcheck source=as-root.sh
. "$(dirname "${BASH_SOURCE[0]}")/as-root.sh"

# pip_install PKG...: with pip, installed from Debian if missing; Debian's
# own Python refuses user installs unless told (PEP 668).
pip_install() {
  local py
  py=$(command -v python3 || true)
  if [ -z "$py" ] || ! "$py" -m pip --version >/dev/null 2>&1; then
    apt_install python3 python3-pip
    py=$(command -v python3)
  fi
  "$py" -m pip install --quiet "$@" 2>/dev/null || "$py" -m pip install --quiet --break-system-packages "$@"
  # pip's user installs go to ~/.local/bin, not always on PATH.
  case ":$PATH:" in *":$HOME/.local/bin:"*) ;; *) export PATH=$HOME/.local/bin:$PATH ;; esac
  hash -r
}

zig_tools() {
  if command -v zig >/dev/null; then
    ZIG=(zig)
  else
    python3 -m ziglang version >/dev/null 2>&1 || pip_install "ziglang==$ZIGLANG_VERSION"
    ZIG=(python3 -m ziglang)
  fi
  command -v cargo-zigbuild >/dev/null || pip_install "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION"
  echo "zig $("${ZIG[@]}" version), $(cargo-zigbuild --version)"
}
