"""The traffic and drift simulator: a client of the model server, not part of its image."""
