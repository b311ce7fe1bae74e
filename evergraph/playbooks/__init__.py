"""ACE playbooks: bullets changed only through typed delta operations, with history.

models (Playbook, Bullet) · deltas (the ops) · apply (validate and apply a batch) ·
history (entries, revert, diff) · render (prompt within a token budget) ·
refine (dedup and pruning as ops) · vectors (bullet embeddings).
"""
