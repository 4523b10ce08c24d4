"""gradschool's exercise domain: formats, kinds, reference answers and grading.

Importing this package (or any torch-free module of it) never imports torch;
only reference computation, diagnosis and graph building do, lazily.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
