"""The canonical experiment, platform-free: config -> data -> model -> train -> evaluate.

Submodules import TensorFlow only inside the functions that need it.
"""
