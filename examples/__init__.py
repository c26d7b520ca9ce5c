"""Runnable examples of your own node (see the README's "Your own node"); tests/test_examples.py runs each one."""
