"""Setting dotted keys on sub-tables of several sections raised IndexError (tomlkit #332)."""

import tomlkit

SOURCE = """\
[a]
    [a.b]
    b = 0

[b]
    [b.b]
    q = '123'
"""


def main() -> None:
    doc = tomlkit.parse(SOURCE)
    for section in ("a", "b"):
        for _label, table in doc[section].items():
            table[tomlkit.key(["x", "y"])] = "test1"
    for section in ("a", "b"):
        for _label, table in doc[section].items():
            table[tomlkit.key(["x", "z"])] = "test2"

    result = tomlkit.parse(tomlkit.dumps(doc)).unwrap()
    assert result["a"]["b"] == {"b": 0, "x": {"y": "test1", "z": "test2"}}, result
    assert result["b"]["b"] == {"q": "123", "x": {"y": "test1", "z": "test2"}}, result


if __name__ == "__main__":
    main()
