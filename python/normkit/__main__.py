"""``python -m normkit``: the CPU and kernel report, then the worked
compositional-data example (``normkit.coda.example_cups``)."""

from . import cpu_info
from .coda import example_cups

print("normkit cpu_info:", cpu_info())
print()
print(example_cups())
