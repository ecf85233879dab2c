#!/usr/bin/env bash
# Smoke test of the real editor window under Xvfb: start `pentimento NEW.ora`, paint a stroke
# with xdotool, save with Ctrl+S, check the saved .ora, leave a screenshot.
#
# Needs: Xvfb, xdotool, ImageMagick (import/convert), unzip, python3; the Mesa runtime
# (apt-get install -y --no-install-recommends xvfb xdotool imagemagick x11-apps libvulkan1
#  mesa-vulkan-drivers libegl1 libegl-mesa0 libgl1-mesa-dri).
# Usage: tests/ui-smoke.sh [OUT_DIR]   (binary: $PENTIMENTO or target/debug/pentimento)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$(mktemp -d /tmp/pentimento-smoke.XXXXXX)}
mkdir -p "$OUT"
BIN=${PENTIMENTO:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/pentimento}
[ -x "$BIN" ] || { echo "no binary at $BIN (cargo build -p pentimento)"; exit 2; }

DISPLAY_NUM=${SMOKE_DISPLAY:-:87}
SAVE="$OUT/smoke.ora"
rm -f "$SAVE"
export XDG_RUNTIME_DIR="$OUT/xdg"; mkdir -p -m700 "$XDG_RUNTIME_DIR"
# Keep the user's real settings out of it.
export XDG_DATA_HOME="$OUT/data" XDG_CONFIG_HOME="$OUT/config"
export PENTIMENTO_NO_NATIVE_DIALOG=1

Xvfb "$DISPLAY_NUM" -screen 0 1280x800x24 -nolisten tcp >"$OUT/xvfb.log" 2>&1 &
XPID=$!
APID=
cleanup() {
    [ -n "$APID" ] && kill "$APID" 2>/dev/null || true
    kill "$XPID" 2>/dev/null || true
}
trap cleanup EXIT
export DISPLAY=$DISPLAY_NUM
sleep 1

START=$(date +%s.%N)
"$BIN" "$SAVE" >"$OUT/app.log" 2>&1 &
APID=$!
WIN=
for _ in $(seq 1 100); do
    WIN=$(xdotool search --name "Pentimento" 2>/dev/null | head -1 || true)
    [ -n "$WIN" ] && break
    sleep 0.1
done
[ -n "$WIN" ] || { echo "FAIL: no window"; cat "$OUT/app.log"; exit 1; }
OPENED=$(date +%s.%N)
echo "window mapped after $(python3 -c "print(round($OPENED - $START, 2))") s"
sleep 1.5
xdotool windowsize --sync "$WIN" 1280 800 || true
xdotool windowfocus --sync "$WIN"
sleep 0.5

# Brush (B), then a zig-zag stroke over the middle of the canvas.
xdotool key b
sleep 0.2
xdotool mousemove --window "$WIN" 420 300
xdotool mousedown 1
for i in $(seq 0 30); do
    x=$((420 + i * 12)); y=$((300 + (i % 2) * 40 + i * 4))
    xdotool mousemove --window "$WIN" "$x" "$y"
    sleep 0.02
done
xdotool mouseup 1
sleep 0.5
xdotool mousemove --window "$WIN" 640 420
sleep 0.3
import -window root "$OUT/before-save.png"

xdotool key ctrl+s
for _ in $(seq 1 100); do
    [ -s "$SAVE" ] && break
    sleep 0.1
done
sleep 1
import -window root "$OUT/screenshot.png"
[ -s "$SAVE" ] || { echo "FAIL: $SAVE not written"; cat "$OUT/app.log"; exit 1; }

# The saved file: a valid OpenRaster zip whose composite has the dark stroke on white.
python3 - "$SAVE" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
names = z.namelist()
assert names[0] == "mimetype", names
assert z.read("mimetype") == b"image/openraster"
assert z.getinfo("mimetype").compress_type == zipfile.ZIP_STORED
assert "stack.xml" in names and "mergedimage.png" in names, names
print("ora entries:", ", ".join(names))
PY
unzip -p "$SAVE" mergedimage.png >"$OUT/merged.png"
SIZE=$(identify -format "%wx%h" "$OUT/merged.png")
DARK=$(convert "$OUT/merged.png" -alpha off -colorspace gray -threshold 50% -negate -format "%[fx:mean*w*h]" info:)
echo "merged image $SIZE, dark pixels: $DARK"
[ "$SIZE" = "1024x1024" ] || { echo "FAIL: size $SIZE"; exit 1; }
python3 -c "import sys; sys.exit(0 if float('$DARK') > 500 else 1)" || { echo "FAIL: no stroke in the saved image"; exit 1; }
TITLE=$(xdotool getwindowname "$WIN")
echo "title after save: $TITLE"
case "$TITLE" in *"•"*) echo "FAIL: still marked unsaved"; exit 1;; esac

# A lasso selection (drawn along its shape), then a transform turned by dragging outside its box:
# the layer shows the turned pixels before Enter. Screenshots to look at.
xdotool key m; sleep 0.2; xdotool key m; sleep 0.2   # rectangle select, then lasso
xdotool mousemove --window "$WIN" 380 250
xdotool mousedown 1
for p in "560 230" "700 320" "640 480" "460 470" "400 380" "380 250"; do
    set -- $p
    xdotool mousemove --window "$WIN" "$1" "$2"
    sleep 0.05
done
xdotool mouseup 1
sleep 0.6
import -window root "$OUT/selection.png"
xdotool key ctrl+d; sleep 0.2
xdotool key t; sleep 0.3
xdotool mousemove --window "$WIN" 150 400
xdotool mousedown 1
for i in $(seq 1 10); do
    xdotool mousemove --window "$WIN" 150 $((400 + i * 20))
    sleep 0.05
done
xdotool mouseup 1
sleep 0.8
import -window root "$OUT/transform.png"
xdotool key Return; sleep 0.5
TITLE=$(xdotool getwindowname "$WIN")
case "$TITLE" in *"•"*) ;; *) echo "FAIL: not marked unsaved after the transform: $TITLE"; exit 1;; esac
# Undo the transform, the deselect and the lasso: back at the saved state, so no marker.
for _ in 1 2 3; do xdotool key ctrl+z; sleep 0.3; done
sleep 0.5
TITLE=$(xdotool getwindowname "$WIN")
echo "title after undoing back to the save: $TITLE"
case "$TITLE" in *"•"*) echo "FAIL: still marked unsaved at the saved state"; exit 1;; esac
import -window root "$OUT/undone.png"
echo "OK: screenshots $OUT/screenshot.png selection.png transform.png undone.png"
