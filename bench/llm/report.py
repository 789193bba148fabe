"""Render `autofix bench --llm --json` output: the figures, the per-case table, and why each case failed."""

from __future__ import annotations

import json
import sys
from typing import Any

from pipeline.benchmark.runner import CaseResult, markdown


def why(case: dict[str, Any]) -> str:
    """One line on what happened to a case that was not delivered."""
    steps = [s for s in case.get("llm_steps", []) if s.get("event") == "llm.step"]
    done = [s for s in case.get("llm_steps", []) if s.get("event") == "llm.repair_done"]
    parts = []
    if steps:
        parts.append("LLM: " + ", ".join(f"{s.get('attempt')}.{s.get('sample')} {s.get('outcome')}" for s in steps))
        last = next((s for s in reversed(steps) if s.get("reason")), None)
        if last:
            parts.append(f"last reason: {str(last['reason'])[:220]}")
    if done and done[-1].get("stopped"):
        parts.append(f"stopped: {str(done[-1]['stopped'])[:160]}")
    parts.append(f"outcome: {case['status']}: {case['reason'][:260]}")
    return "; ".join(parts)


def render(data: dict[str, Any]) -> None:
    fields = CaseResult.__dataclass_fields__
    results = []
    for case in data["cases"]:
        values: dict[str, Any] = {k: (tuple(v) if k == "llm_steps" else v) for k, v in case.items() if k in fields}
        results.append(CaseResult(**values))
    print(markdown(results))
    print("\n### Cases not delivered\n")
    for case in data["cases"]:
        if case["queued"] and case["correct"]:
            continue
        print(f"- **{case['id']}** ({case['exception']}, rank {case['rank'] or '-'}): {why(case)}")
    print("\n### Totals (JSON)\n\n```json\n" + json.dumps(data["totals"], indent=1) + "\n```")


def main(path: str) -> None:
    data = json.load(open(path))
    # `--sdk both`: each capture has its own cases and totals; the top level repeats the first.
    configurations = data.get("configurations") or {"": data}
    for name, run in configurations.items():
        if name:
            print(f"\n## Captured with sentry-sdk: {name}\n")
        render(run)


if __name__ == "__main__":
    main(sys.argv[1])
