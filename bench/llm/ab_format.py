"""A/B of the edit format on cases a bench run kept: the first answer only (attempts=1), as SEARCH/REPLACE
blocks in plain text against the same edits as JSON under the server's schema-constrained decoding.

    python bench/llm/ab_format.py WORKDIR CASE...     (the LLM server must be up: AUTOFIX_LLM_BASE_URL)

Prints, per format, how many first answers applied, how many were verified, tokens and seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def run(case: Path, fmt: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFIX_") or k.startswith("AUTOFIX_LLM_")}
    env.update(AUTOFIX_HOME=str(case / f"home-ab-{fmt}"), AUTOFIX_LOG_FORMAT="json", AUTOFIX_LOG_LEVEL="info",
               AUTOFIX_LLM=json.dumps({"attempts": 1, "edit_format": fmt, "schema_style": "llama.cpp"}),
               AUTOFIX_REPO_ENV=json.dumps({"cache_dir": str(Path(__file__).resolve().parents[1] / ".cache" / "envs")}))
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pipeline", "fix", "--repo", str(case / "repo"), "--event",
                           str(case / "event.json"), "--json"], env=env, capture_output=True, text=True, timeout=900)
    steps = [json.loads(line) for line in done.stderr.splitlines() if '"llm.step"' in line]
    return {"case": case.name, "format": fmt, "outcome": steps[0]["outcome"] if steps else "no request",
            "reason": (steps[0].get("reason") or "")[:160] if steps else "", "tokens": steps[0]["tokens"] if steps else 0,
            "seconds": round(time.monotonic() - started, 1)}


def main() -> None:
    work, cases = Path(sys.argv[1]), sys.argv[2:]
    formats = [os.environ["AB_ONLY"]] if os.environ.get("AB_ONLY") else ["blocks", "json"]
    rows = [run(work / case, fmt) for case in cases for fmt in formats]
    for row in rows:
        print(json.dumps(row))
    for fmt in ("blocks", "json"):
        mine = [r for r in rows if r["format"] == fmt and r["outcome"] != "no request"]
        applied = sum(r["outcome"] in ("verified", "failed", "policy") for r in mine)
        verified = sum(r["outcome"] == "verified" for r in mine)
        print(f"{fmt}: {len(mine)} first answers, {applied} applied, {verified} verified, "
              f"{sum(int(str(r['tokens'])) for r in mine)} tokens")


if __name__ == "__main__":
    main()
