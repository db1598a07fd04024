"""Background jobs: the queue backends, the runner, and the job handlers."""
