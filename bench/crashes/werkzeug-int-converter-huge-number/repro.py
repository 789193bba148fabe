"""A URL whose <int:...> part has more digits than Python will convert crashed routing."""

from werkzeug.exceptions import NotFound
from werkzeug.routing import Map, Rule


def main() -> None:
    url_map = Map([Rule("/items/<int:item_id>", endpoint="item")])
    adapter = url_map.bind("example.com")
    assert adapter.match("/items/42") == ("item", {"item_id": 42})
    huge = "9" * 5000  # beyond sys.get_int_max_str_digits() (4300 by default)
    try:
        adapter.match("/items/" + huge)
    except NotFound:
        pass  # the fixed behaviour: an unmatchable URL is a 404, not a server error
    else:
        raise AssertionError("a 5000-digit item id should not match the int converter")


if __name__ == "__main__":
    main()
