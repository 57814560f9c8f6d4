"""Code that two or more papers share: configs, the runner, environments, music data, plots."""
