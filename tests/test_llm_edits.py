"""Applying a model's edits strictly, and the policy a model-written patch must pass (no sandbox)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.fixers.diffing import unified_diff
from pipeline.fixers.llm.edits import (
    CRASH_MARKER,
    Edit,
    Malformed,
    Region,
    apply_edits,
    apply_function,
    parse_answer,
)
from pipeline.fixers.llm.policy import violations

SOURCE = '''import re


def tokenize(text):
    result = []
    for ch in text:
        if ch == "\\u200d":
            result[-1] = result[-1] + ch
        else:
            result.append(ch)
    return result


def other(text):
    result = []
    return result
'''
PATH = "emo/tokenizer.py"
SCOPE = [Region(PATH, 4, 11, "tokenize")]


def apply(answer: str) -> str:
    parsed = parse_answer(answer, ["tokenize"])
    if isinstance(parsed, list):
        return apply_edits({PATH: SOURCE}, SCOPE, parsed)[PATH]
    return apply_function({PATH: SOURCE}, SCOPE, parsed)[PATH]


FIXED = SOURCE.replace('        if ch == "\\u200d":', '        if ch == "\\u200d" and result:')


def test_an_exact_block_applies() -> None:
    assert apply('<<<<<<< SEARCH\n        if ch == "\\u200d":\n=======\n        if ch == "\\u200d" and result:\n'
                 '>>>>>>> REPLACE') == FIXED


def test_fences_trailing_whitespace_and_the_crash_marker_are_tolerated() -> None:
    answer = (f'Here is the fix:\n```python\n<<<<<<< SEARCH\n        if ch == "\\u200d":   \n'
              f'            result[-1] = result[-1] + ch  {CRASH_MARKER}\n=======\n'
              '        if ch == "\\u200d" and result:\n            result[-1] = result[-1] + ch\n>>>>>>> REPLACE\n```')
    assert apply(answer) == FIXED


def test_a_block_with_shifted_indentation_is_matched_and_reindented() -> None:
    answer = ('<<<<<<< SEARCH\nif ch == "\\u200d":\n    result[-1] = result[-1] + ch\n=======\n'
              'if ch == "\\u200d" and result:\n    result[-1] = result[-1] + ch\n>>>>>>> REPLACE')
    assert apply(answer) == FIXED


def test_a_search_that_matches_twice_in_scope_is_malformed_with_where() -> None:
    scope = [Region(PATH, 4, 11, "tokenize"), Region(PATH, 14, 16, "other")]
    with pytest.raises(Malformed, match=r"matches 2 places \(line 5, line 15\)"):
        apply_edits({PATH: SOURCE}, scope, [Edit("    result = []", "    result = [None]")])


def test_a_search_outside_the_localised_functions_is_refused() -> None:
    with pytest.raises(Malformed, match="outside the function"):
        apply_edits({PATH: SOURCE}, SCOPE, [Edit("import re", "import os")])


def test_a_search_that_matches_nothing_is_malformed() -> None:
    with pytest.raises(Malformed, match="matches no lines of tokenize"):
        apply("<<<<<<< SEARCH\n    for c in text:\n=======\n    for c in text or '':\n>>>>>>> REPLACE")


def test_a_no_op_edit_is_malformed() -> None:
    with pytest.raises(Malformed, match="changes nothing"):
        apply("<<<<<<< SEARCH\n    return result\n=======\n  return result  \n>>>>>>> REPLACE")


def test_a_cut_off_block_is_malformed() -> None:
    with pytest.raises(Malformed, match="cut off"):
        apply("<<<<<<< SEARCH\n    return result\n=======\n    return result or []\n")


def test_an_answer_without_blocks_is_malformed() -> None:
    with pytest.raises(Malformed, match="no SEARCH/REPLACE block"):
        apply("You should check that result is not empty.")


def test_a_whole_function_rewrite_replaces_only_that_function() -> None:
    answer = ("```python\ndef tokenize(text):\n    result = []\n    for ch in text:\n"
              '        if ch == "\\u200d" and result:\n            result[-1] = result[-1] + ch\n'
              "        else:\n            result.append(ch)\n    return result\n```")
    assert apply(answer) == FIXED


def test_a_unified_diff_is_the_fallback() -> None:
    diff = unified_diff(PATH, SOURCE, FIXED)
    assert apply(diff) == FIXED


def _diff(new: str, path: str = PATH, old: str = SOURCE) -> str:
    return unified_diff(path, old, new)


def test_policy_passes_a_plain_fix() -> None:
    assert violations(_diff(FIXED), [PATH], ["**/auth/**"]) == []


@pytest.mark.parametrize(("line", "reason"), [
    ("import subprocess", "adds an import of subprocess"),
    ("from urllib.request import urlopen", "adds an import of urllib.request"),
    ("import os, socket", "adds an import of socket"),
    ("os.system('rm -rf /')", "adds a call of os.system"),
    ("for _ in os.walk('/'): pass", "adds a call of os.walk"),
    ("API_KEY = 'AKIAABCDEFGHIJKLMNOP'", "looks like a secret"),
    ("password = 'hunter2hunter2'", "looks like a secret"),
])
def test_policy_drops_dangerous_additions(line: str, reason: str) -> None:
    new = SOURCE.replace("    result = []\n    for ch", f"    {line}\n    result = []\n    for ch", 1)
    assert any(reason in r for r in violations(_diff(new), [PATH], []))


def test_code_named_like_a_secret_is_not_a_secret() -> None:
    new = SOURCE.replace("    result = []\n    for ch", "    token = result[0] if result else ''\n    result = []\n    for ch", 1)
    assert violations(_diff(new), [PATH], []) == []


def test_policy_drops_other_files_protected_paths_and_test_deletions() -> None:
    auth = "shop/auth/login.py"
    assert any("outside the localised files" in r for r in violations(_diff(FIXED, "shop/other.py"), [PATH], []))
    assert any("protected path (**/auth/**)" in r
               for r in violations(_diff(FIXED, auth), [auth], ["**/auth/**"]))
    test = "def test_tokenize():\n    assert tokenize('a') == ['a']\n"
    gone = unified_diff("tests/test_tok.py", test, "")
    assert any("deletes a test" in r for r in violations(gone, ["tests/test_tok.py"], []))


def test_the_llm_section_reads_the_file_and_the_variables_and_masks_the_key(tmp_path: Path) -> None:
    import json

    from helpers_cli import autofix

    (tmp_path / "autofix.toml").write_text('[llm]\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "from-file"\n'
                                           'api_key = "sk-file-secret-123"\nattempts = 2\n'
                                           'protected_paths = ["**/payments/**"]\n')
    env = {"AUTOFIX_CONFIG": str(tmp_path / "autofix.toml"), "AUTOFIX_LLM_MODEL": "from-env"}
    done = autofix("config", "check", "--json", home=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "sk-file-secret-123" not in done.stdout
    llm = json.loads(done.stdout)["settings"]["llm"]
    assert llm["attempts"] == 2 and llm["protected_paths"] == ["**/payments/**"] and llm["api_key"] != ""

    import os

    from pipeline.settings import Settings
    old = dict(os.environ)
    try:
        os.environ.update(env)
        s = Settings()
    finally:
        os.environ.clear()
        os.environ.update(old)
    resolved = s.llm_settings
    assert s.llm_configured and resolved.model == "from-env" and resolved.base_url == "http://127.0.0.1:9/v1"


def test_a_long_function_is_shown_as_its_signature_and_a_window_around_the_crash_line() -> None:
    from pipeline.context.engine import Snippet
    from pipeline.fixers.llm.prompt import window

    body = ["def long(values, limit):", '    """Doc.', "", "    More doc.", '    """'] + \
        [f"    step{i} = values[{i}]" for i in range(40)] + ["    return step0"]
    snippet = Snippet("m.py", 10, 10 + len(body) - 1, "\n".join(body), "crash", "long", line=10 + 30)
    shown = window(snippet, 5, 2)
    assert not shown.whole
    assert shown.text.splitlines()[0] == "def long(values, limit):"
    assert "(lines 11-34 not shown)" in shown.text and "step25 = values[25]  " + CRASH_MARKER in shown.text
    assert shown.editable.start == 35 and shown.editable.end == 42
    # An answer that copies the elision lines still applies: they are dropped from SEARCH and REPLACE.
    answer = ("<<<<<<< SEARCH\n    ... (lines 11-34 not shown)\n    step25 = values[25]\n=======\n"
              "    step25 = values[25] if len(values) > 25 else None\n>>>>>>> REPLACE")
    edits = parse_answer(answer, ["long"])
    assert isinstance(edits, list)
    source = "\n" * 9 + "\n".join(body) + "\n"
    new = apply_edits({"m.py": source}, [Region("m.py", 35, 42, "long")], edits)["m.py"]
    assert "    step25 = values[25] if len(values) > 25 else None" in new


def test_bench_totals_compare_templates_only_with_templates_and_llm() -> None:
    from pipeline.benchmark.runner import CaseResult, markdown, totals

    def case(name: str, strategy: str | None, queued: bool, correct: bool, alone: dict[str, object],
             attempt: int | None = None, tokens: int = 0) -> CaseResult:
        return CaseResult(name, "p", "E", "verified" if queued else "no_fix", strategy is not None, queued, correct, 1,
                          10.0, tokens, 0.0, strategy, "", templates_only=alone, llm_patches=1 if tokens else 0,
                          llm_attempt=attempt, llm_steps=({"event": "llm.step", "outcome": "verified"},) if tokens else ())

    t_hit = {"status": "verified", "queued": True, "correct": True, "strategy": "template:x", "produced": True}
    miss = {"status": "no_fix", "queued": False, "correct": False, "strategy": None, "produced": False}
    results = [case("a", "template:x", True, True, t_hit), case("b", "llm", True, True, miss, 2, 3000),
               case("c", "llm", True, False, miss, 1, 1000), case("d", None, False, False, miss)]
    t = totals(results)
    assert t["templates_only"]["delivered"] == 1 and t["delivered"] == 2
    assert t["llm"]["delivered"] == 1 and t["llm"]["share_of_delivered"] == 0.5
    assert t["llm"]["attempts_per_correct_fix"] == 2 and t["llm"]["tokens_per_correct_fix"] == 3000
    assert t["precision"] == 0.6667
    assert "Templates only (same run): delivered 1/4" in markdown(results)


def test_model_patches_need_the_repos_tests_to_be_queued() -> None:
    from pipeline.gates import decide
    from pipeline.records import Patch, Verification
    from pipeline.settings import GateConfig

    no_tests = Verification((), True, True, None)
    diff = _diff(FIXED)
    llm, template = Patch("llm", diff, (PATH,), ""), Patch("template:index_guard", diff, (PATH,), "")
    assert decide(template, no_tests, 0.9, GateConfig()).admitted
    held = decide(llm, no_tests, 0.9, GateConfig())
    assert not held.admitted and "gate.require_tests_for: llm" in held.reasons[0]
    assert decide(llm, Verification((), True, True, True), 0.9, GateConfig()).admitted
    assert decide(llm, no_tests, 0.9, GateConfig(require_tests_for=[])).admitted
