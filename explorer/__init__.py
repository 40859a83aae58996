"""AttendNeXt Explorer: declarative specs, builder, exact analysis, latency, training, UI.

Entry points: ``explorer.design.load_design`` (any design: preset name, file, text, mapping),
``explorer.build.build_model``, ``explorer.analysis.analyze``; the command line is
``explorer`` (or ``python -m explorer``).
"""

__version__ = "0.1.0"  # the one version: pyproject.toml reads it ([tool.setuptools.dynamic]); see CHANGELOG.md
