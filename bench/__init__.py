"""The benchmark harness: textcls against the limit and the usual serving approaches, in one run."""
