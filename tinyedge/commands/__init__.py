"""CLI verbs, one module each; every module defines a click command named `command`.

Module `foo_bar.py` becomes the verb `foo-bar`.  `_common.py` holds shared options.
"""
