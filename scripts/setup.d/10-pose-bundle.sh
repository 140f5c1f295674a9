#!/usr/bin/env bash
# Build the pose landmarker bundle offline from the pinned mediapipe wheel (tracker/model_bundle.py).
# Idempotent: with a verified bundle in the cache this only hashes it (~0.1 s).
set -euo pipefail
VENV=${VENV:-.venv}
"$VENV/bin/python" -m tracker.model_bundle build
