"""releasetui: Capistrano-style releases of Python web apps over SSH, with a TUI and a headless CLI."""

__version__ = "0.1.0"
