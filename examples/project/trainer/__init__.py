"""A user's training package: several modules and a config, run with `python -m trainer.main EPOCHS`."""
