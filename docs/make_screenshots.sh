#!/usr/bin/env bash
# Regenerates docs/screenshots/ as a user would see the results: synthesized images, a presented
# frame (the presenter's own back-buffer capture), a session report, and every view of the window. Run from the repository
# root with the project installed: `xvfb-run -a bash docs/make_screenshots.sh`.
set -euo pipefail
out="$(cd "$(dirname "$0")" && pwd)/screenshots"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

for neuron in demo:0 demo:1 demo:2; do
    compactrig synth max --neuron "$neuron" --n 2 --out "$work/designed" > /dev/null 2>&1
done
python - "$work/designed" "$out/synthesized_max_images.png" <<'PY'
import sys
from PIL import Image
from compactrig.stimuli.stimulus_set import StimulusSet
designed = StimulusSet.load(sys.argv[1])
sheet = Image.new("RGB", (124 * len(designed), 124), (40, 40, 40))
for index, pixels in enumerate(designed.pixels):
    sheet.paste(Image.fromarray(pixels), (6 + 124 * index, 6))
sheet.save(sys.argv[2])
PY

cat > "$work/rig.toml" <<'TOML'
[screen]
resolution = [800, 600]
width_cm = 40.0
[image]
size_deg = 6.0
TOML
compactrig present --stimuli "$work/designed" --rig "$work/rig.toml" --capture "$work/frames" > /dev/null 2>&1
cp "$work/frames/00004.png" "$out/presented_frame.png"

compactrig session run --stimuli "$work/designed" --rig "$work/rig.toml" --source simulated \
    --map unit0=demo:0 --map unit2=demo:2 --repeats 4 --seed 1 --out "$work/session" > /dev/null 2>&1
compactrig session report "$work/session" --png "$out/session_report.png" --force > /dev/null
COMPACTRIG_CONFIG_DIR="$work/config" python "$(dirname "$0")/window_screenshots.py" "$out"
echo "wrote $(ls "$out")"
