"""Database plumbing: model base, engine, the unit of work (the only place that commits)."""
