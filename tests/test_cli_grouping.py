"""The grouping commands as real `autofix` processes: issues with class, cluster and priority;
regroup after a configuration change; fix on a log file, each traceback or the one --index picks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers_cli import clean_env

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SET = ROOT / "bench" / "grouping" / "events"


def autofix(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = clean_env(AUTOFIX_HOME=str(home), **env)
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=home, env=environment, capture_output=True,
                          text=True, timeout=600)


def test_issues_show_fix_class_cluster_and_priority(tmp_path: Path) -> None:
    files = [str(SET / "grocer-checkout-1.json"), str(SET / "grocer-shelf-labels-1.json"),
             str(SET / "host-e-worker.log"), str(SET / "grocer-message-payment-1.json")]
    assert autofix("ingest", *files, home=tmp_path).returncode == 0
    issues = json.loads(autofix("issues", "--json", home=tmp_path).stdout)
    by_class: dict[str, list[dict[str, object]]] = {}
    for issue in issues:
        by_class.setdefault(str(issue["fix_class"]), []).append(issue)
    zero = by_class["zero-division"]
    assert len(zero) == 2 and len({i["cluster"] for i in zero}) == 1  # two call paths, one crash site
    assert all(float(i["priority"]) > 0 for i in zero)  # type: ignore[arg-type]
    assert {"raised", "message"} <= set(by_class)
    assert [i["priority"] for i in issues] == sorted((i["priority"] for i in issues), reverse=True)
    table = autofix("issues", home=tmp_path).stdout
    assert "cluster" in table and "zero-division" in table and "(2)" in table


def test_regroup_merges_the_issues_a_configuration_change_joins(tmp_path: Path) -> None:
    logs = [str(SET / f"host-{h}-worker.log") for h in "ac"] + [str(SET / "grocer-checkout-1.json")]
    assert autofix("ingest", *logs, home=tmp_path, AUTOFIX_IN_APP_PACKAGES='["shop"]').returncode == 0
    before = json.loads(autofix("issues", "--json", home=tmp_path).stdout)
    dry = autofix("regroup", "--dry-run", "--json", home=tmp_path)
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert planned["dry_run"] and planned["moved"] > 0
    assert json.loads(autofix("issues", "--json", home=tmp_path).stdout) == before
    done = autofix("regroup", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "merged" in done.stdout
    after = json.loads(autofix("issues", "--json", home=tmp_path).stdout)
    assert len(after) < len(before)
    assert sum(i["count"] for i in after) == sum(i["count"] for i in before)
    checkout = [i for i in after if i["fix_class"] == "zero-division" and i["count"] == 3]
    assert len(checkout) == 1 and checkout[0]["cluster"]


def _repo(tmp_path: Path) -> Path:
    from pipeline.demo import prepare_repo

    return prepare_repo(EXAMPLES, tmp_path)[0]


def test_fix_on_a_log_file_fixes_each_traceback_or_the_one_index_picks(tmp_path: Path) -> None:
    repo, log = _repo(tmp_path), EXAMPLES / "logs" / "app.log"
    every = autofix("fix", "--repo", str(repo), "--event", str(log), "--json", home=tmp_path)
    assert every.returncode == 1, every.stderr[-2000:]  # 0 only when every traceback's fix is verified
    outcomes = json.loads(every.stdout)
    assert isinstance(outcomes, list) and len(outcomes) == 2
    assert [o["localization"][0]["function"] for o in outcomes] == ["average_item_price", "digest_line"]
    second = autofix("fix", "--repo", str(repo), "--event", str(log), "--index", "1", "--json", home=tmp_path)
    assert second.returncode == 1, second.stderr[-2000:]  # the DigestError has no fix
    picked = json.loads(second.stdout)
    assert isinstance(picked, dict) and picked["localization"] == outcomes[1]["localization"]
    wrong = autofix("fix", "--repo", str(repo), "--event", str(log), "--index", "2", home=tmp_path)
    assert wrong.returncode == 2 and "out of range" in wrong.stderr
