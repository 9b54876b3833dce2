"""The domain: pure Python models and rules for shipping with Chronopost. No I/O, no framework."""
