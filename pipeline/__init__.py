"""The pipeline's face and wiring: options, the Beam graph, and the commands users run."""
