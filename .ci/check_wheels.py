"""Check that a requirements file installs from binary wheels on every supported platform.

pip evaluates environment markers against the machine it runs on, even with
``--platform``, so this script evaluates them for each target first
(``packaging.markers``), then asks pip to resolve the result from wheels only
(``pip install --dry-run --only-binary=:all: --platform ... --python-version ...``;
pip reads the wheels' metadata, it downloads no wheel). Needs the package
registry; not part of the test suite.

Run:  .venv/bin/python .ci/check_wheels.py [requirements.txt]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.requirements import Requirement

TARGETS = {  # name: (pip platform tag, marker environment)
    "Linux x86-64": ("manylinux2014_x86_64", {"sys_platform": "linux", "platform_system": "Linux",
                                              "platform_machine": "x86_64", "os_name": "posix"}),
    "macOS arm64": ("macosx_12_0_arm64", {"sys_platform": "darwin", "platform_system": "Darwin",
                                          "platform_machine": "arm64", "os_name": "posix"}),
    "Windows x86-64": ("win_amd64", {"sys_platform": "win32", "platform_system": "Windows",
                                     "platform_machine": "AMD64", "os_name": "nt"}),
}
PYTHONS = ("3.11", "3.12")


def requirement_lines(path: Path) -> list[str]:
    """The requirement lines of a file, following ``-r`` includes."""
    out = []
    for line in path.read_text().splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-r "):
            out += requirement_lines(path.parent / line[3:].strip())
        else:
            out.append(line)
    return out


def resolved(lines: list[str], env: dict[str, str]) -> list[str]:
    """The requirements whose markers hold in ``env``, without their markers."""
    keep = []
    for line in lines:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(env):
            req.marker = None
            keep.append(str(req))
    return keep


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "requirements.txt")
    lines = requirement_lines(path)
    failures = 0
    for name, (tag, base) in TARGETS.items():
        for py in PYTHONS:
            env = dict(base, python_version=py, python_full_version=f"{py}.0", implementation_name="cpython",
                       platform_python_implementation="CPython")
            reqs = resolved(lines, env)
            with tempfile.TemporaryDirectory() as tmp:
                req_file = Path(tmp) / "requirements.txt"
                req_file.write_text("\n".join(reqs) + "\n")
                cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
                       "--only-binary=:all:", "--platform", tag, "--python-version", py, "--target", tmp,
                       "-r", str(req_file)]
                result = subprocess.run(cmd, capture_output=True, text=True)
            tf = next((r for r in reqs if r.startswith("tensorflow")), "no TensorFlow")
            status = "ok" if result.returncode == 0 else "FAILS: " + result.stderr.strip().splitlines()[-1]
            print(f"{name:15s} Python {py}: {status} ({tf})")
            failures += result.returncode != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
