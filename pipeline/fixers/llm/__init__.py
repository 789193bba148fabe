"""The LLM fixer (an IterativeFixer of pipeline/flow.py): see fixer.py."""

from pipeline.fixers.llm.fixer import LLMFixer, RepairReport, Step

__all__ = ["LLMFixer", "RepairReport", "Step"]
