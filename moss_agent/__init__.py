"""moss-agent."""
