"""Platform kernels: one self-contained Python file per platform, generated from experiment/.

build.py flattens the experiment modules (their exact source) plus a platform entry
module into one file with the resolved config embedded; kaggle.py and codalab.py add
each platform's metadata. runtime.py, kaggle_entry.py and codalab_entry.py are the code
that runs *inside* the kernels; they are ordinary modules here, so they are linted and
testable, and are embedded verbatim (imports stripped) by the generator.
"""
