"""`python -m pipeline` runs the autofix CLI."""

from pipeline.cli import main

main()
