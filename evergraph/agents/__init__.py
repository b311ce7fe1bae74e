"""LangGraph agents wiring llm/, graph/, playbooks/ and retrieval/ together."""
