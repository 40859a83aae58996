"""AttendNeXt Explorer: declarative specs, builder, exact analysis, latency, training, UI.

Entry points: ``explorer.spec.load_spec``, ``explorer.build.build_model``,
``explorer.analysis.analyze``, ``explorer.presets.load_preset``; the command line is
``explorer`` (or ``python -m explorer``).
"""

__version__ = "0.1.0"
