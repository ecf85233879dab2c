#!/usr/bin/env bash
# Dependencies point down (product.md §2): nothing below `app` pulls in egui/eframe/wgpu, and
# doc, ora and ui pull in no candle. Checked on the resolved dependency graph, not on manifests.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
check() { # crate, forbidden-regex, why
  local crate=$1 pattern=$2 why=$3 hits
  local tree
  if ! tree=$(cargo tree -q -p "$crate" -e normal,build --prefix none --no-dedupe); then
    echo "layering: cargo tree failed for $crate"; fail=1; return
  fi
  hits=$(echo "$tree" | awk '{print $1}' | grep -E "^($pattern)$" | sort -u || true)
  if [ -n "$hits" ]; then
    echo "layering: $crate depends on $(echo $hits) ($why)"; fail=1
  fi
}
for c in raster doc ora sd sampling pipeline jobs ui; do
  if [ "$c" != ui ]; then check "pentimento-$c" 'egui|eframe|egui-wgpu|egui-winit|wgpu|winit' "no UI below app"; fi
done
for c in raster doc ora ui; do
  check "pentimento-$c" 'candle-core|candle-nn|candle-transformers' "no candle in $c"
done
[ $fail -eq 0 ] && echo "layering: ok"
exit $fail
