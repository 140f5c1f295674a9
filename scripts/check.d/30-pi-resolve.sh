#!/usr/bin/env bash
# The robot's install must resolve on Raspberry Pi OS Bookworm (CPython 3.11, aarch64, glibc
# 2.36) from binary wheels only: resolve coachcam + its `pi` extra for that platform with a pip
# dry run (wheel metadata only, nothing big is downloaded: ~6-10 s) and fail if any dependency
# has no aarch64 wheel. Run by `./dev test`; needs PyPI.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-.venv}

fail() { echo "30-pi-resolve: FAIL: $*" >&2; exit 1; }

# pip does not widen --platform manylinux_2_36 to older manylinux tags by itself, so list every
# tag pip on the Pi itself accepts: manylinux_2_17 .. manylinux_2_36, manylinux2014, linux.
platforms=()
for minor in $(seq 17 36); do platforms+=(--platform "manylinux_2_${minor}_aarch64"); done
platforms+=(--platform manylinux2014_aarch64 --platform linux_aarch64)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
if ! "$VENV/bin/python" -m pip install --dry-run --ignore-installed \
    --only-binary=:all: "${platforms[@]}" \
    --python-version 3.11 --implementation cp --abi cp311 \
    --target "$tmp/target" --report "$tmp/report.json" \
    ".[pi]" >"$tmp/log" 2>&1; then
    # pip's own explanation, minus index noise, one line per missing dependency
    grep -v -e '^WARNING: Location' "$tmp/log" | awk '
        /^ERROR:/ { print; next }
        /depends on/ { dep = $NF; if (!(dep in seen)) { seen[dep] = 1; print } ; next }
        /no matching distributions available/ { show = 1; print; next }
        show && /^    / { print; next }
        { show = 0 }' >&2 || true
    grep -q picamera2 "$tmp/log" \
        && echo "hint: picamera2 comes from apt on the robot (python3-picamera2, venv made with" \
            "--system-site-packages); its PiDNG and python-prctl have no aarch64 wheels, so keep it out of the pi extra" >&2
    fail "coachcam[pi] does not resolve from aarch64 wheels for CPython 3.11"
fi

# Belt and braces: every resolved distribution (except coachcam itself, built from this tree)
# is a wheel for aarch64 or for any platform.
"$VENV/bin/python" - "$tmp/report.json" <<'EOF' || fail "a dependency is not an aarch64 wheel"
import json
import sys

report = json.load(open(sys.argv[1]))
bad = []
for item in report["install"]:
    name = item["metadata"]["name"]
    file = item["download_info"]["url"].rsplit("/", 1)[-1]
    if name == "coachcam":
        continue
    tags = file[:-4].split("-")[-1] if file.endswith(".whl") else ""
    if not tags or not all(t == "any" or t.endswith("aarch64") for t in tags.split(".")):
        bad.append(f"{name} ({file})")
if bad:
    print("not aarch64 wheels: " + ", ".join(bad), file=sys.stderr)
    sys.exit(1)
pi = sorted(
    f"{i['metadata']['name']}=={i['metadata']['version']}"
    for i in report["install"]
    if i["metadata"]["name"] in ("lgpio", "mediapipe", "av", "opencv-contrib-python", "numpy")
)
print(f"30-pi-resolve: {len(report['install'])} distributions, e.g. {', '.join(pi)}")
EOF
echo "30-pi-resolve: OK in $(($(date +%s) - start)) s (cp311 manylinux aarch64, wheels only)"
