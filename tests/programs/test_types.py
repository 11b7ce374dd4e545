"""Static type check of programs/ with pyright: the mocks accept wrong value types and misspelled keys
inside dict literals silently, the type checker does not.

``squall.programs`` lives in programs/ (setuptools package-dir), which pyright
cannot follow through the editable install, so the check runs over a tree of
symlinks laid out as the installed package.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYRIGHT = Path(sys.executable).with_name("pyright")
KNOWN_BAD = '''import pulumi_aws as aws
from pulumi_kubernetes.core.v1 import PodSpecArgsDict

aws.ec2.Vpc("x", cidr_blok="10.0.0.0/16")  # a misspelled argument
aws.autoscaling.Group("y", max_size="fifty", min_size=0)  # a wrong value type
spec: PodSpecArgsDict = {"restart_polcy": "Never", "containers": []}  # a misspelled key in a dict literal
'''
BAD_LINES = {4, 5, 6}


def test_programs_type_check_clean_and_the_check_catches_mistakes(tmp_path):
    package = tmp_path / "squall"
    package.mkdir()
    for entry in (ROOT / "squall").iterdir():
        (package / entry.name).symlink_to(entry)
    (package / "programs").symlink_to(ROOT / "programs")
    (tmp_path / "known_bad.py").write_text(KNOWN_BAD)
    (tmp_path / "pyrightconfig.json").write_text(json.dumps({
        "include": ["squall/programs", "known_bad.py"], "extraPaths": ["."], "pythonVersion": "3.11",
        "typeCheckingMode": "standard"}))
    proc = subprocess.run([str(PYRIGHT), "--outputjson", "--pythonpath", sys.executable], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)
    report = json.loads(proc.stdout)
    errors = [d for d in report["generalDiagnostics"] if d["severity"] == "error"]
    in_programs = [f"{d['file']}:{d['range']['start']['line'] + 1}: {d['message']}" for d in errors
                   if "known_bad" not in d["file"]]
    assert in_programs == []
    caught = {d["range"]["start"]["line"] + 1 for d in errors if "known_bad" in d["file"]}
    assert caught == BAD_LINES
