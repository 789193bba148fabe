"""An f-string with an empty format spec around an unknown name infers to Uninferable."""

import astroid
from astroid import util

node = astroid.extract_node('f"{x:}"')
inferred = list(node.infer())
assert inferred == [util.Uninferable], inferred
