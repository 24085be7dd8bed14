"""Sample agency systems for the demo, the tests and the benchmarks, all synthetic.

``generator`` makes complaints in the unified shape; each agency module stores them in that
agency's own native schema and vocabulary; ``config.yaml`` maps them back.
"""

DATA_VERSION = 4  # 4: complainants (personal data) in every agency that keeps them
"""Bumped whenever a sample's native shape or data changes, so built demo data is rebuilt."""
