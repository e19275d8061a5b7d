"""Platform kernels: one self-contained Python file per run-there platform, generated from experiment/.

build.py flattens the experiment modules (their exact source, the one run lifecycle
included) plus a platform's entry module into one file with the resolved config
embedded; runtime.py is the platform-neutral part that runs *inside* every kernel
(finding the data, hardware facts, then experiment.lifecycle). Each platform's own
entry module and metadata live with the platform, in adapters/<platform>/.
"""
