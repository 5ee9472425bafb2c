"""Sessions, streams and the event log: framework-free, async, no HTTP."""
