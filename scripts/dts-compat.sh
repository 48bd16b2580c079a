#!/usr/bin/env bash
# Makes the shipped declarations compile at every TypeScript target.
#
# tsc writes `#private;` into the declaration of each class with #-private
# fields, and a program compiled at TypeScript's default target (ES5) rejects
# it (TS18028, "Private identifiers are only available when targeting
# ECMAScript 2015 and higher"), though it never touches the field. A TS
# `private` member in its place keeps what it is there for: classes with
# private members are compared by declaration, not by shape, so no other
# object type-checks as a Ring.
set -euo pipefail
cd "$(dirname "$0")/.."
sed -i 's/^\(\s*\)#private;$/\1private "#private";/' lib/*.d.ts
if grep -n '^\s*#' lib/*.d.ts index.d.ts index.d.mts net.d.ts net.d.mts; then
  echo "dts-compat: a private identifier is left in the declarations above" >&2
  exit 1
fi
