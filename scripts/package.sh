#!/usr/bin/env bash
# Builds the Debian package (target/debian/usage-archiver_*.deb) and checks its contents.
#
#   scripts/package.sh
#
# Installs cargo-deb if missing (a few minutes to build), builds the release binary,
# writes the generated assets to target/package/ (the units with /usr/bin paths, the
# man page, the completions), runs cargo deb, then lists the package with
# `dpkg-deb -c` and fails if a file is missing or a mode is wrong. Not part of every
# CI run (it takes minutes): run it before a release.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-deb >/dev/null 2>&1 || cargo install cargo-deb --locked
cargo build --release --locked
out=target/package
rm -rf "$out" && mkdir -p "$out"
for unit in systemd/*.service systemd/*.timer; do
    sed 's|/usr/local/bin/usage-archiver|/usr/bin/usage-archiver|' "$unit" > "$out/$(basename "$unit")"
done
bin=target/release/usage-archiver
"$bin" manpage | gzip -9n > "$out/usage-archiver.1.gz"
"$bin" completions bash > "$out/usage-archiver.bash"
"$bin" completions zsh > "$out/_usage-archiver"
"$bin" completions fish > "$out/usage-archiver.fish"
cargo deb --no-build --locked
deb=$(ls -t target/debian/usage-archiver_*.deb | head -1)

echo "== dpkg-deb -c $deb"
listing=$(dpkg-deb -c "$deb")
echo "$listing"
expect() { # MODE PATH
    if ! grep -qE "^$1 .* \./$2\$" <<< "$listing"; then
        echo "package check failed: ./$2 missing or not $1" >&2
        exit 1
    fi
}
expect -rwxr-xr-x usr/bin/usage-archiver
expect -rw-r--r-- usr/lib/systemd/system/usage-archiver.service
expect -rw-r--r-- usr/lib/systemd/system/usage-archiver-backup.timer
expect -rw-r--r-- usr/lib/systemd/system/usage-archiver-once.timer
expect -rw-r--r-- usr/lib/sysusers.d/usage-archiver.conf
expect -rw-r----- etc/usage-archiver/daemon.toml
expect -rw-r--r-- usr/share/man/man1/usage-archiver.1.gz
expect -rw-r--r-- usr/share/bash-completion/completions/usage-archiver
dpkg-deb -I "$deb" conffiles | grep -qx /etc/usage-archiver/daemon.toml \
    || { echo "package check failed: daemon.toml is not a conffile" >&2; exit 1; }
if grep -q /usr/local/bin <(dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/lib/systemd/system/usage-archiver.service); then
    echo "package check failed: the unit runs /usr/local/bin" >&2
    exit 1
fi
echo "package ok: $deb"
