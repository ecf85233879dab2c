#!/usr/bin/env bash
# Smoke test of generation in the real editor window under Xvfb: sketch a stroke, paint an
# inpaint mask, generate a batch with the tiny test checkpoint (Ctrl+Enter), apply the selected
# candidate (Enter), save (Ctrl+S), and check that the saved .ora holds a generated layer with
# its record and the tray. Leaves screenshots of each stage in OUT_DIR.
#
# Needs what tests/ui-smoke.sh needs. Usage: tests/ui-smoke-generate.sh [OUT_DIR]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$(mktemp -d /tmp/pentimento-gen-smoke.XXXXXX)}
mkdir -p "$OUT"
BIN=${PENTIMENTO:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/pentimento}
[ -x "$BIN" ] || { echo "no binary at $BIN (cargo build -p pentimento)"; exit 2; }

DISPLAY_NUM=${SMOKE_DISPLAY:-:88}
WORK="$OUT/work"
SAVE="$OUT/generated.ora"
rm -rf "$WORK" "$SAVE"
mkdir -p "$WORK/models/checkpoints"
cp "$ROOT/tests/fixtures/models/tiny_sd1.safetensors" "$WORK/models/checkpoints/"
export XDG_RUNTIME_DIR="$OUT/xdg"; mkdir -p -m700 "$XDG_RUNTIME_DIR"
export XDG_DATA_HOME="$OUT/data" XDG_CONFIG_HOME="$OUT/config"
export PENTIMENTO_NO_NATIVE_DIALOG=1 PENTIMENTO_CACHE_DIR="$OUT/cache"
# The settings an artist would have chosen in the panel: a small working size and few steps so
# the tiny model answers in seconds on a CPU, a 512² canvas, a prompt.
mkdir -p "$XDG_DATA_HOME/pentimento"
cat >"$XDG_DATA_HOME/pentimento/app.ron" <<'RON'
{
    "pentimento-editor-settings": "(new_size:(512,512),generation:(prompt:\"a red fox in the snow\",negative_prompt:\"blurry\",sampler:\"Euler\",schedule:\"Karras\",steps:6,seed_mode:Fixed,seed:1234,width:128,height:128,batch_size:4,inpaint_area:only_masked,padding_px:16,mask_blur_px:4))",
}
RON

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

(cd "$WORK" && exec "$BIN" "$SAVE") >"$OUT/app.log" 2>&1 &
APID=$!
WIN=
for _ in $(seq 1 100); do
    WIN=$(xdotool search --name "Pentimento" 2>/dev/null | head -1 || true)
    [ -n "$WIN" ] && break
    sleep 0.1
done
[ -n "$WIN" ] || { echo "FAIL: no window"; cat "$OUT/app.log"; exit 1; }
sleep 1.5
xdotool windowsize --sync "$WIN" 1280 800 || true
xdotool windowfocus --sync "$WIN"
sleep 1

stroke() { # x y: a zig-zag of 20 segments to the right
    xdotool mousemove --window "$WIN" "$1" "$2"
    xdotool mousedown 1
    for i in $(seq 0 20); do
        xdotool mousemove --window "$WIN" $(($1 + i * 8)) $(($2 + (i % 2) * 24))
        sleep 0.02
    done
    xdotool mouseup 1
    sleep 0.3
}
xdotool key b; sleep 0.2; stroke 330 300     # sketch
xdotool key k; sleep 0.2; stroke 360 420     # inpaint mask
xdotool mousemove --window "$WIN" 700 650
sleep 0.5
import -window root "$OUT/1-sketch-and-mask.png"

xdotool key ctrl+Return
sleep 2
import -window root "$OUT/2-generating.png"

# Enter applies the selected candidate once the batch is in the tray; save and look.
FOUND=
for _ in $(seq 1 90); do
    sleep 2
    xdotool key Return
    sleep 0.3
    xdotool key ctrl+s
    sleep 1.5
    [ -s "$SAVE" ] || continue
    if python3 - "$SAVE" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
stack = z.read("stack.xml").decode()
sys.exit(0 if "pentimento:record" in stack else 1)
PY
    then FOUND=1; break; fi
done
import -window root "$OUT/3-applied.png"
[ -n "$FOUND" ] || { echo "FAIL: no generated layer was saved"; cat "$OUT/app.log"; exit 1; }

python3 - "$SAVE" <<'PY'
import json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
names = z.namelist()
stack = z.read("stack.xml").decode()
records = json.loads(z.read("pentimento/records.json"))["records"]
assert len(records) == 1, records
rec = next(iter(records.values()))
assert rec["mode"] == "inpaint", rec
assert rec["prompt"] == "a red fox in the snow", rec
assert rec["seed"] in (1234, 1235, 1236, 1237), rec
assert rec["model"]["name"] == "tiny_sd1" and len(rec["model"]["hash"]) == 10, rec
print("layers:", stack.count("<layer "), "record seed", rec["seed"], "context box", rec["context_box"])
if "pentimento/tray.json" in names:
    tray = json.loads(z.read("pentimento/tray.json"))
    assert len(tray["entries"]) == 4, tray
    print("tray entries:", len(tray["entries"]))
PY
echo "OK: screenshots in $OUT"
