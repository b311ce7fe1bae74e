"""ACE playbooks: bullets, typed delta operations, de-duplication and history (to come)."""
