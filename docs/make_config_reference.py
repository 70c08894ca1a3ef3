"""Write docs/configuration.md, the configuration reference, from config.py's own comments.

Inputs: config.py. Outputs: docs/configuration.md (to a temporary name, then renamed).
Run it after changing a key or its comment in config.py (tests/test_docs.py fails until it is run):
    python docs/make_config_reference.py
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from landcover import config_reference  # noqa: E402
from landcover.files import atomic_write  # noqa: E402


def main() -> int:
    target = ROOT / "docs" / "configuration.md"
    with atomic_write(target) as tmp:
        tmp.write_text(config_reference.markdown(ROOT / "config.py"))
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
