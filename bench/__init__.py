"""Benchmarks (run them as scripts: python bench/NAME.py); a package so they can share bench/common.py."""
