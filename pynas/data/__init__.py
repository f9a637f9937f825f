"""Data that ships inside pynas, and ``python -m pynas.data``, the command that fetches the rest.

* ``ptb/``: Penn Treebank (Mikolov's word-level split), the three text files compressed with xz;
  the default data of ``--task ptb`` (read by :mod:`pynas.tasks.ptb_data`; provenance, licence
  note and checksums in ``ptb/SOURCE.md``).
* ``python -m pynas.data fetch cifar10 --dest DIR``: downloads the standard CIFAR-10 archive,
  verifies its checksum and converts it to the ``.npz`` layout of ``--variant full``
  (:mod:`pynas.data.fetch`).

This package's top level only names places: the tasks read the packaged files through it.
"""

from pathlib import Path

PACKAGED_DIR = Path(__file__).resolve().parent
PTB_DIR = PACKAGED_DIR / "ptb"
