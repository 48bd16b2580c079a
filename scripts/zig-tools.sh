# Sourced by the build scripts: makes zig and cargo-zigbuild available,
# installing them from PyPI where they are missing (the `ziglang` package
# ships zig itself, `cargo-zigbuild` the cargo subcommand), and sets ZIG to
# the command that runs zig. The versions are pinned so that every machine
# links against the same glibc stubs and musl.
ZIGLANG_VERSION=${ZIGLANG_VERSION:-0.17.1}
CARGO_ZIGBUILD_VERSION=${CARGO_ZIGBUILD_VERSION:-0.24.1}

zig_tools() {
  local py
  py=$(command -v python3 || command -v python || true)
  if command -v zig >/dev/null; then
    ZIG=(zig)
  elif [ -n "$py" ] && "$py" -m ziglang version >/dev/null 2>&1; then
    ZIG=("$py" -m ziglang)
  else
    [ -n "$py" ] || { apt-get update && apt-get install -y python3 python3-pip && py=python3; }
    "$py" -m pip install --quiet "ziglang==$ZIGLANG_VERSION" ||
      "$py" -m pip install --quiet --break-system-packages "ziglang==$ZIGLANG_VERSION"
    ZIG=("$py" -m ziglang)
  fi
  if ! command -v cargo-zigbuild >/dev/null; then
    "$py" -m pip install --quiet "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION" ||
      "$py" -m pip install --quiet --break-system-packages "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION"
    hash -r
  fi
  echo "zig $("${ZIG[@]}" version), $(cargo-zigbuild --version)"
}
