"""grocer: a small grocery-shop library whose real crash bugs feed the grouping benchmark."""
