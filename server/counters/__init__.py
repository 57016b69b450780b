"""Service counters (issue 13): staff on duty, a queue with a wait, a private consultation."""
