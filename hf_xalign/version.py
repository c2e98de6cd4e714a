"""The package version: one place, read by setup.cfg, `alignment_config.json` and the model card."""

__version__ = "0.1.0"
