#!/usr/bin/env bash
# Installs a potluck .deb on this machine, checks that everything it
# promises is in place, and removes it again, leaving the machine as it
# was: purged, and without the user `potluck` and /var/lib/potluck when
# this made them.
# Needs root (CI runs as root). Usage: scripts/check-deb.sh FILE.deb
set -euo pipefail

fail() {
    echo "check-deb: $*" >&2
    exit 1
}

[ "$#" -eq 1 ] || fail "usage: $0 FILE.deb"
deb=$(realpath "$1")
[ -f "$deb" ] || fail "no such file: $1"
[ "$(id -u)" -eq 0 ] || fail "installing a package needs root"
if dpkg-query -W -f='${Status}' potluck 2>/dev/null | grep -q 'ok installed'; then
    fail "potluck is installed on this machine already; this check would remove it"
fi
had_user=no
getent passwd potluck >/dev/null && had_user=yes
had_home=no
[ -e /var/lib/potluck ] && had_home=yes

# dpkg first; a machine that lacks a dependency gets it from apt.
export DEBIAN_FRONTEND=noninteractive
if ! dpkg -i "$deb"; then
    echo "check-deb: dpkg -i failed, fetching dependencies with apt" >&2
    apt-get update -qq
    apt-get install -y -qq -f
fi
dpkg-query -W -f='${Status}' potluck | grep -q 'ok installed' \
    || fail "the package is not installed after dpkg -i"

tmp=$(mktemp -d)
cleanup() {
    rm -rf "$tmp"
    # Purge, so that dpkg forgets it too (postrm deletes no hub data).
    dpkg --purge potluck >/dev/null || echo "check-deb: dpkg --purge potluck failed" >&2
    if [ "$had_home" = no ]; then rm -rf /var/lib/potluck; fi
    if [ "$had_user" = no ] && getent passwd potluck >/dev/null; then
        deluser --quiet potluck >/dev/null 2>&1 || userdel potluck || true
        getent group potluck >/dev/null && groupdel potluck 2>/dev/null || true
    fi
}
trap cleanup EXIT

# The program, the version the package says.
want=$(dpkg-deb -f "$deb" Version)
want=${want%-*}
got=$(/usr/bin/potluck --version)
[ "$got" = "potluck $want" ] || fail "/usr/bin/potluck --version says '$got', the package is $want"

# Every file the package promises, each non-empty.
files=(
    /usr/share/man/man1/potluck.1.gz
    /usr/share/bash-completion/completions/potluck
    /usr/share/zsh/vendor-completions/_potluck
    /usr/share/fish/vendor_completions.d/potluck.fish
    /usr/lib/systemd/user/potluck.service
    /usr/lib/systemd/system/potluck-hub.service
    /usr/share/doc/potluck/hub.md
    /usr/share/doc/potluck/README.md
)
for f in "${files[@]}"; do
    if [ ! -s "$f" ]; then
        if grep -rqs path-exclude /etc/dpkg/dpkg.cfg.d/; then
            echo "check-deb: (dpkg on this machine excludes some paths: /etc/dpkg/dpkg.cfg.d/)" >&2
        fi
        fail "$f is missing or empty after installing"
    fi
done
gzip -dc /usr/share/man/man1/potluck.1.gz | grep -q '^\.TH potluck' \
    || fail "the manual page is not potluck's"
if command -v man >/dev/null 2>&1; then
    [ "$(man -w potluck)" = /usr/share/man/man1/potluck.1.gz ] \
        || fail "man -w potluck finds '$(man -w potluck 2>&1)'"
fi
grep -q 'potluck' /usr/share/bash-completion/completions/potluck \
    || fail "the bash completion does not name potluck"
grep -qx 'ExecStart=/usr/bin/potluck serve' /usr/lib/systemd/user/potluck.service \
    || fail "the user unit does not run /usr/bin/potluck serve"
grep -qx 'ExecStart=/usr/bin/potluck serve --hub' /usr/lib/systemd/system/potluck-hub.service \
    || fail "the hub unit does not run /usr/bin/potluck serve --hub"
if command -v systemd-analyze >/dev/null 2>&1; then
    systemd-analyze verify /usr/lib/systemd/system/potluck-hub.service \
        || fail "systemd-analyze verify finds fault with the hub unit"
fi

# The hub's user and home, and a hub that nobody started.
getent passwd potluck >/dev/null || fail "postinst made no user potluck"
[ "$(stat -c '%U %a' /var/lib/potluck)" = "potluck 700" ] \
    || fail "/var/lib/potluck is '$(stat -c '%U %a' /var/lib/potluck)', not 'potluck 700'"
if [ -e /etc/systemd/system/multi-user.target.wants/potluck-hub.service ]; then
    fail "installing enabled the hub unit; the operator must create its identity first"
fi

# The installed program works: an identity in a scratch home.
/usr/bin/potluck --home "$tmp/home" init --name "check-deb" >/dev/null \
    || fail "potluck init failed"
/usr/bin/potluck --home "$tmp/home" whoami | grep -q 'check-deb' \
    || fail "potluck whoami does not show the name"

trap - EXIT
cleanup
[ ! -e /usr/bin/potluck ] || fail "dpkg --purge left /usr/bin/potluck"
if dpkg-query -W potluck >/dev/null 2>&1; then
    fail "dpkg still knows potluck after --purge"
fi
echo "check-deb: $(basename "$deb") installs, works and removes cleanly"
