"""The whole study in one command: every stage in order, then the report.

Runs scene_prep.py, segment.py, test_segment.py, patches.py, test_patches.py,
read_bigearth.py, train_bigearth.py and report.py, each in its own process
(so each stage's wall time and peak memory are its own), passing the same
arguments to each. A stage whose inputs and settings have not changed since
its last run reuses its outputs; --force redoes every stage. Stops at the
first stage that fails, with that stage's exit status.

Outputs: those of every stage; the report in REPORTS_DIR/report.md (and .html).
Run:
    python study.py [--preset paper] [--set KEY=VALUE ...] [--force]
"""

import logging
import subprocess
import sys
import time
from pathlib import Path

from landcover import cli

ROOT = Path(__file__).resolve().parent
STAGES = ["scene_prep", "segment", "test_segment", "patches", "test_patches", "read_bigearth", "train_bigearth",
          "report"]
log = logging.getLogger("study")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cli.parse_args(argv, __doc__)  # --help, and refuse malformed arguments before any work
    cli.setup_logging()
    start = time.perf_counter()
    for stage in STAGES:
        log.info("=== %s", stage)
        code = subprocess.run([sys.executable, str(ROOT / f"{stage}.py"), *argv], cwd=ROOT).returncode
        if code != 0:
            log.error("%s failed (exit status %d); fix the cause and run study.py again: finished stages are reused",
                      stage, code)
            return code
    log.info("the whole study took %.0f s", time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
