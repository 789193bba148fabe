"""An app that needs a third-party package (tinyfmt) to import at all."""
