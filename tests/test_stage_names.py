"""One name per stage: rule `<name>` = stage module `rocksr/stages/<name>.py` = command `rocksr
<name with '-' for '_'>`, read from the workflow's sources (no Snakemake run).

Training rules are `train_<kind>` (one per registry kind), all running the `train` stage; the
leak study's rules are `leak_<rule>` (`use rule <rule> as leak_<rule>`, and `leak_train_<kind>`
of the training loop) and run the stage of `<rule>`; the target rules (`all`, `dataset`) run
nothing; a few commands are for people only (CLI_ONLY).
"""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STAGES = REPO / "rocksr" / "stages"
SMK_FILES = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]

TARGET_RULES = {"all", "dataset"}
# stage modules with a command and no rule: run by hand (docs/quickstart.md, docs/synthetic.md)
CLI_ONLY = {"verify", "example-data", "simulate-mct", "compare-runs"}
# what the shells' Python expressions name, as plain strings. Never a loop variable (`_kind`,
# `_prefix`): Snakemake evaluates a shell expression again when the job runs, when a loop's
# variables hold their last values, so a rule of a loop must take them through params
SHELL_NAMES = {
    "PREDICT_SHARD_OPTION": " --shard {wildcards.shard}/2",
    "SAMPLER_STUDY_OUTPUT_OPTIONS": " --shard {wildcards.shard}/2 --out-part {output.part:q}",
}
_RULE = re.compile(r"^(?P<indent>[ \t]*)rule(?:[ \t]+(?P<name>\w+))?[ \t]*:[ \t]*$", re.M)
_USE_RULE = re.compile(r"^[ \t]*use rule (?P<base>\w+) as (?P<name>\w+) with:[ \t]*$", re.M)
# the training loop's rule: one per kind and per run (TRAINING_RUNS: "" and "leak_")
TRAINING_LOOP_RULE = "{_prefix}train_{_kind}"


def _section(block: str, directive: str) -> str | None:
    """The text of a rule's `directive:` (the lines indented below it), or None."""
    m = re.search(rf"^(?P<indent>[ \t]+){directive}:[ \t]*(?P<inline>.*)$", block, re.M)
    if m is None:
        return None
    lines = [m.group("inline")] if m.group("inline").strip() else []
    depth = len(m.group("indent"))
    for line in block[m.end() + 1 :].splitlines():
        if line.strip() and len(line) - len(line.lstrip()) <= depth:
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines)).strip()


def workflow_rules() -> dict[str, str]:
    """rule name -> its source block, from the Snakefile and workflow/rules/*.smk; the rule of
    the training loop (`name: f"{_prefix}train_{_kind}"`) is listed as written."""
    out: dict[str, str] = {}
    for path in SMK_FILES:
        text = path.read_text()
        starts = sorted([*_RULE.finditer(text), *_USE_RULE.finditer(text)], key=lambda m: m.start())
        for i, m in enumerate(starts):
            end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
            block = text[m.end() : end]
            # a rule of a loop is named by its `name:` (f"{_prefix}train_{_kind}": as written)
            name = m.group("name") or re.sub(r'^f?"|"$', "", _section(block, "name") or "")
            assert name, f"{path.name}: a rule without a name"
            assert name not in out, f"rule {name} defined twice"
            out[name] = block
    return out


