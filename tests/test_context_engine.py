"""The context engine: symbol index and its cache, BM25, fusion, the context policy, fix_context."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers_fix import event, exc, frame, git, init_repo, issue, line_of, write_tree

from pipeline.benchmark.localisation import compare
from pipeline.context import index as index_module
from pipeline.context.engine import fix_context, snippet_tokens
from pipeline.context.index import build_index
from pipeline.context.policy import ContextPolicy
from pipeline.context.rank import FusionWeights, fused_ranking
from pipeline.context.retrieve import retrieve
from pipeline.context.search import CodeSearch, event_query
from pipeline.context.tokens import code_tokens
from pipeline.records import CodeContext, ErrorEvent, Location

PRICING = '''"""Prices."""
from shop.models import Basket
from shop.rates import TAX_RATE, rate_for
from shop.vault import sign


def unit_price(item):
    return item["price"] / item["quantity"]


def basket_total(basket: Basket):
    total = 0
    for item in basket.items:
        total += unit_price(item) * rate_for(item["region"])
    return total * (1 + TAX_RATE)


def checkout(request):
    basket = Basket(request["items"])
    return sign(basket_total(basket))
'''

MODELS = '''class Basket:
    """A customer's basket."""

    currency = "EUR"

    def __init__(self, items):
        self.items = list(items)

    def count(self):
        return len(self.items)
'''

RATES = '''PAYMENT_API_KEY = "sk_live_51Habcdefghijklmnop"
TAX_RATE = 0.2


def rate_for(region):
    headers = {"Authorization": "Bearer abcdefghijklmnopqrstuvwx"}
    return {"eu": 1.0, "uk": 1.1}.get(region, 1.0) if headers else 0.0
'''

SHIPPING = '''def shipping_quote(parcel_weight, courier_zone):
    """Quote a parcel for a courier zone."""
    per_kilo = {"north": 2, "south": 3}[courier_zone]
    return parcel_weight * per_kilo


def parcel_label(parcel_weight):
    return f"{parcel_weight} kg"
'''

VAULT = '''def sign(amount):
    return f"signed:{amount}"
