"""The Gradio explorer: the app wires components to pure functions from ``explorer``."""