def stage_commands() -> dict[str, str]:
    """stage module name -> its `COMMAND`, read from the source (no import, no torch)."""
    out = {}
    for path in sorted(STAGES.glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if (
                isinstance(node, ast.Assign)
                and [getattr(t, "id", None) for t in node.targets] == ["COMMAND"]
                and isinstance(node.value, ast.Constant)
            ):
                out[path.stem] = node.value.value
    return out


def derived_rules() -> dict[str, str]:
    """`use rule <base> as <name>`: name -> base."""
    return {
        m.group("name"): m.group("base")
        for path in SMK_FILES
        for m in _USE_RULE.finditer(path.read_text())
    }


DERIVED = derived_rules()


def stage_of(rule: str) -> str:
    """The stage module a rule runs: that of the rule it uses (`use rule`), `train` for the
    training loop's rules, else its own name."""
    rule = DERIVED.get(rule, rule)
    return "train" if rule in (TRAINING_LOOP_RULE, "train") or rule.startswith("train_") else rule


def shell_command(block: str) -> str:
    """The `rocksr` command a rule's shell runs (its shell expression evaluated with plain
    strings for the names it uses)."""
    source = _section(block, "shell")
    assert source, "no shell"
    loop_names = set(re.findall(r"\b_[a-z]\w*\b", source))
    assert not loop_names, f"the shell names loop variables {loop_names}: pass them as params"
    shell = eval(f"({source})", {"__builtins__": {}}, dict(SHELL_NAMES))
    # the training rules' launcher param ends in `rocksr` (workflow/rules/resources.smk)
    shell = shell.replace("{params.launcher}", "OMP_NUM_THREADS=1 rocksr")
    found = re.findall(r"(?:^|[\s;&|])rocksr ([a-z][a-z0-9-]*)", shell)
    assert len(found) == 1, shell
    return found[0]


RULES = workflow_rules()
COMMANDS = stage_commands()
JOB_RULES = sorted(set(RULES) - TARGET_RULES)


def test_the_sources_are_read() -> None:
    assert {"synthesize", "evaluate", "uncertainty_figure", "gather_predictions"} <= set(RULES)
    assert TRAINING_LOOP_RULE in RULES
    assert DERIVED == {
        "leak_split": "split",
        "leak_predict": "predict",
        "leak_gather_predictions": "gather_predictions",
        "stack_enhance": "enhance",
    }
    assert COMMANDS["evaluate"] == "evaluate" and COMMANDS["train"] == "train"
    # the target rules run nothing
    assert all(_section(RULES[r], "shell") is None for r in TARGET_RULES)


@pytest.mark.parametrize("rule", JOB_RULES)
def test_each_rule_runs_the_command_and_hashes_the_module_of_its_name(rule: str) -> None:
    stage = stage_of(rule)
    assert stage in COMMANDS, f"rule {rule}: no rocksr/stages/{stage}.py with a COMMAND"
    command = COMMANDS[stage]
    assert command == stage.replace("_", "-"), f"stage {stage} has command {command!r}"
    # a `use rule` runs its base's shell, with its own params if it gives them
    base = RULES[DERIVED.get(rule, rule)]
    assert shell_command(base) == command, f"rule {rule}"
    # its code version is the hash of that module (rocksr.codehash)
    params = _section(RULES[rule], "params") or _section(base, "params") or ""
    code = re.search(r'\b(?:stage|kind)_hash\("(\w+)"', params)
    assert code and code.group(1) == stage, f"rule {rule}: code={code and code.group(0)}"


@pytest.mark.parametrize("rule", JOB_RULES)
def test_each_rules_logs_and_benchmarks_carry_its_name(rule: str) -> None:
    for directive, root in (("log", "logs"), ("benchmark", "benchmarks")):
        text = _section(RULES[rule], directive)
        if text is None:
            continue
        # a sharded or leak-study job's log ends its rule's name in a constant (`{_suffix}`,
        # `{SAMPLER_STUDY_PART}`) with the wildcards
        name = re.escape(rule) + r"(\{[A-Za-z_]+\})?"
        assert re.fullmatch(rf'f"\{{R\}}/{root}/{name}[/.][^"]*",?', text), (
            rule,
            text,
        )


def test_each_command_has_a_rule_or_is_for_people_only() -> None:
    ruled = {stage_of(r) for r in JOB_RULES}
    for stage, command in COMMANDS.items():
        assert command == stage.replace("_", "-"), f"stage {stage} has command {command!r}"
        assert (stage in ruled) != (command in CLI_ONLY), (stage, command)
    assert CLI_ONLY <= set(COMMANDS.values())


def test_the_cli_registers_every_stage_module_under_its_command() -> None:
    from rocksr.cli import COMMANDS as CLI
    from rocksr.cli import stage

    assert CLI == {c: f"rocksr.stages.{s}" for s, c in COMMANDS.items()}
    assert {c: stage(c).__name__ for c in CLI} == CLI


def test_every_resource_default_names_a_rule() -> None:
    from rocksr.config.resources import RENAMED_RULES, RESOURCE_DEFAULTS, renamed_rule_problems
    from rocksr.models.registry import kind_names

    trained = {f"train_{k}" for k in kind_names()}
    assert set(RESOURCE_DEFAULTS) - {"default", "train"} <= set(JOB_RULES) | trained
    assert not set(RENAMED_RULES) & set(RULES)
    assert set(RENAMED_RULES.values()) <= set(RULES)
    assert renamed_rule_problems({"metrics": {"threads": 2}, "evaluate": {}}) == [
        "resources.metrics: the rule `metrics` is now `evaluate`; rename the key to "
        "resources.evaluate"
    ]


def test_each_figure_module_is_named_after_its_rule() -> None:
    """rocksr/figures/<name>.py draws the figures of rule `<name>`, and a stage draws with the
    module of its own name (the `figures` rule also draws the training curves of `loss_curve`)."""
    rules = set(workflow_rules())
    modules = {p.stem for p in (REPO / "rocksr" / "figures").glob("*.py")} - {"__init__"}
    assert modules <= rules, f"figure modules named after no rule: {sorted(modules - rules)}"
    for stage in sorted(STAGES.glob("*.py")):
        used = set(re.findall(r"rocksr\.figures\.(\w+)", stage.read_text()))
        allowed = {stage.stem} | ({"loss_curve"} if stage.stem == "figures" else set())
        assert used <= allowed, f"{stage.name} draws with {sorted(used - allowed)}"
