#!/usr/bin/env bash
# The one door: the front ends (the command line in src/cli/ and
# src/main.rs, the page in src/web/) reach the layers below only through
# `app` (plus the plain id and content types of `feed` and `content`).
# Fails, naming each line, when a front end imports `node`, `store`,
# `proto`, `home` or `fixtures` directly. Run by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

pattern='\b(crate|potluck)::(node|store|proto|home|fixtures)\b'
# Comments may name the layers; code may not.
found=$(grep -rnE "$pattern" src/cli src/web src/main.rs | grep -vE '^[^:]+:[0-9]+:\s*//' || true)
if [ -n "$found" ]; then
    echo "front ends must go through app/ (docs/architecture.md, 'The one door'):" >&2
    echo "$found" >&2
    exit 1
fi
echo "check-imports: src/cli, src/web and src/main.rs import only app (and feed/content types)"
