"""Pipeline stages: plain stage logic plus the thin Beam DoFns that wrap it."""
