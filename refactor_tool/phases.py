"""The phase registry: the single source of truth for phases, steps, files and gates.

The CLI's help, ``status``, the verification gates and the README's phase table all read
``PHASES``. Each phase lives in its own ``codemods/phaseN.py`` as a ``PHASE`` object.
"""

from __future__ import annotations

import importlib

from codemods.base import PhaseSpec, StepSpec

PHASE_MODULES = (
    "codemods.phase1",
    "codemods.phase2",
    "codemods.phase3",
    "codemods.phase4",
    "codemods.phase5",
    "codemods.phase6",
)


def _load() -> dict[int, PhaseSpec]:
    phases: dict[int, PhaseSpec] = {}
    for name in PHASE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # phase not written yet
                continue
            raise
        phase: PhaseSpec = module.PHASE
        phases[phase.number] = phase
    return phases


PHASES: dict[int, PhaseSpec] = _load()


def get_phase(number: int) -> PhaseSpec:
    return PHASES[number]


def find_step(step_id: str) -> tuple[PhaseSpec, StepSpec]:
    """``"4.2"`` -> (phase 4, step 4.2); KeyError if there is no such step."""
    phase_part, _, _ = step_id.partition(".")
    phase = PHASES[int(phase_part)]
    return phase, phase.step(step_id)


def phase_table() -> list[tuple[str, str, str]]:
    """(number, title, steps) rows for help texts and the README."""
    return [
        (str(p.number), p.title, ", ".join(f"{s.id} {s.title}" for s in p.steps))
        for p in PHASES.values()
    ]


def markdown_table() -> str:
    """The README's phase table, rendered from the registry (a test keeps them in step)."""
    lines = ["| phase | step | what the tool does |", "| --- | --- | --- |"]
    for phase in PHASES.values():
        for step in phase.steps:
            if step.codemods:
                how = "codemod " + ", ".join(f"`{c.__name__}`" for c in step.codemods)
            elif step.generates:
                how = "generated: " + (step.note or "new file")
            else:
                how = step.note or "-"
            how = how.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {phase.number} {phase.title} | {step.id} {step.title} | {how} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m refactor_tool.phases > table.md
    print(markdown_table(), end="")
