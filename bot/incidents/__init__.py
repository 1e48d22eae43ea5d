"""Incidents: declare, status, severity, roles, timeline, reminders, paging, Statuspage, post-mortem."""
