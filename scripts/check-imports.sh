#!/usr/bin/env bash
# The one door: the front ends (the command line in src/cli/ and
# src/main.rs, the page in src/web/) reach the layers below only through
# `app` (plus the plain id and content types of `feed` and `content`).
# Fails, naming each place, when a front end names `node`, `store`,
# `proto`, `home` or `fixtures` of this crate: in a path
# (`potluck::store::X`, `crate::node::Y`) or inside a grouped import
# (`use potluck::{app, store::X}`, over several lines too). Run by
# .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

layers='node|store|proto|home|fixtures'
found=$(
    find src/cli src/web src/main.rs -name '*.rs' -print0 |
        xargs -0 perl -0777 -ne '
            my $file = $ARGV;
            # Comments may name the layers; code may not.
            s{//[^\n]*}{}g;
            while (/\b(?:crate|potluck)::(?:'"$layers"')\b/g) {
                my $line = 1 + (substr($_, 0, pos) =~ tr/\n//);
                print "$file:$line: a path into a layer below app\n";
            }
            while (/\buse\s+(?:crate|potluck)::\{([^;]*)\}\s*;/g) {
                my ($group, $end) = ($1, pos);
                if ($group =~ /(?:^|[\s,{])(?:'"$layers"')\b/) {
                    my $line = 1 + (substr($_, 0, $end) =~ tr/\n//);
                    print "$file:$line: a grouped import of a layer below app\n";
                }
            }
        '
)
if [ -n "$found" ]; then
    echo "front ends must go through app/ (docs/architecture.md, 'The one door'):" >&2
    echo "$found" >&2
    exit 1
fi
echo "check-imports: src/cli, src/web and src/main.rs import only app (and feed/content types)"
