"""Re-run `coachcam bench control` and put its table into README.md (between the markers).

Usage: .venv/bin/python bench/readme_control_table.py
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
START = "<!-- bench-control: written by bench/readme_control_table.py -->"
END = "<!-- /bench-control -->"


def main() -> int:
    out = subprocess.run(
        [sys.executable, "-m", "coachcam.cli", "bench", "control"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    print(out)
    table = "\n".join(line for line in out.splitlines() if line.startswith("|"))
    text = README.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    README.write_text(pattern.sub(f"{START}\n{table}\n{END}", text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
