"""An empty substitution map (say, loaded from an empty config section) must leave the text alone."""

from boltons.strutils import multi_replace

result = multi_replace("hello world", {})
assert result == "hello world", result
