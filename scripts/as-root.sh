# Sourced by the scripts that install packages: as_root runs a command as
# root, through sudo where the script runs as another user (a CI runner).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}
# apt_install PKG...: installs Debian packages, updating the lists first.
apt_install() {
  as_root apt-get update -q && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q "$@"
}
