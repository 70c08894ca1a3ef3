"""Stage 8: the report, regenerated from the stages' own CSV and JSON outputs.

Inputs: PREP_DIR, SEG_DIR, REPORTS_DIR/{segments,patches,bigearth}, PREDICT_DIR,
    BIGEARTH_DIR (whatever stages have run; missing ones are reported as not run)
Outputs (REPORTS_DIR): report.md, report.html, figures/ (copies of the stages'
    figures, accuracy_by_patch_size.png, accuracy_by_segment_size.png),
    comparisons.csv (every difference the report states: paired on the same
    test points per run, 95 % interval from a block bootstrap and the spread
    over runs, p-value, Holm-adjusted p, McNemar's exact p per run, verdict),
    report_config.json
Config keys: PREP_DIR, SEG_DIR, REPORTS_DIR, PREDICT_DIR, BIGEARTH_DIR, BLOCK_SIZE,
    BOOTSTRAP_SAMPLES, SEED.
Run:
    python report.py
"""

import logging
import sys
from pathlib import Path

import config
from landcover import cli, report

log = logging.getLogger("report")


def run() -> None:
    sources = report.Sources(prep=Path(config.PREP_DIR), seg=Path(config.SEG_DIR), reports=Path(config.REPORTS_DIR),
                             predictions=Path(config.PREDICT_DIR), bigearth=Path(config.BIGEARTH_DIR),
                             block_size=config.BLOCK_SIZE, bootstrap=config.BOOTSTRAP_SAMPLES, seed=config.SEED)
    path = report.write(sources)
    cli.save_config(Path(config.REPORTS_DIR), "report")
    print(f"report: {path}")


def main(argv: list[str] | None = None) -> int:
    return cli.run_stage(run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
