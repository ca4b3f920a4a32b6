"""Performance tools: ``bench`` measures the quote cycle stage by stage."""
