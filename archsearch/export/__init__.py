"""Export: an ArchSpec -> a directory that trains and deploys it outside the search.

`write_export` (in `archsearch.export.writer`) writes arch.yaml, an OpenCLIP config whose image
tower is registered with timm, a LightningCLI train.yaml, Core ML packages and a README. This
package's `__init__` stays import-light (no torch): `import archsearch` installs the timm hook
from `archsearch.export.timm_hook` on every run of the CLI.
"""
