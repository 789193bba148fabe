"""A node whose parent is itself prints its cycle as '...' instead of recursing forever."""

import attr


@attr.s
class Node:
    name = attr.ib()
    parent = attr.ib(default=None)


root = Node("root")
root.parent = root
text = repr(root)
assert text == "Node(name='root', parent=...)", text
