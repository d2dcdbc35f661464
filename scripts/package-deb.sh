#!/usr/bin/env bash
# Builds the Debian package: the release binary, then the manual page and
# shell completions made by that binary (into target/deb-assets/, where
# `[package.metadata.deb]` in Cargo.toml expects them), then the .deb with
# `cargo deb --no-build`. Prints the .deb's path on the last line.
# Needs cargo-deb (`cargo install --locked cargo-deb`). Extra arguments go
# to `cargo deb` (e.g. `--output DIR`).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-deb >/dev/null 2>&1; then
    echo "cargo-deb not found: cargo install --locked cargo-deb" >&2
    exit 1
fi

cargo build --release --locked
bin="${CARGO_TARGET_DIR:-target}/release/potluck"
assets=target/deb-assets
rm -rf "$assets"
mkdir -p "$assets"

# -n: no name or time in the header, so the same page gives the same file.
"$bin" manpage | gzip -9n >"$assets/potluck.1.gz"
"$bin" completions bash >"$assets/potluck.bash"
"$bin" completions zsh >"$assets/_potluck"
"$bin" completions fish >"$assets/potluck.fish"
for f in "$assets"/*; do
    # An empty file would be a silent hole in the package.
    if [ ! -s "$f" ]; then
        echo "package-deb: $f is empty" >&2
        exit 1
    fi
done
# A man page that gzip wrapped around nothing is 20-odd bytes: check it.
if ! gzip -dc "$assets/potluck.1.gz" | grep -q '^\.TH'; then
    echo "package-deb: the manual page has no .TH header" >&2
    exit 1
fi

cargo deb --no-build --locked "$@"
