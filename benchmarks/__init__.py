"""The project's benchmarks: each module measures one claim and writes benchmarks/results/<name>.{json,md}.

Run them from the repository root as modules, e.g. ``python -m benchmarks.proxy_scores fidelity``.
Shared pieces: `benchmarks.common` (the results folder, the run metadata, Markdown cells) and
`benchmarks.runlog` (the proxy run log every benchmark trains through).
"""
