"""The README's set-up commands are exactly what CI runs, and every documented command exists."""

from __future__ import annotations

import re
import subprocess
import sys

from support import REPO
from support.commands import run_cli


def test_ci_runs_the_readme_set_up_commands():
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.+?)\n```", section, flags=re.S)
    assert len(commands) == 2, "exactly two set-up commands"
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    for command in commands:
        assert any(line.strip() == command.strip() or line.strip().startswith(command.strip() + " ")
                   for line in ci), command


def test_documented_commands_answer_help():
    readme = (REPO / "README.md").read_text()
    documented = set(re.findall(r"`compactrig ([a-z]+(?: [a-z]+)?)", readme))
    assert {"demo", "models list", "models fetch", "predict", "synth max", "synth adversarial", "gaudy",
            "stimuli import", "stimuli predict", "stimuli show", "rig init", "rig check", "rig calibrate", "present",
            "sources list", "session run", "session resume", "session export", "session report", "loop run",
            "loop report"} <= documented
    script = "\n".join([
        "import contextlib, io, sys",
        "from compactrig.cli import main",
        "for command in sys.argv[1:]:",
        "    out = io.StringIO()",
        "    with contextlib.redirect_stdout(out):",
        "        try:",
        "            main(command.split() + ['--help'])",
        "        except SystemExit as done:",
        "            code = done.code",
        "    print(command, '|', code, '|', 'usage: compactrig' in out.getvalue())"])
    # one interpreter for every command's --help (a process each cost 40 s); the console script itself
    # is checked once
    answers = subprocess.run([sys.executable, "-c", script, *sorted(documented)], capture_output=True, text=True,
                             cwd=REPO, timeout=300)
    assert answers.returncode == 0, answers.stderr
    assert sorted(answers.stdout.splitlines()) == [f"{c} | 0 | True" for c in sorted(documented)]
    top = run_cli("--help")
    assert top.returncode == 0 and "usage: compactrig" in top.stdout
