"""hg reports a changed binary file as "Binary file X has changed" (no target name)."""

from unidiff import PatchSet

DIFF = "diff -r 1b2c3d4e5f60 -r 0a1b2c3d4e5f logo.png\nBinary file logo.png has changed\n"


def main() -> None:
    patch = PatchSet(DIFF)
    changed = patch[0]
    # the crashing access: the target name is missing on the buggy version
    assert changed.path == "logo.png", changed.path
    assert changed.is_binary_file
    assert changed.is_modified_file


if __name__ == "__main__":
    main()
