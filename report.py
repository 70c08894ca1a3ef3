"""Stage 8: the report, regenerated from the stages' own CSV and JSON outputs.

Inputs: PREP_DIR, SEG_DIR, REPORTS_DIR/{segments,patches,bigearth}, PREDICT_DIR,
    BIGEARTH_DIR (whatever stages have run; missing ones are reported as not run)
Outputs (REPORTS_DIR): report.md, report.html, figures/ (copies of the stages'
    figures and accuracy_by_patch_size.png), report_config.json
Config keys: PREP_DIR, SEG_DIR, REPORTS_DIR, PREDICT_DIR, BIGEARTH_DIR.
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
                             predictions=Path(config.PREDICT_DIR), bigearth=Path(config.BIGEARTH_DIR))
    path = report.write(sources)
    cli.save_config(Path(config.REPORTS_DIR), "report")
    print(f"report: {path}")


def main(argv: list[str] | None = None) -> int:
    return cli.run_stage(run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
