"""chronoforce: ship Salesforce orders through Chronopost and write the results back."""

__version__ = "0.1.0"
