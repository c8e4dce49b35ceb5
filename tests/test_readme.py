"""The README's set-up commands are exactly what CI runs, and every documented command exists."""

from __future__ import annotations

import re

from conftest import REPO, run_cli


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
            "stimuli import", "stimuli show", "rig init", "rig check", "present", "sources list", "session run",
            "session resume", "session export", "session report"} <= documented
    for command in documented:
        result = run_cli(*command.split(), "--help")
        assert result.returncode == 0 and "usage: compactrig" in result.stdout, command
