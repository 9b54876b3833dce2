"""Sandboxes: a Chronopost SOAP server and a Salesforce REST server that speak the real protocols.

They import nothing from the layers above, and nothing above imports them; only tests, benchmarks,
`make demo` and the CLI's `sandbox` command start them.
"""
