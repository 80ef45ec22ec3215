"""islteach: the helper package of the islteach book."""
__version__ = "0.1.0"
