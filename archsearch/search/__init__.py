"""The search room: Optuna studies over a space, scored by measured latency and proxy accuracy.

`sweep` creates or resumes a study and runs local workers; `worker` joins any study by its
storage URL; `trial` evaluates one architecture (cost, latency, constraints, proxy) and leaves
its artifacts under `runs/<study>/trials/<number>/`. What a trial records is named in `record`.
"""