'''


@pytest.fixture(autouse=True)
def _fresh_memo() -> None:
    index_module._MEMO.clear()  # each test sees builds and cache reads, not another test's index


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return init_repo(tmp_path / "shop", {
        "shop/__init__.py": "",
        "shop/pricing.py": PRICING,
        "shop/models.py": MODELS,
        "shop/rates.py": RATES,
        "shop/shipping.py": SHIPPING,
        "shop/vault.py": VAULT,
        "shop/generated/schema_pb2.py": "def parse_parcel(data):\n    return data\n",
        "tests/test_pricing.py": "def test_unit_price_parcel_courier():\n    assert True\n",
        ".autofixignore": "shop/vault.py\n",
    })


def _crash_event(vars_: dict[str, object] | None = None) -> ErrorEvent:
    return event(exc(
        "ZeroDivisionError", "division by zero",
        frame("checkout", "shop/pricing.py", line_of(PRICING, "return sign(basket_total"),
              vars={"request": {"items": "[{'price': 3, 'quantity': 0}]"}}),
        frame("basket_total", "shop/pricing.py", line_of(PRICING, "total += unit_price"),
              vars={"total": "0", "basket": "<Basket>"}),
        frame("unit_price", "shop/pricing.py", line_of(PRICING, 'return item["price"]'),
              vars=vars_ or {"item": "{'price': 3, 'quantity': 0, 'region': 'eu'}"}),
    ))


# --- the symbol index ------------------------------------------------------------------------------


def test_index_holds_definitions_with_spans_imports_and_call_sites(shop: Path) -> None:
    idx = build_index(shop, ContextPolicy.load(shop))
    total = idx.get("shop/pricing.py", "basket_total")
    assert total is not None and total.kind == "function"
    assert (total.start, total.end) == (line_of(PRICING, "def basket_total"), line_of(PRICING, "return total *"))
    assert ("unit_price", line_of(PRICING, "total += unit_price")) in total.calls
    assert "basket.items" in total.names  # an attribute of a name: resolvable when the name is a module
    method = idx.get("shop/models.py", "Basket.count")
    assert method is not None and method.kind == "method"
    assert idx.get("shop/models.py", "Basket") is not None
    constant = idx.get("shop/rates.py", "TAX_RATE")
    assert constant is not None and constant.kind == "constant"
    assert idx.files["shop/pricing.py"].imports["rate_for"] == "shop.rates.rate_for"
    assert [(s.qualname, line) for s, line in idx.callers("basket_total")] == [
        ("checkout", line_of(PRICING, "return sign(basket_total"))]
    (found,) = idx.definitions("TAX_RATE", "shop/pricing.py")
    assert found.path == "shop/rates.py"
    assert [d.qualname for d in idx.definitions("self.count", "shop/models.py", "Basket")] == ["Basket.count"]
    assert idx.definitions(".count", "shop/pricing.py") == []  # an attribute of an unknown receiver
    assert idx.definitions("len", "shop/models.py") == []


def test_second_build_of_the_same_commit_reads_the_cache_and_a_new_commit_does_not(shop: Path, tmp_path: Path) -> None:
    cache = tmp_path / "home" / "context" / "index"
    policy = ContextPolicy.load(shop)
    first = build_index(shop, policy, cache)
    assert not first.from_cache and len(list(cache.iterdir())) == 1
    index_module._MEMO.clear()
    second = build_index(shop, policy, cache)
    assert second.from_cache
    assert second.symbols == first.symbols and second.files == first.files
    index_module._MEMO.clear()
    assert not build_index(shop, ContextPolicy.load(shop, exclude=["shop/shipping.py"]), cache).from_cache
    (shop / "shop" / "extra.py").write_text("def added():\n    return 1\n")
    git(shop, "add", "-A")
    git(shop, "commit", "-q", "-m", "more")
    index_module._MEMO.clear()
    third = build_index(shop, policy, cache)
    assert not third.from_cache and third.get("shop/extra.py", "added") is not None


def test_uncommitted_changes_are_not_served_from_the_commit_cache(shop: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    build_index(shop, ContextPolicy.load(shop), cache)
    (shop / "shop" / "shipping.py").write_text(SHIPPING + "\n\ndef late():\n    return 2\n")
    index_module._MEMO.clear()
    again = build_index(shop, ContextPolicy.load(shop), cache)
    assert not again.from_cache and again.get("shop/shipping.py", "late") is not None


# --- BM25 --------------------------------------------------------------------------------------------


def test_code_tokens_split_snake_case_and_camel_case() -> None:
    assert code_tokens("ZeroDivisionError get_histogram_counts") == [
        "zerodivisionerror", "zero", "division", "error", "get_histogram_counts", "get", "histogram", "counts"]
    assert code_tokens("self.HTTPServer") == ["httpserver", "http", "server"]


def test_bm25_ranks_the_function_whose_words_the_event_uses(shop: Path) -> None:
    idx = build_index(shop, ContextPolicy.load(shop))
    crash = event(exc("KeyError", "'west'", frame("handler", "app.py", 3, in_app=True,
                                                   vars={"courier_zone": "'west'", "parcel_weight": "2"})))
    hits = CodeSearch(idx).search(event_query(crash), k=5)
    assert hits[0].symbol.qualname == "shipping_quote"
    assert all(not h.symbol.path.startswith("tests/") for h in hits)  # a crash is not fixed in a test


def test_query_holds_exception_message_frame_names_and_locals_without_addresses() -> None:
    query = event_query(_crash_event({"item": "<Item object at 0x7f3a2b1c9d40>", "unitCount": "0"}))
    assert {"zerodivisionerror", "division", "unit_price", "basket_total", "item", "unit", "count"} <= set(query)
    assert not [t for t in query if "7f3a" in t]


# --- fusion ------------------------------------------------------------------------------------------


def _loc(function: str, role: str, path: str = "shop/pricing.py") -> Location:
    return Location(path, function, 1, 1, 2, "", role)


def test_fusion_keeps_the_stack_order_when_bm25_does_not_separate_it_and_adds_hits_off_the_stack(shop: Path) -> None:
    idx = build_index(shop, ContextPolicy.load(shop))
    context = CodeContext(str(shop), (_loc("unit_price", "crash"), _loc("basket_total", "caller")))
    words = ["parcel", "courier", "zone"]
    ranked = fused_ranking(_crash_event(), context, idx, CodeSearch(idx), FusionWeights(bm25=0.4, hits=3), words)
    assert [loc.function for loc in ranked[:2]] == ["unit_price", "basket_total"]
    assert ranked[2].function == "shipping_quote" and ranked[2].role == "search"
    assert ranked[2].source.startswith("def shipping_quote")


def test_fusion_lifts_a_caller_whose_words_the_event_uses_above_a_generic_crash_site(shop: Path) -> None:
    idx = build_index(shop, ContextPolicy.load(shop))
    context = CodeContext(str(shop), (_loc("Basket.count", "crash", "shop/models.py"),
                                      _loc("shipping_quote", "caller", "shop/shipping.py")))
    ranked = fused_ranking(_crash_event(), context, idx, CodeSearch(idx), FusionWeights(bm25=1.0, hits=0),
                           ["parcel", "courier", "zone", "quote"])
    assert [loc.function for loc in ranked] == ["shipping_quote", "Basket.count"]


def test_the_fused_ranking_is_used_only_when_it_wins() -> None:
    assert compare([1, 2, None], [1, 1, None])["winner"] == "fused"
    assert compare([1, 2, None], [1, 2, None])["winner"] == "stack"  # a tie keeps the simpler ranking
    assert compare([1, 1, 3], [1, 1, 7])["winner"] == "stack"
    figures = compare([1, 3, None, 9], [1, 1, 2, None])
    assert figures["stack"] == {"recall_at_1": 0.25, "recall_at_5": 0.5}
    assert figures["fused"] == {"recall_at_1": 0.5, "recall_at_5": 0.75}


# --- the context policy --------------------------------------------------------------------------------


def test_policy_reads_autofixignore_and_the_settings_globs(shop: Path) -> None:
    policy = ContextPolicy.load(shop, exclude=["shop/generated/"])
    assert policy.why_excluded("shop/vault.py") == "matched by .autofixignore"
    assert policy.why_excluded("shop/generated/schema_pb2.py") == "matched by context.exclude"
    assert policy.allows("shop/pricing.py")
    only = ContextPolicy.load(shop, include=["shop/pricing.py", "shop/rates.py"])
    assert only.allows("shop/rates.py") and only.why_excluded("shop/models.py") == "not matched by context.include"
    negated = ContextPolicy(ignore_lines=("shop/*.py", "!shop/pricing.py"))
    assert negated.allows("shop/pricing.py") and not negated.allows("shop/rates.py")


def test_an_ignored_file_is_never_in_the_index_bm25_or_fix_context(shop: Path) -> None:
    policy = ContextPolicy.load(shop, exclude=["shop/generated/"])
    idx = build_index(shop, policy)
    assert "shop/vault.py" not in idx.files and "shop/generated/schema_pb2.py" not in idx.files
    assert not [s for s in idx.symbols if s.path in ("shop/vault.py", "shop/generated/schema_pb2.py")]
    hits = CodeSearch(idx).search(["sign", "signed", "amount", "parse", "parcel", "data"], k=50)
    assert hits and not [h for h in hits if h.symbol.path in ("shop/vault.py", "shop/generated/schema_pb2.py")]
    # The stack passes through the ignored file (a frame in sign) and the crash function calls sign.
    crash = event(exc("ZeroDivisionError", "division by zero sign signed amount",
                      frame("checkout", "shop/pricing.py", line_of(PRICING, "return sign(basket_total")),
                      frame("sign", "shop/vault.py", 2),
                      frame("unit_price", "shop/pricing.py", line_of(PRICING, 'return item["price"]'))))
    context = retrieve(crash, shop, policy=policy)
    assert [loc.path for loc in context.locations] == ["shop/pricing.py", "shop/pricing.py"]
    assert context.excluded_frames == ("shop/vault.py:2 in sign (matched by .autofixignore)",)
    snippets = fix_context(crash, context, 50_000, policy=policy)
    assert snippets and not [s for s in snippets if s.path in ("shop/vault.py", "shop/generated/schema_pb2.py")]
    assert not [s for s in snippets if "signed:" in s.text]
    # The context carries its policy: a fixer that passes none gets the same filtering.
    assert [s.path for s in fix_context(crash, context, 50_000)] == [s.path for s in snippets]


def test_a_crash_site_in_an_ignored_file_gives_no_code_and_says_why(shop: Path) -> None:
    crash = event(exc("TypeError", "bad amount",
                      frame("checkout", "shop/pricing.py", line_of(PRICING, "return sign(basket_total")),
                      frame("sign", "shop/vault.py", 2)))
    context = retrieve(crash, shop)  # the repo's .autofixignore applies with no settings at all
    assert context.crash_excluded == "the crash site shop/vault.py is excluded from code context " \
                                     "(matched by .autofixignore)"
    assert context.crash is not None and context.crash.role == "caller"  # nothing fixers would patch
    assert fix_context(crash, context, 50_000) == []


def test_flow_stops_before_any_fixer_when_the_crash_site_is_ignored(shop: Path, tmp_path: Path) -> None:
    from pipeline.flow import FixRequest, fix_issue
    from sandbox.local import LocalSandbox

    crash = event(exc("TypeError", "bad amount",
                      frame("checkout", "shop/pricing.py", line_of(PRICING, "return sign(basket_total")),
                      frame("sign", "shop/vault.py", 2)))
    outcome = fix_issue(FixRequest(crash, issue(), shop, tmp_path / "work"), [], LocalSandbox())
    assert outcome.status == "no_fix"
    assert outcome.reason == ("the crash site shop/vault.py is excluded from code context (matched by "
                              ".autofixignore): no code is given to any fixer")


# --- fix_context -------------------------------------------------------------------------------------------


def test_fix_context_gives_crash_callers_with_locals_then_definitions_then_search_hits(shop: Path) -> None:
    crash = _crash_event()
    context = retrieve(crash, shop)
    snippets = fix_context(crash, context, 50_000, bm25_hits=2)
    assert [(s.why, s.function) for s in snippets[:3]] == [
        ("crash", "unit_price"), ("caller", "basket_total"), ("caller", "checkout")]
    assert snippets[0].vars == {"item": "{'price': 3, 'quantity': 0, 'region': 'eu'}"}
    assert snippets[1].vars == {"total": "0", "basket": "<Basket>"}
    definitions = {s.function: s for s in snippets if s.why.startswith("definition of ")}
    assert {"rate_for", "TAX_RATE", "Basket"} <= set(definitions)
    assert definitions["Basket"].text.startswith("class Basket:") and "def count" not in definitions["Basket"].text
    assert "sign" not in definitions  # defined in the ignored shop/vault.py
    searched = [s for s in snippets if s.why.startswith("search: ")]
    assert 0 < len(searched) <= 2
    whys = [s.why.split(":")[0].split(" of ")[0] for s in snippets]
    assert whys == sorted(whys, key=["crash", "caller", "definition", "search"].index)


def test_secrets_in_code_are_redacted_with_the_event_scrubber(shop: Path) -> None:
    crash = event(exc("ZeroDivisionError", "division by zero",
                      frame("rate_for", "shop/rates.py", line_of(RATES, "return {"))))
    snippets = fix_context(crash, retrieve(crash, shop), 50_000, bm25_hits=0)
    text = "\n".join(s.text for s in snippets)
    assert "abcdefghijklmnopqrstuvwx" not in text and "sk_live_51H" not in text
    assert "[Filtered:bearer]" in text
    assert snippets[0].redacted
    assert not (shop / "shop" / "rates.py").read_text().count("[Filtered")  # the file itself is untouched


@pytest.mark.parametrize("budget", [40, 120, 300, 1000])
def test_fix_context_stays_within_the_budget(shop: Path, budget: int) -> None:
    crash = _crash_event()
    snippets = fix_context(crash, retrieve(crash, shop), budget)
    assert snippets and snippets[0].why == "crash"
    assert sum(snippet_tokens(s) for s in snippets) <= budget


def test_an_oversized_crash_function_is_trimmed_around_the_crash_line(tmp_path: Path) -> None:
    body = "\n".join(f"    step_{i} = {i}" for i in range(200))
    source = f"def long_one(x):\n{body}\n    return x / 0\n"
    repo = write_tree(tmp_path / "r", {"big.py": source})
    crash = event(exc("ZeroDivisionError", "division by zero",
                      frame("long_one", "big.py", line_of(source, "return x / 0"), vars={"x": "1"})))
    (snippet,) = fix_context(crash, retrieve(crash, repo), 150)
    assert "return x / 0" in snippet.text and "step_0 " not in snippet.text
    assert snippet.why == "crash" and snippet.start > 1 and snippet_tokens(snippet) <= 150


def test_a_repo_class_the_message_names_ranks_just_below_the_crash_site(shop: Path) -> None:
    idx = build_index(shop, ContextPolicy.load(shop))
    crash = event(exc("AttributeError", "'Basket' object has no attribute 'total'",
                      frame("unit_price", "shop/pricing.py", line_of(PRICING, 'return item["price"]'))))
    context = CodeContext(str(shop), (_loc("unit_price", "crash"), _loc("basket_total", "caller")))
    ranked = fused_ranking(crash, context, idx, CodeSearch(idx), FusionWeights(bm25=0.0, hits=0))
    assert [(loc.function, loc.role) for loc in ranked] == [
        ("unit_price", "crash"), ("Basket", "search"), ("basket_total", "caller")]


def test_the_flow_reports_the_fused_localisation_and_leaves_the_stack_to_fixers(shop: Path, tmp_path: Path) -> None:
    from pipeline.flow import FixRequest, fix_issue
    from pipeline.render import outcome_json
    from pipeline.settings import ContextConfig
    from sandbox.local import LocalSandbox

    crash = event(exc("AttributeError", "'Basket' object has no attribute 'total'",
                      frame("checkout", "shop/pricing.py", line_of(PRICING, "return sign(basket_total")),
                      frame("unit_price", "shop/pricing.py", line_of(PRICING, 'return item["price"]'))))
    request = FixRequest(crash, issue(), shop, tmp_path / "work", context_config=ContextConfig(ranking="fused"),
                         index_cache=tmp_path / "index")
    outcome = fix_issue(request, [], LocalSandbox())
    assert outcome.status == "no_fix"  # no fixers given: the point is what was localised
    assert [loc.function for loc in outcome.context.locations] == ["unit_price", "checkout"]
    shown = [(loc["function"], loc["role"]) for loc in outcome_json(outcome)["localization"]]
    assert shown[0] == ("unit_price", "crash")
    assert {("Basket", "search"), ("checkout", "caller")} <= set(shown[:3])
    stack_only = fix_issue(FixRequest(crash, issue(), shop, tmp_path / "work2",
                                      context_config=ContextConfig(ranking="stack")), [], LocalSandbox())
    assert [loc["function"] for loc in outcome_json(stack_only)["localization"]] == ["unit_price", "checkout"]


def test_relative_imports_resolve_to_the_definition_in_the_package(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "r", {
        "src/pkg/__init__.py": "from .core import run\n",
        "src/pkg/core.py": "from .util import LIMIT, clamp\n\n\ndef run(x):\n    return clamp(x, LIMIT)\n",
        "src/pkg/util.py": "LIMIT = 10\n\n\ndef clamp(x, top):\n    return min(x, top)\n",
        "src/other/util.py": "def clamp(x, top):\n    return x\n",
    })
    idx = build_index(repo)
    assert idx.files["src/pkg/core.py"].module == "pkg.core"
    assert idx.files["src/pkg/core.py"].imports == {"LIMIT": "pkg.util.LIMIT", "clamp": "pkg.util.clamp"}
    assert [(d.path, d.qualname) for d in idx.definitions("clamp", "src/pkg/core.py")] == [("src/pkg/util.py", "clamp")]
    assert [d.kind for d in idx.definitions("LIMIT", "src/pkg/core.py")] == ["constant"]
    assert idx.files["src/pkg/__init__.py"].imports == {"run": "pkg.core.run"}


# --- settings and the benchmark's report ----------------------------------------------------------------


def test_the_context_section_of_autofix_toml_is_read_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    from pipeline.errors import ConfigError
    from pipeline.settings import Settings

    for name in [n for n in os.environ if n.startswith("AUTOFIX_")]:
        monkeypatch.delenv(name)
    path = tmp_path / "autofix.toml"
    path.write_text('[context]\nexclude = ["src/generated/"]\nranking = "stack"\nbudget_tokens = 2000\n')
    monkeypatch.setenv("AUTOFIX_CONFIG", str(path))
    monkeypatch.setenv("AUTOFIX_HOME", str(tmp_path / "home"))
    settings = Settings()
    assert settings.context.exclude == ["src/generated/"] and settings.context.ranking == "stack"
    assert settings.context_cache_dir == tmp_path / "home" / "context" / "index"
    path.write_text('[context]\nexclud = ["x"]\n')
    with pytest.raises(ConfigError, match="exclude"):
        Settings()


def test_the_bench_report_puts_stack_only_and_fused_localisation_side_by_side() -> None:
    from pipeline.benchmark.runner import CaseResult, markdown, totals

    def case(id: str, stack: int | None, fused: int | None) -> CaseResult:
        return CaseResult(id, "p", "KeyError", "no_fix", produced=False, queued=False, correct=False, rank=fused,
                          seconds=1.0, tokens=0, usd=0.0, strategy=None, reason="", rank_stack=stack,
                          rank_fused=fused)

    results = [case("a-1", 1, 1), case("b-1", 2, 1), case("c-1", None, 4), case("d-1", 7, 9)]
    figures = totals(results)["localisation"]
    assert figures["stack"] == {"recall_at_1": 0.25, "recall_at_5": 0.5}
    assert figures["fused"] == {"recall_at_1": 0.5, "recall_at_5": 0.75}
    assert figures["winner"] == "fused"
    assert ("**Localisation, 4 cases**: stack-only recall@1 0.25, recall@5 0.50; fused (stack + BM25) "
            "recall@1 0.50, recall@5 0.75; used: fused.") in markdown(results)


def test_fix_context_shows_the_repo_class_the_message_names(shop: Path) -> None:
    crash = event(exc("AttributeError", "'Basket' object has no attribute 'total'",
                      frame("unit_price", "shop/pricing.py", line_of(PRICING, 'return item["price"]'))))
    snippets = fix_context(crash, retrieve(crash, shop), 50_000, bm25_hits=0)
    assert [(s.why, s.function) for s in snippets[:2]] == [("crash", "unit_price"), ("definition of Basket", "Basket")]
