"""The pipeline's face and wiring: options, the Beam graph, and the commands users run."""
import logging

# Harmless warnings Beam prints on every start (GCP extras not installed; local workers without a
# staging folder). They read like errors to a user, so the commands drop them.
_KNOWN_NOISE = ("apitools not found", "No semi_persistent_directory found")


def _drop_known_noise(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    return not any(noise in message for noise in _KNOWN_NOISE)


logging.getLogger().addFilter(_drop_known_noise)
logging.getLogger("apache_beam.runners.portability.local_job_service").addFilter(_drop_known_noise)
